"""Write a training run's tables, charts and report into a folder (logged to MLflow as is)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline.config import Config
from pipeline.inputs.features import FeatureSet
from pipeline.inputs.reader import write_frame_atomic, write_text_atomic
from pipeline.model.train import TrainResult
from pipeline.model.train_analysis import Analysis
from pipeline.reports.decision import woe_iv
from pipeline.reports.plots_lift import save_lift_charts


def write_analysis(out_dir: Path, analysis: Analysis, overall_rate: float, *,
                   charts: bool = True) -> list[Path]:
    """lift_table.csv/.parquet, associations.csv, pairwise_associations.csv, selection.csv and
    one lift chart per attribute (PNG) under ``lift_charts/``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        write_frame_atomic(out_dir / "lift_table.csv", analysis.lift),
        write_frame_atomic(out_dir / "lift_table.parquet", analysis.lift),
        write_frame_atomic(out_dir / "associations.csv", analysis.associations),
        write_frame_atomic(out_dir / "pairwise_associations.csv", analysis.pairwise),
        write_frame_atomic(out_dir / "selection.csv", analysis.selection),
    ]
    if charts and len(analysis.lift):
        paths += save_lift_charts(analysis.lift, overall_rate, out_dir / "lift_charts")
    return paths


def _json(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=_default) + "\n"


def _default(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def write_training_artifacts(out_dir: Path, result: TrainResult, features: FeatureSet,
                             config: Config, *, screenshot: bool = True) -> list[Path]:
    """Everything a run logs: points table and rules, analysis tables, coefficients,
    calibration, threshold trade-off, quadrant, fidelity, metrics, config and the report.
    ``screenshot``: take the report's screenshot here (else the caller runs
    :func:`report_screenshot` itself, e.g. while it logs to MLflow)."""
    out_dir = Path(out_dir)
    overall = float(features.frame["converted"].mean())
    paths = write_analysis(out_dir, result.analysis, overall)
    paths.append(write_frame_atomic(out_dir / "points_table.csv", result.points_table))
    paths.append(write_text_atomic(out_dir / "points_rules.json", result.rules.to_json()))
    paths.append(write_frame_atomic(out_dir / "trust_rules.csv", trust_figures(result, config)))
    paths.append(write_text_atomic(out_dir / "metrics.json", _json(result.metrics)))
    paths.append(write_text_atomic(out_dir / "config.json",
                                   _json(config.model_dump(mode="json"))))
    paths.append(write_text_atomic(out_dir / "notes.json", _json(result.notes)))
    tables: dict[str, pd.DataFrame | None] = {
        "coefficients.csv": result.coefficients,
        "calibration.csv": result.calibration,
        "threshold_tradeoff.csv": result.threshold.tradeoff if result.threshold else None,
        "quadrant.csv": result.quadrant.table if result.quadrant else None,
        "half_life_cv.csv": result.half_life_table,
        "event_rules_cv.csv": features.crm_table,  # CRM representation: W, K, D candidates
        "trust.csv": result.trust,
        "woe_iv.csv": woe_iv(result.analysis.lift),
    }
    for name, table in tables.items():
        if table is not None and len(table):
            paths.append(write_frame_atomic(out_dir / name, table))
    if result.fidelity:
        paths.append(write_text_atomic(out_dir / "fidelity.json", _json(result.fidelity)))
    if result.threshold is not None:
        t = result.threshold
        paths.append(write_text_atomic(out_dir / "threshold.json", _json({
            "threshold": t.threshold, "method": t.method, "note": t.note,
            "sdr_ready_share": t.sdr_ready_share, "sdr_ready_per_week": t.sdr_ready_per_week,
            "expected_close_rate": t.expected_close_rate, "fit_only_share": t.fit_only_share})))
    from pipeline.reports.content import build_report
    from pipeline.reports.plots_lift import chart_file_name

    charts = out_dir / "lift_charts"
    lift_pngs = {a: (charts / chart_file_name(a)).read_bytes() for a in result.analysis.kept
                 if (charts / chart_file_name(a)).exists()}
    report = build_report(result, features, config, lift_pngs=lift_pngs)
    paths.append(write_text_atomic(out_dir / "report.html", report))
    if screenshot:
        paths += report_screenshot(out_dir)
    return paths


def trust_figures(result: TrainResult, config: Config) -> pd.DataFrame:
    """The trust figures of the registered table (:func:`pipeline.reports.trust_rules.trust_table`):
    rule counts per export, 0 rules left out, the longest threshold, direction changes and
    the largest points on a level under ``analysis.min_leads``."""
    from pipeline.reports.trust_rules import trust_table

    return trust_table(result.rules, lift=result.analysis.lift,
                       points_table=result.points_table, min_leads=config.analysis.min_leads)


def report_screenshot(out_dir: Path) -> list[Path]:
    """``out_dir/report_screenshot.png`` of ``out_dir/report.html`` in headless Chromium:
    [its path], or [] without Chromium. A broken Chromium warns; it never fails training."""
    from pipeline.reports.page import screenshot_html

    out_dir = Path(out_dir)
    try:
        if screenshot_html(out_dir / "report.html", out_dir / "report_screenshot.png"):
            return [out_dir / "report_screenshot.png"]
    except RuntimeError as exc:
        import warnings

        warnings.warn(f"report screenshot skipped: {exc}", RuntimeWarning, stacklevel=2)
    return []
