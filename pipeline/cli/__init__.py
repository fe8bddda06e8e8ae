"""The ``lead-scoring`` command line (one Typer app; ``run`` is the console script)."""

from pipeline.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "run": "pipeline.cli.main",
})
