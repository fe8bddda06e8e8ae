"""Reports: a training run's tables, charts and the self-contained HTML model report."""

from pipeline.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "write_training_artifacts": "pipeline.reports.artifacts",
    "build_report": "pipeline.reports.content",
    "render_html": "pipeline.reports.page",
    "screenshot_html": "pipeline.reports.page",
    "save_lift_charts": "pipeline.reports.plots_lift",
})
