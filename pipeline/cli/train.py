"""``lead-scoring demo-data`` and ``lead-scoring train``: demo data and the training run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from pipeline import workflow
from pipeline.cli.main import (
    ConfigOpt,
    MasterOpt,
    app,
    load_config,
    maybe_lock,
    rich_console,
)
from pipeline.errors import UserError
from pipeline.workflow import say

# --------------------------------------------------------------------------- demo data


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option(help="output folder")] = Path("data/raw/demo"),
    n_leads: Annotated[int, typer.Option(help="number of leads")] = 20_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 42,
    if_absent: Annotated[bool, typer.Option("--if-absent", help="do nothing when the files exist")]
    = False,
) -> None:
    """Write the synthetic demo data (leads.csv, events.csv, truth.json), deterministic by seed."""
    from pipeline.inputs.demo_data import generate_demo_data, write_demo_data

    names = ("leads.csv", "events.csv", "truth.json")
    if if_absent and all((out / n).exists() for n in names):
        say(f"demo data already in {out} (delete it or drop --if-absent to regenerate)")
        return
    if n_leads < 100:
        raise UserError(f"--n-leads must be at least 100, got {n_leads}")
    started = time.perf_counter()
    data = generate_demo_data(n_leads=n_leads, seed=seed)
    paths = write_demo_data(data, out)
    say(f"wrote {len(data.leads):,} leads and {len(data.events):,} events in "
        f"{time.perf_counter() - started:.1f}s: " + ", ".join(str(p) for p in paths))


# --------------------------------------------------------------------------- training


@app.command()
def train(
    config: ConfigOpt = None,
    data: Annotated[Path | None, typer.Option("--data", help="leads file (overrides the config)")]
    = None,
    out: Annotated[Path | None, typer.Option(help="local output folder (default "
                                                  "data/processed/<config name>)")] = None,
    lock: Annotated[bool, typer.Option("--lock", help="refuse to run next to another train")]
    = False,
    no_score: Annotated[bool, typer.Option("--no-score", help="skip scoring the leads")] = False,
    master: MasterOpt = None,
) -> None:
    """Train, register a new version in MLflow, gate the champion, score the leads."""
    from pipeline.registry.store import check_store_writable

    cfg = load_config(config, data, master)
    check_store_writable(cfg.registry.tracking_uri)
    targets = cfg.for_targets()
    for target_cfg in targets:
        check_training_paths(target_cfg, out / target_cfg.name if out and len(targets) > 1
                             else out)
    with maybe_lock(cfg, lock, "train"), workflow.training_memory():
        for target_cfg in targets:
            if len(targets) > 1:
                say(f"=== target {target_cfg.label.column} -> model {target_cfg.model_name}")
            _train(target_cfg, out / target_cfg.name if out and len(targets) > 1 else out,
                   score=not no_score)


def check_training_paths(cfg, out: Path | None) -> None:
    """Before the work: the files training writes to its output folder may not be one of
    its inputs (``--out`` the data folder, say) and must be writable."""
    from pipeline.outputs import check_run_paths, path_kind

    out_dir = Path(out) if out else Path(cfg.root) / "data" / "processed" / cfg.name
    if path_kind(out_dir) not in ("missing", "dir"):
        raise UserError(f"--out {out_dir} is not a folder", hint="give a folder for --out")
    names = (*workflow.OUTPUT_FILES, "points_rules.json", "scored_leads.csv",
             "rejected_leads.csv")
    inputs = {"--data": cfg.data.leads, "data.events": cfg.data.events,
              **{f"data.lookups[{i}]": entry.path for i, entry in enumerate(cfg.data.lookups)}}
    check_run_paths(inputs, {f"--out {out_dir}: {name}": out_dir / name for name in names})


def _train(cfg, out: Path | None, *, score: bool) -> None:
    """The training workflow (:func:`pipeline.workflow.train_and_register`), then the
    leads scored with the registered table and the summary printed."""
    from pipeline.cli.score import score_to_file

    run = workflow.train_and_register(cfg, out)
    scored_path = run.out_dir / "scored_leads.csv"
    if score and run.rules.factors:
        summary = score_to_file(cfg, run.rules, cfg.data.leads, scored_path,
                                 run.out_dir / "rejected_leads.csv", as_of=None, since=None,
                                 batch_size=200_000, engine="pandas")
        workflow.step(f"[5/5] scored {summary.scored:,} leads ({summary.sdr_ready:,} "
                      f"SDR-ready, {summary.rejected} rejected)")
    _print_training(run.result, run.ref, run.decision, run.out_dir,
                    scored_path if score else None, time.perf_counter() - run.started)


def _print_training(result, ref, decision, out_dir: Path, scored: Path | None, seconds: float):
    from rich.table import Table

    console = rich_console()
    m = result.metrics
    if result.no_signal:
        console.print("[bold red]no signal[/]: nothing beats the base rate out of sample; the "
                      "points table is empty, no lead is SDR-ready and the version was not "
                      "promoted.")
    table = Table(title=f"{ref.name} v{ref.version}: points table", show_lines=False)
    for col in ("factor", "group", "level", "points", "leads"):
        table.add_column(col, justify="right" if col in ("points", "leads") else "left")
    for row in result.points_table.itertuples():
        if row.level == "(unseen)":
            continue
        table.add_row(str(row.factor), str(row.group), str(row.level), f"{row.points:+d}",
                      f"{row.leads:,}")
    if len(result.points_table):
        console.print(table)
    if not result.no_signal:
        if "cv_auc_kept" in m:
            console.print(f"selection: CV AUC {m['cv_auc_kept']:.4f} with the "
                          f"{len(result.analysis.kept)} kept factors, "
                          f"{m['cv_auc_eligible']:.4f} with every eligible candidate")
        console.print(
            f"holdout AUC points {m['holdout_auc']:.4f} | model {m['holdout_auc_model']:.4f} | "
            f"gradient boosting {m['holdout_auc_benchmark']:.4f} | Brier {m['holdout_brier']:.4f} "
            f"| KS {m['holdout_ks']:.3f} | rounding loss {m['rounding_auc_loss']:+.4f}")
        t = result.threshold
        console.print(f"SDR-ready at {t.threshold} points ({t.method}): {t.sdr_ready_share:.1%} of "
                      f"leads, expected close rate {t.expected_close_rate:.1%}; reach it on FIT "
                      f"alone: {t.fit_only_share:.1%}")
    for note in result.notes:
        console.print(f"[yellow]note[/]: {note}")
    console.print(f"gate: {decision['summary']}")
    console.print(f"points table: {out_dir / 'points_table.csv'}")
    console.print(f"report:       {out_dir / 'report.html'}")
    if scored is not None and scored.exists():
        console.print(f"scored leads: {scored}")
    console.print(f"model:        models:/{ref.name}/{ref.version} (run {ref.run_id}) "
                  f"in {seconds:.1f}s")
