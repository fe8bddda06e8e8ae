"""Analysis: one binning of every factor, the lift table, associations and the
selection of the factors worth points."""

from pipeline.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "numeric_cut": "pipeline.analysis.levels",
    "categorical_cut": "pipeline.analysis.levels",
    "Cut": "pipeline.analysis.levels",
    "lift_table": "pipeline.analysis.lift",
    "target_associations": "pipeline.analysis.associations",
    "pairwise_associations": "pipeline.analysis.associations",
    "select_factors": "pipeline.analysis.selection",
    "SelectionResult": "pipeline.analysis.selection",
    "check_selection": "pipeline.analysis.selection_check",
})
