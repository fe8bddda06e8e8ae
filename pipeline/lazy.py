"""Lazy public names for a package's ``__init__`` (PEP 562): ``pipeline.scoring.score_frame``
imports :mod:`pipeline.scoring.frame` on first use, so importing a package costs nothing and
sub-packages that use each other never import in a circle."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, public: Mapping[str, str]) -> tuple[list[str], Callable[[str], Any]]:
    """``(__all__, __getattr__)`` for ``package``, whose public names live in the modules
    ``public`` maps them to (``{"score_frame": "pipeline.scoring.frame"}``)."""

    def __getattr__(name: str) -> Any:
        if name not in public:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(public[name]), name)

    return sorted(public), __getattr__
