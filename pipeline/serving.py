"""Import path of the pyfunc model as versions registered before the sub-package layout name
it (their stored code says ``from pipeline.serving import LeadScoringModel``)."""

from pipeline.scoring.serving import LeadScoringModel

__all__ = ["LeadScoringModel"]
