"""``lead-scoring lift`` and ``lead-scoring evaluate``: attribute analysis and cross-validation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.main import (
    ConfigOpt,
    MasterOpt,
    app,
    events_source,
    load_config,
    read_leads,
    rich_console,
    say_warnings,
)
from pipeline.errors import UserError
from pipeline.workflow import say

# --------------------------------------------------------------------------- analysis


@app.command()
def lift(
    config: ConfigOpt = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("data/processed/lift"),
    data: Annotated[Path | None, typer.Option("--data", help="leads file (overrides the config)")]
    = None,
    top: Annotated[int, typer.Option(help="levels to show at the top and bottom")] = 10,
    master: MasterOpt = None,
) -> None:
    """Attribute analysis: lift table, associations, factor selection and lift charts."""
    from pipeline.inputs.features import build_features
    from pipeline.model.train_analysis import analyse
    from pipeline.reports.artifacts import write_analysis

    cfg = load_config(config, data, master)
    started = time.perf_counter()
    leads = read_leads(cfg, training=True)
    events = events_source(cfg, None)
    from pipeline.progress import stage

    with stage("building the features"):
        features = build_features(leads, cfg, events=events)
    say_warnings(leads, features, events)
    frame = features.frame
    with stage("lift, associations and selection"):
        analysis = analyse(frame[features.factors], frame["converted"], features.groups, cfg,
                           dropped=features.dropped, numeric=features.numeric)
    with stage("writing tables and charts"):
        paths = write_analysis(out, analysis, float(frame["converted"].mean()))
    _print_lift(analysis, top)
    say(f"analysed {len(features.factors)} columns of {len(frame):,} leads in "
        f"{time.perf_counter() - started:.1f}s; kept {len(analysis.kept)}: "
        f"{', '.join(analysis.kept) or '(none: no signal)'}")
    say(f"wrote {len(paths)} files to {out}")


def _print_lift(analysis, top: int) -> None:
    from rich.table import Table

    console = rich_console()
    lift_table = analysis.lift.sort_values("shrunk_diff_pp", ascending=False)
    for title, rows in (("top levels", lift_table.head(top)),
                        ("bottom levels", lift_table.tail(top).iloc[::-1])):
        table = Table(title=title)
        for col in ("attribute", "level", "leads", "rate", "lift", "shrunk pp", "p adj"):
            table.add_column(col)
        for r in rows.itertuples():
            table.add_row(str(r.attribute), str(r.level), f"{r.leads:,}",
                          f"{r.conversion_rate:.1%}", f"{r.lift:.2f}", f"{r.shrunk_diff_pp:+.1f}",
                          f"{r.p_adjusted:.2g}")
        console.print(table)
    leaks = analysis.selection[analysis.selection["reason"].str.startswith("leak")]
    for r in leaks.itertuples():
        console.print(f"[red]leakage[/]: {r.column}: {r.reason}")


@app.command()
def evaluate(
    config: ConfigOpt = None,
    folds: Annotated[int, typer.Option(help="cross-validation folds")] = 5,
    data: Annotated[Path | None, typer.Option("--data", help="leads file (overrides the config)")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    master: MasterOpt = None,
) -> None:
    """Cross-validate the whole selection + fit + points procedure."""
    from pipeline.inputs.features import build_features
    from pipeline.model.cross_validation import cross_validate

    cfg = load_config(config, data, master)
    if folds < 2:
        raise UserError(f"--folds must be at least 2, got {folds}")
    from pipeline.progress import stage

    with stage("reading the leads, building the features"):
        leads = read_leads(cfg, training=True)
        features = build_features(leads, cfg, events=events_source(cfg, None))
    started = time.perf_counter()
    result = cross_validate(features, cfg, folds=folds)
    result["seconds"] = round(time.perf_counter() - started, 2)
    if as_json:
        print(json.dumps(result, sort_keys=True))
        return
    console = rich_console()
    console.print(f"{folds}-fold cross-validation on {int(result['n_leads']):,} leads:")
    for key in ("auc_points", "auc_unconstrained", "auc_model", "auc_benchmark",
                "brier_points", "brier_model", "rounding_auc_loss", "n_factors"):
        console.print(f"  {key:<18} {result[key]:.4f} +- {result[key + '_std']:.4f}")
    if result["n_factors"] == 0:
        console.print("no signal: no factor passed selection in any fold")
