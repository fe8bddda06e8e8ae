"""The package layout: every public name a sub-package lists resolves, and the import path
stored in versions registered before the sub-packages still loads their model."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"
SUBPACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


@pytest.mark.parametrize("name", ["", *SUBPACKAGES])
def test_every_listed_public_name_resolves(name: str):
    package = importlib.import_module(f"pipeline.{name}" if name else "pipeline")
    assert package.__all__, f"{package.__name__} lists no public names"
    for public in package.__all__:
        assert getattr(package, public) is not None
    with pytest.raises(AttributeError, match="no attribute"):
        package.not_a_public_name  # noqa: B018


def test_a_public_name_never_shadows_a_submodule():
    """``pipeline.model.train`` must stay the module: a function of that name in the package's
    list would answer instead once the package is imported, depending on import order."""
    for name in SUBPACKAGES:
        package = importlib.import_module(f"pipeline.{name}")
        modules = {p.stem for p in (PACKAGE / name).glob("*.py")}
        assert not modules & set(package.__all__), name


def test_models_registered_before_the_layout_still_load():
    """Their stored entry point says ``from pipeline.serving import LeadScoringModel``."""
    from pipeline.scoring.serving import MODEL_CODE, LeadScoringModel

    old_code = MODEL_CODE.replace("pipeline.scoring.serving", "pipeline.serving")
    namespace: dict = {}
    exec(compile(old_code.replace("mlflow.models.set_model(LeadScoringModel())", ""),
                 "model_code.py", "exec"), namespace)
    assert namespace["LeadScoringModel"] is LeadScoringModel
