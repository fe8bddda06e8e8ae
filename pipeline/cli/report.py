"""``lead-scoring report`` and ``lead-scoring drift``: the model report of a registered version,
and a drift check of a new batch of leads against the training leads."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.main import ConfigOpt, ModelOpt, rich_console
from pipeline.errors import DriftError, UserError
from pipeline.workflow import say

TrackingOpt = Annotated[str | None, typer.Option(help="MLflow tracking URI (with --model)")]


def report(
    model: ModelOpt = None,
    config: ConfigOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write")]
    = Path("data/processed/report.html"),
    screenshot: Annotated[Path | None, typer.Option(
        help="also write a PNG screenshot of the report (needs Chromium)")] = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Write the model report (one self-contained HTML page) of a registered version."""
    from pipeline.cli.main import resolve_model
    from pipeline.inputs.reader import write_bytes_atomic
    from pipeline.registry import store as registry

    ref, _ = resolve_model(model, config, tracking_uri)
    if output.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--output {output}: the report is HTML, give a .html file name")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = registry.download_artifact(ref, "report.html", Path(tmp))
        except Exception as exc:  # noqa: BLE001 - MLflow raises several types for "absent"
            tags = registry.mlflow_client().get_model_version(ref.name, ref.version).tags
            if tags.get("edited_by_hand") == "true":  # register-rules writes no report
                parent = tags.get("parent_version", "?")
                raise UserError(
                    f"{ref.name} v{ref.version} was registered from rules edited by hand "
                    f"(register-rules, from v{parent}): it has no training report",
                    hint=f"the report of v{parent}: lead-scoring report --model "
                         f"{ref.name}/{parent}; this version's figures: its gate line in "
                         "lead-scoring history, or its page: lead-scoring edit") from None
            raise UserError(f"{ref.name} v{ref.version} (run {ref.run_id}) has no report.html "
                            f"artifact: {exc}",
                            hint="retrain with this version of lead-scoring") from None
        write_bytes_atomic(output, Path(path).read_bytes())
    say(f"{ref.name} v{ref.version}: report -> {output}")
    if screenshot is not None:
        from pipeline.reports.page import screenshot_html

        if screenshot_html(output, screenshot):
            say(f"screenshot -> {screenshot}")
        else:
            say("screenshot skipped: Chromium is not installed (apt-get install chromium)")


def drift(
    input: Annotated[Path, typer.Option("--input", "-i", help="the new batch of leads")],
    model: ModelOpt = None,
    config: ConfigOpt = None,
    reference: Annotated[Path | None, typer.Option(
        help="reference leads (default: the model config's leads file, i.e. the training "
             "data)")] = None,
    out: Annotated[Path, typer.Option(help="folder for drift.csv and drift.png")]
    = Path("data/processed/drift"),
    bins: Annotated[int, typer.Option(help="quantile bins of the total score")] = 10,
    tracking_uri: TrackingOpt = None,
) -> None:
    """PSI per factor and for the score; exit 3 when any of them says 'retrain'."""
    from pipeline.cli.exports import feature_frame_for_rules
    from pipeline.cli.main import model_config, resolve_model
    from pipeline.inputs.reader import write_bytes_atomic, write_frame_atomic
    from pipeline.registry import store as registry
    from pipeline.reports.page import figure_png
    from pipeline.scoring.drift import drift_chart, drift_report

    if bins < 2:
        raise UserError(f"--bins must be at least 2, got {bins}")
    for path in (input, reference):
        if path is not None and not Path(path).exists():
            raise UserError(f"{path}: file not found")
    started = time.perf_counter()
    ref, cfg = resolve_model(model, config, tracking_uri)
    model_cfg = model_config(ref, cfg)
    rules = registry.load_rules(ref)
    if not rules.factors:
        raise UserError(f"{ref.name} v{ref.version} has an empty points table (no signal): "
                        "no factor to check for drift")
    ref_frame = feature_frame_for_rules(model_cfg, rules, reference)
    batch = feature_frame_for_rules(model_cfg, rules, input)
    result = drift_report(rules, ref_frame, batch, bins=bins)
    out.mkdir(parents=True, exist_ok=True)
    write_frame_atomic(out / "drift.csv", result.table)
    write_bytes_atomic(out / "drift.png", figure_png(drift_chart(result.table)))
    _print_drift(result, f"{ref.name} v{ref.version}")
    say(f"compared {result.batch_leads:,} leads from {input} with {result.reference_leads:,} "
        f"reference leads from {reference or model_cfg.data.leads} in "
        f"{time.perf_counter() - started:.1f}s; wrote {out / 'drift.csv'} and "
        f"{out / 'drift.png'}")
    flagged = result.table[result.table["verdict"] == "retrain"]["factor"].tolist()
    watch = result.table[result.table["verdict"] == "watch"]["factor"].tolist()
    if watch:
        say(f"warning: drift to watch (PSI 0.1-0.25): {', '.join(watch)}")
    if flagged:
        raise DriftError(f"drift: retrain advised (PSI > 0.25) for {', '.join(flagged)}",
                         hint=f"see {out / 'drift.csv'}; retrain on recent leads with "
                              "'lead-scoring train'")


def _print_drift(result, title: str) -> None:  # noqa: ANN001 - a DriftReport
    from rich.table import Table

    colours = {"stable": "green", "watch": "yellow", "retrain": "red"}
    table = Table(title=f"{title}: drift (PSI)")
    for col in ("factor", "psi", "verdict", "unseen levels", "unseen leads"):
        table.add_column(col, justify="left" if col in ("factor", "verdict") else "right")
    for row in result.table.itertuples():
        table.add_row(str(row.factor), f"{row.psi:.4f}",
                      f"[{colours[row.verdict]}]{row.verdict}[/]", str(row.unseen_levels),
                      f"{row.unseen_leads:,}")
    rich_console().print(table)


def register(app: typer.Typer) -> None:
    """Add the ``report`` and ``drift`` commands to the main CLI (idempotent)."""
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in
             app.registered_commands}
    if "report" not in names:
        app.command("report")(report)
    if "drift" not in names:
        app.command("drift")(drift)
