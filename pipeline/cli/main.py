"""The ``lead-scoring`` command line: the I/O edge that wires config, files, stages and MLflow."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Annotated

import typer

from pipeline import workflow
from pipeline.errors import NothingScoredError, UserError
from pipeline.workflow import say

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Predictive lead scoring: learn FIT + PAIN points from won/lost history.")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="dataset config (YAML)")]
MasterOpt = Annotated[str | None, typer.Option(
    "--master", help="Spark master for events.engine spark (default: events.master, else "
                     "$LEAD_SCORING_SPARK_MASTER, else local[2])")]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m",
                                              help="NAME@ALIAS or NAME/VERSION (default: the "
                                                   "config's model at @champion)")]
_DEBUG = {"on": False}


def rich_console():
    """A rich console on stdout for the tables commands print."""
    from rich.console import Console

    return Console(stderr=False, highlight=False, soft_wrap=True)


def _quiet_third_party() -> None:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    import logging

    for name in ("mlflow", "alembic", "urllib3", "py4j", "matplotlib"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"mlflow\..*")
    warnings.filterwarnings("ignore", message=r".*Add type hints to the `predict` method.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"sklearn\..*")

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        print(f"warning: {message}", file=sys.stderr, flush=True)

    warnings.showwarning = show


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
          quiet: Annotated[bool, typer.Option(
              "--quiet", "-q", help="no progress bars and no step lines (warnings and errors "
                                    "still show)")] = False) -> None:
    from pipeline import progress

    _DEBUG["on"] = debug
    _quiet_third_party()
    progress.configure(quiet=quiet)  # bars only on a terminal


# --------------------------------------------------------------------------- helpers


def _load_config(config: Path | None, data: Path | None = None, master: str | None = None):
    from pipeline.config import load_config

    if config is None:
        raise UserError("this command needs --config FILE (or --model NAME@ALIAS where accepted)")
    return _with_master(load_config(config, data=data), master)


def _with_master(cfg, master: str | None):
    """``cfg`` with ``events.master`` set to ``--master`` (when given)."""
    if master is None:
        return cfg
    return cfg.model_copy(update={"events": cfg.events.model_copy(update={"master": master})})


# shared with the training workflow, where they are defined
_connect = workflow.connect
_read_leads = workflow.read_leads
_events_source = workflow.events_source
_say_warnings = workflow.say_warnings


def _connect_uri(tracking_uri: str | None) -> None:
    from pipeline.config import default_settings, resolve_tracking_uri
    from pipeline.registry import store as registry

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or \
        default_settings()["registry"]["tracking_uri"]
    registry.connect(resolve_tracking_uri(uri, Path.cwd()))


def _registry_context(config: Path | None, name: str | None, tracking_uri: str | None) -> str:
    """Connect to the config's store (or ``--tracking-uri`` / the default) and return the
    registered model name: ``--name``, else the config's, else ``lead-scoring``."""
    cfg = _load_config(config) if config else None
    if cfg:
        _connect(cfg)
    else:
        _connect_uri(tracking_uri)
    return name or (cfg.model_name if cfg else "lead-scoring")


def resolve_model(model: str | None, config: Path | None, tracking_uri: str | None = None):
    """(ModelRef, Config | None) from --model or --config (its model at @champion)."""
    from pipeline.registry import store as registry

    cfg = None
    if config is not None:
        cfg = _load_config(config)
        _connect(cfg)
    else:
        _connect_uri(tracking_uri)
    if model is None:
        if cfg is None:
            raise UserError("give --model NAME@ALIAS (or NAME/VERSION) or --config FILE")
        model = f"{cfg.model_name}@champion"
    return registry.resolve(model), cfg


def model_config(ref, cfg):
    """The config a version was trained with (logged as config.json), unless one was given."""
    if cfg is not None:
        return cfg
    from pipeline.config import logged_config
    from pipeline.registry import store as registry

    return logged_config(registry.load_run_json(ref, "config.json"))


def _lookup_adder(cfg, missing_values: list[str]):
    """A function adding the data.lookups columns to a batch of leads, or None."""
    if not cfg.data.lookups:
        return None
    from pipeline.inputs.intake import lookup_adder, read_lookups

    return lookup_adder(read_lookups(cfg.data.lookups), missing_values,
                        source=str(cfg.data.leads))


def _lock_path(cfg, what: str) -> Path:
    return Path(cfg.root) / "models" / f".{cfg.model_name}.{what}.lock"


def _maybe_lock(cfg, lock: bool, what: str):
    from pipeline.inputs.reader import run_lock

    return run_lock(_lock_path(cfg, what), what=f"'{what}' for {cfg.model_name}") if lock \
        else contextlib.nullcontext()


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

    cfg = _load_config(config, data, master)
    check_store_writable(cfg.registry.tracking_uri)
    targets = cfg.for_targets()
    for target_cfg in targets:
        check_training_paths(target_cfg, out / target_cfg.name if out and len(targets) > 1
                             else out)
    with _maybe_lock(cfg, lock, "train"), workflow.training_memory():
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
    run = workflow.train_and_register(cfg, out)
    scored_path = run.out_dir / "scored_leads.csv"
    if score and run.rules.factors:
        summary = _score_to_file(cfg, run.rules, cfg.data.leads, scored_path,
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


# --------------------------------------------------------------------------- scoring


def _score_to_file(cfg, rules, input_path: Path, output: Path, rejects: Path | None, *, as_of,
                   since, batch_size: int, engine: str, master: str | None = None,
                   reasons: bool = True):

    from pipeline.scoring.batch import score_file

    check_score_paths(cfg, Path(input_path), output, rejects)
    if engine != "pandas":
        from pipeline.scoring import engines

        if cfg.data.lookups:
            raise UserError(f"--engine {engine}: data.lookups are joined by the pandas engine "
                            "only", hint="score with --engine pandas, or join the lookup "
                            "columns into the leads file first")
        if engine not in ("duckdb", "spark"):
            raise UserError(f"--engine {engine!r} is not one of pandas, duckdb, spark")
        return engines.score_with_engine(engine, cfg, rules, input_path, output, rejects,
                                         master=master)
    from pipeline.inputs.features import FeatureSettings, domain_lists_note, event_factors

    settings = FeatureSettings.from_config(cfg)
    note = domain_lists_note(rules)
    if note:
        print(f"warning: {note}", file=sys.stderr, flush=True)
    event_table = None
    add_lookups = _lookup_adder(cfg, rules.missing_values)
    changed = None
    events = (_events_source(cfg, None) if rules.decay_half_life_days or rules.event_rules
              else None)
    if events is not None:
        from pipeline.inputs.event_log import check_event_log

        checked = check_event_log(events, settings.event_to_group, default_as_of=as_of is None)
        for warning in checked.warnings:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        as_of = as_of if as_of is not None else checked.as_of
        from pipeline.inputs.event_features import event_features_for_scoring

        if event_factors(rules, settings):
            event_table = event_features_for_scoring(cfg, events, rules, as_of=as_of,
                                                     leads=Path(input_path))
        if since is not None:
            from pipeline.inputs.event_features import changed_since

            changed = changed_since(cfg, events, since, leads=Path(input_path))
            if not changed:
                raise NothingNew(since)
    elif since is not None:
        raise UserError("--since needs an event log (data.events) to know which leads changed")
    from pipeline.inputs.reader import read_options
    from pipeline.progress import counter

    with counter(f"scoring {Path(input_path).name} (rows)") as progress:
        return score_file(rules, Path(input_path), output, rejects_path=rejects,
                          id_column=cfg.data.id_name, settings=settings,
                          options=read_options(cfg), add_columns=add_lookups,
                          event_table=event_table, batch_size=batch_size, only_ids=changed,
                          progress=progress, reasons=reasons)


def check_score_paths(cfg, source: Path, output: Path, rejects: Path | None) -> None:
    """Before the work: no output of a scoring run may be one of its inputs (the leads, the
    event log, a lookup file) or another of its outputs; each output must be writable."""
    from pipeline.outputs import check_run_paths, path_kind

    inputs = {"--input": source, "data.events": cfg.data.events,
              **{f"data.lookups[{i}]": entry.path for i, entry in enumerate(cfg.data.lookups)}}
    outputs = {"--output": output, "--rejects": rejects}
    if cfg.data.account_column and path_kind(output) != "stream":
        outputs["the accounts file"] = accounts_path(output)
    check_run_paths(inputs, outputs)


def accounts_path(output: Path) -> Path:
    """Where the account roll-up of ``output`` goes."""
    return output.with_name(output.stem + "_accounts.csv")



@app.command()
def score(
    model: ModelOpt = None,
    config: ConfigOpt = None,
    input: Annotated[Path | None, typer.Option("--input", "-i", help="leads (CSV or Parquet); "
                                                "default: the config's leads file")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="scored leads (CSV or Parquet)")]
    = Path("data/processed/scored_leads.csv"),
    rejects: Annotated[Path | None, typer.Option(help="rows that could not be scored, with the "
                                                      "reason (default: next to --output)")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="decay events to this time "
                                                   "(default: the newest event)")] = None,
    since: Annotated[str | None, typer.Option("--since", help="only leads with events or "
                                                   "changes at/after this time")] = None,
    batch_size: Annotated[int, typer.Option(help="rows per batch")] = 200_000,
    engine: Annotated[str, typer.Option(help="pandas | duckdb | spark")] = "pandas",
    master: Annotated[str | None, typer.Option(help="Spark master for --engine spark and "
                                                    "events.engine spark (default "
                                                    "$LEAD_SCORING_SPARK_MASTER or local[2])")]
    = None,
    reasons: Annotated[bool, typer.Option("--reasons/--no-reasons",
                                          help="write reason codes (pandas engine)")] = True,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (with --model)")]
    = None,
    lock: Annotated[bool, typer.Option("--lock", help="refuse to run next to another score")]
    = False,
) -> None:
    """Score leads with a registered version: every lead comes out scored or rejected."""
    from pipeline.outputs import path_kind

    if rejects is None and path_kind(output) == "stream":
        raise UserError(f"--output {output} is a device or pipe: the rejects need a file of "
                        "their own", hint="add --rejects FILE")
    rejects = rejects or output.with_name(output.stem + "_rejects.csv")
    as_of_ts = _time_option("--as-of", as_of)
    since_ts = _time_option("--since", since)
    if model is None and config is not None:
        cfg = _load_config(config, master=master)
        if cfg.targets:
            _score_targets(cfg, input, output, rejects, as_of=as_of_ts, since=since_ts,
                           batch_size=batch_size, engine=engine, lock=lock)
            return
    ref, rules, model_cfg = _score_model(model, config, tracking_uri)
    model_cfg = _with_master(model_cfg, master)
    source = Path(input) if input else Path(model_cfg.data.leads)
    check_score_paths(model_cfg, source, output, rejects)
    from pipeline.outputs import output_lock

    with _maybe_lock(model_cfg, lock, "score"), output_lock(output, rejects):
        started = time.perf_counter()
        try:
            summary = _score_to_file(model_cfg, rules, source, output, rejects, as_of=as_of_ts,
                                     since=since_ts, batch_size=batch_size, engine=engine,
                                     master=master, reasons=reasons)
        except NothingNew:
            say(f"nothing new since {since_ts}: no lead has an event or was created at or "
                f"after it; {output} and {rejects} are left as they were")
            return
        except NothingScoredError as exc:
            raise _without_stale_output(exc, output) from None
        if sys.stderr.isatty():
            print(file=sys.stderr)
        if model_cfg.data.account_column and path_kind(output) != "stream":
            _write_accounts(model_cfg, source, output)
    say(f"{ref.name} v{ref.version}: {summary.rows:,} rows -> {summary.scored:,} scored "
        f"({summary.sdr_ready:,} SDR-ready), {summary.rejected:,} rejected in "
        f"{time.perf_counter() - started:.1f}s")
    if summary.unseen:
        say("unseen levels (scored with the documented unseen points): " +
            ", ".join(f"{k}: {v}" for k, v in sorted(summary.unseen.items())))
    say(f"scored leads: {output}")
    say(f"rejects:      {rejects}" + (f" ({summary.rejected} rows)" if summary.rejected else ""))


def _without_stale_output(exc: NothingScoredError, output: Path) -> NothingScoredError:
    """Every row was rejected: an output left by an earlier run would sit beside today's
    rejects looking current, so it is removed (and the message says so)."""
    from pipeline.outputs import path_kind

    if path_kind(output) != "file":
        return exc
    output.unlink()
    return NothingScoredError(f"{exc.message}; removed the previous {output} so that it is "
                              "not taken for this run's", hint=exc.hint)


def _score_model(model: str | None, config: Path | None, tracking_uri: str | None):
    """(ref, rules, the version's config) of the model to score with: read straight from a
    local sqlite store when possible (:mod:`pipeline.registry.local`: no MLflow start-up),
    else through MLflow."""
    from pipeline.config import default_settings, logged_config, resolve_tracking_uri
    from pipeline.registry import store as registry
    from pipeline.registry.local import local_version

    cfg = _load_config(config) if config is not None else None
    text = model or (f"{cfg.model_name}@champion" if cfg else None)
    if text:
        uri = (cfg.registry.tracking_uri if cfg else tracking_uri
               or os.environ.get("MLFLOW_TRACKING_URI")
               or default_settings()["registry"]["tracking_uri"])
        found = local_version(resolve_tracking_uri(uri, Path(cfg.root) if cfg else Path.cwd()),
                              text)
        try:
            if found is not None:
                return (found.ref, found.rules(),
                        cfg or logged_config(found.run_json("config.json")))
        except (OSError, ValueError):
            pass  # anything unexpected: MLflow says what is wrong
    ref, cfg = resolve_model(model, config, tracking_uri)
    return ref, registry.load_rules(ref), model_config(ref, cfg)


class NothingNew(Exception):  # noqa: N818 - a state, not a failure: cron runs exit 0
    """``--since`` found no lead with an event or a creation at or after it."""


def _time_option(option: str, value: str | None):
    """``--since`` / ``--as-of`` as a timestamp, or a one-line error naming the option."""
    import pandas as pd

    if not value:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        stamp = None
    if stamp is None or pd.isna(stamp):
        raise UserError(f"{option} {value!r} is not a date or time",
                        hint="use ISO 8601, e.g. 2025-02-28 or 2025-02-28T09:00")
    return stamp


def _score_targets(cfg, input: Path | None, output: Path, rejects: Path, *, as_of, since,
                   batch_size: int, engine: str, lock: bool) -> None:
    """One score per target: each target's champion scores the leads; the columns are
    suffixed with the target name and joined on the lead id into one output file."""
    import pandas as pd

    from pipeline.inputs.reader import write_frame_atomic
    from pipeline.registry import store as registry
    from pipeline.scoring.output import read_scored

    _connect(cfg)
    source = Path(input) if input else Path(cfg.data.leads)
    check_score_paths(cfg, source, output, rejects)
    merged, all_rejects = None, []
    with _maybe_lock(cfg, lock, "score"), tempfile.TemporaryDirectory() as tmp:
        for target_cfg in cfg.for_targets():
            target = target_cfg.name.removeprefix(f"{cfg.name}-")
            ref = registry.resolve(f"{target_cfg.model_name}@champion")
            rules = registry.load_rules(ref)
            part, part_rejects = Path(tmp) / f"{target}.parquet", Path(tmp) / f"{target}_rej.csv"
            summary = _score_to_file(target_cfg, rules, source, part, part_rejects, as_of=as_of,
                                     since=since, batch_size=batch_size, engine=engine)
            say(f"{ref.name} v{ref.version}: {summary.scored:,} scored, "
                f"{summary.rejected:,} rejected")
            frame = read_scored(part)  # reason pieces joined into text
            id_col = cfg.data.id_name
            frame = frame.rename(columns={c: f"{c}_{target}" for c in frame.columns if c != id_col})
            merged = frame if merged is None else merged.merge(frame, on=id_col, how="outer")
            all_rejects.append(pd.read_csv(part_rejects).assign(target=target))
    write_frame_atomic(output, merged)
    rej = pd.concat(all_rejects, ignore_index=True).drop_duplicates(["row", "reason"])
    write_frame_atomic(rejects, rej)
    say(f"scored leads: {output} ({len(merged):,} leads, one score column per target)")
    say(f"rejects:      {rejects}")


def _write_accounts(cfg, source: Path, output: Path) -> None:
    import pandas as pd

    from pipeline.inputs.reader import read_options, read_table, table_format, write_frame_atomic
    from pipeline.scoring.batch import account_rollup, lead_accounts

    id_col = cfg.data.id_name
    scored = pd.read_parquet(output) if table_format(output) == "parquet" else \
        pd.read_csv(output, dtype={id_col: str})
    raw = read_table(source, strict=False, options=read_options(cfg)).frame
    accounts = lead_accounts(raw, scored[id_col].astype(str), id_column=id_col,
                             account_column=cfg.data.account_column)
    rolled = account_rollup(scored, accounts, id_column=id_col)
    path = accounts_path(output)
    write_frame_atomic(path, rolled)
    say(f"accounts:     {path} ({len(rolled):,} accounts)")


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

    cfg = _load_config(config, data, master)
    started = time.perf_counter()
    leads = _read_leads(cfg, training=True)
    events = _events_source(cfg, None)
    from pipeline.progress import stage

    with stage("building the features"):
        features = build_features(leads, cfg, events=events)
    _say_warnings(leads, features, events)
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

    cfg = _load_config(config, data, master)
    if folds < 2:
        raise UserError(f"--folds must be at least 2, got {folds}")
    from pipeline.progress import stage

    with stage("reading the leads, building the features"):
        leads = _read_leads(cfg, training=True)
        features = build_features(leads, cfg, events=_events_source(cfg, None))
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


# --------------------------------------------------------------------------- registry


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="version number (or NAME/VERSION)")],
    config: ConfigOpt = None,
    name: Annotated[str | None, typer.Option(help="registered model name")] = None,
    reason: Annotated[str, typer.Option(help="why (kept in the audit trail)")] = "manual promote",
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI")] = None,
) -> None:
    """Point @champion at a version explicitly (recorded in the audit trail)."""
    from pipeline.registry import aliases
    from pipeline.registry import store as registry

    model_name = _registry_context(config, name, tracking_uri)
    import mlflow

    registry.check_store_writable(mlflow.get_tracking_uri())
    ref = registry.resolve(version if "/" in version else f"{model_name}/{version}")
    aliases.promote(ref, reason=f"explicit: {reason}")
    say(f"{ref.name} @champion -> version {ref.version} ({reason})")


@app.command()
def history(
    config: ConfigOpt = None,
    name: Annotated[str | None, typer.Option(help="registered model name")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI")] = None,
) -> None:
    """The audit trail: versions, aliases, champion periods and gate decisions (80 columns)."""
    from pipeline.registry import aliases
    from pipeline.registry.trail import history_lines

    model_name = _registry_context(config, name, tracking_uri)
    frame = aliases.history(model_name)
    moves = aliases.audit_log(model_name)
    for line in history_lines(model_name, frame, moves):
        print(line)


# --------------------------------------------------------------------------- exports


@app.command("export")
def export_command(
    model: ModelOpt = None,
    config: ConfigOpt = None,
    format: Annotated[str, typer.Option("--format", "-f", help="json | csv | sql | pmml | python "
                                             "| hubspot | crm-csv | all")] = "json",
    output: Annotated[Path, typer.Option("--output", "-o", help="file (one format) or folder "
                                              "(--format all)")] = Path("data/processed/exports"),
    dialect: Annotated[str, typer.Option(help="SQL dialect: duckdb | postgres | spark")] = "duckdb",
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (with --model)")]
    = None,
) -> None:
    """Export a version's points table for rule-based scorers (CRMs, SQL, PMML, Python)."""
    from pipeline import exports as exporters
    from pipeline.outputs import check_output
    from pipeline.registry import store as registry

    ref, _ = resolve_model(model, config, tracking_uri)
    rules = registry.load_rules(ref)
    if not rules.factors:
        raise UserError(f"{ref.name} v{ref.version} has an empty points table (no signal): "
                        "nothing to export")
    if format == "all":
        from pipeline.outputs import write_texts_all_or_nothing

        texts = {}
        for fmt in exporters.FORMATS:
            for d in exporters.SQL_DIALECTS if fmt == "sql" else (None,):
                name = exporters.FILE_NAMES[fmt] if d is None else f"points_{d}.sql"
                texts[name] = exporters.export(rules, fmt, dialect=d)
        paths = write_texts_all_or_nothing(output, texts)
        for name, path in zip(texts, paths, strict=True):
            say(f"{name:<22} {path}")
        return
    if format not in exporters.FORMATS:
        raise UserError(f"--format {format!r} is not one of {', '.join(exporters.FORMATS)}, all")
    if output.is_dir() and not output.is_symlink():
        output = output / exporters.FILE_NAMES[format]
    from pipeline.inputs.reader import write_text_atomic

    check_output(output, "--output")
    path = write_text_atomic(output, exporters.export(rules, format,
                                                      dialect=dialect if format == "sql" else None))
    say(f"{ref.name} v{ref.version} -> {format}: {path}")


@app.command("verify-export")
def verify_export(
    model: ModelOpt = None,
    config: ConfigOpt = None,
    input: Annotated[Path | None, typer.Option("--input", "-i", help="raw leads to score "
                                                "(default: the config's leads file)")] = None,
    events: Annotated[Path | None, typer.Option(help="event log for the event features "
                                                "(default: the config's)")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="decay events to this time "
                                              "(default: the newest event)")] = None,
    formats: Annotated[str, typer.Option(help="comma-separated: sql,pmml,python")]
    = "sql,pmml,python",
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (with --model)")]
    = None,
) -> None:
    """Score raw leads through each executable export and compare with `lead-scoring score`,
    lead by lead. The SQL and Python exports compute the derived signals from the raw columns;
    event features (aggregates of the event log) are made by lead-scoring and added to the
    leads; the PMML reads the derived signals as fields, so they are added for it too."""
    from pipeline.exports.verify import verify_exports
    from pipeline.registry import store as registry

    ref, cfg = resolve_model(model, config, tracking_uri)
    model_cfg = model_config(ref, cfg)
    rules = registry.load_rules(ref)
    wanted = tuple(f.strip() for f in formats.split(","))
    raw, reference = raw_and_features(model_cfg, rules, input, events,
                                      _time_option("--as-of", as_of))
    exported = export_input(rules, raw, reference, derived=False)
    inputs = {"pmml": export_input(rules, raw, reference, derived=True)}
    results = verify_exports(rules, exported, formats=wanted, reference=reference, inputs=inputs)
    failed = False
    for result in results:
        note = ("  (derived signals added by lead-scoring: a Scorecard cannot compute them)"
                if result.format == "pmml" and inputs["pmml"].columns.size > exported.columns.size
                else "")
        print(f"{result.format} mismatches: {result.mismatches} of {result.total}{note}")
        failed |= result.mismatches != 0
        if result.mismatches:
            print(result.examples.to_string(index=False), file=sys.stderr)
    if failed:
        raise typer.Exit(1)


@app.command()
def features(
    model: ModelOpt = None,
    config: ConfigOpt = None,
    input: Annotated[Path | None, typer.Option("--input", "-i", help="raw leads (default: the "
                                                "config's leads file)")] = None,
    events: Annotated[Path | None, typer.Option(help="event log (default: the config's)")]
    = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="decay events to this time "
                                              "(default: the newest event)")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV to write")]
    = Path("leads_with_features.csv"),
    derived: Annotated[bool, typer.Option(help="also add the derived signals (for the PMML "
                                          "export, which cannot compute them)")] = True,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (with --model)")]
    = None,
) -> None:
    """Raw leads plus the columns an export cannot make from them: the event features
    (aggregates of the event log at --as-of) and, with --derived, the derived signals."""
    from pipeline.inputs.reader import write_frame_atomic
    from pipeline.registry import store as registry

    ref, cfg = resolve_model(model, config, tracking_uri)
    rules = registry.load_rules(ref)
    raw, reference = raw_and_features(model_config(ref, cfg), rules, input, events,
                                      _time_option("--as-of", as_of))
    frame = export_input(rules, raw, reference, derived=derived)
    write_frame_atomic(output, frame)
    say(f"{len(frame):,} leads with {frame.columns.size} columns: {output}")


def raw_and_features(cfg, rules, input_path: Path | None, events: Path | None, as_of):
    """The raw leads as read, and the per-lead table ``lead-scoring score`` scores from them
    (derived signals and event features added)."""
    import pandas as pd

    from pipeline.inputs.features import FeatureSettings, event_factors, scoring_features
    from pipeline.inputs.reader import read_options, read_table

    source = Path(input_path) if input_path else Path(cfg.data.leads)
    raw = read_table(source, strict=True, options=read_options(cfg)).frame
    add_lookups = _lookup_adder(cfg, rules.missing_values)
    if add_lookups is not None:
        raw = add_lookups(raw)
    settings = FeatureSettings.from_config(cfg)
    log = _events_source(cfg, events) if event_factors(rules, settings) else None
    frame = scoring_features(raw, rules, settings, events=log, as_of=as_of)
    numeric = {f.name: pd.to_numeric(frame[f.name], errors="coerce") for f in rules.factors
               if f.kind == "numeric" and f.name in frame.columns}
    return raw, frame.assign(**numeric)


def export_input(rules, raw, features, *, derived: bool):
    """``raw`` with the event features of ``features`` (and, with ``derived``, its derived
    signals): what an export is given."""
    from pipeline.exports.signals_py import event_columns
    from pipeline.exports.signals_sql import needed_signals

    made = [c for c in event_columns(rules) if c in features.columns and c not in raw.columns]
    if derived:
        made += [c for c in needed_signals(rules) if c in features.columns
                 and c not in raw.columns]
    return raw.assign(**{c: features[c] for c in made})


def feature_frame_for_rules(cfg, rules, input_path: Path | None):
    """The per-lead table the points table reads (derived signals and event features added)."""
    return raw_and_features(cfg, rules, input_path, None, None)[1]


@app.command()
def diff(
    old: Annotated[str, typer.Argument(help="NAME/VERSION or a version number")],
    new: Annotated[str, typer.Argument(help="NAME/VERSION or a version number")],
    config: ConfigOpt = None,
    name: Annotated[str | None, typer.Option(help="registered model name")] = None,
    all_rows: Annotated[bool, typer.Option("--all", help="also list unchanged rules")] = False,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI")] = None,
) -> None:
    """Which factors and levels changed points between two versions, and by how much."""
    from pipeline.exports.diff import diff_rules
    from pipeline.registry import store as registry

    model_name = _registry_context(config, name, tracking_uri)

    def ref_of(text: str):
        return registry.resolve(text if ("/" in text or "@" in text) else f"{model_name}/{text}")

    a, b = ref_of(old), ref_of(new)
    table = diff_rules(registry.load_rules(a), registry.load_rules(b), include_unchanged=all_rows)
    if table.empty:
        say(f"{a.name} v{a.version} and v{b.version}: identical points")
        return
    print(table.to_string(index=False))


def _register_optional_commands() -> None:
    """Commands that live in their own modules (report, drift; audit, edit, register-rules)."""
    import importlib

    for module in ("pipeline.cli.report", "pipeline.cli.people"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.register(app)


def run() -> None:
    """The console script: :func:`main`, then exit without tearing the interpreter down.

    A 1M-lead training leaves millions of Python objects behind; freeing them one by one
    at exit took 1.6 s and served nothing (the OS takes the memory back at once). The
    atexit handlers still run and the output is flushed first, so nothing is lost."""
    code: int | str | None = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    if not isinstance(code, int):  # sys.exit("message") prints it, like Python does
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    _exit_now(code)


def _exit_now(code: int) -> None:
    """What the interpreter does at exit (wait for threads, atexit handlers, flush), short of
    freeing every object, then end the process with ``code``."""
    import atexit
    import threading

    shutdown = getattr(threading, "_shutdown", None)  # what the interpreter itself calls
    if shutdown is None:
        sys.exit(code)  # an unknown Python: the ordinary exit
    shutdown()  # tells thread pools to stop, then waits for every non-daemon thread
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)


def main() -> None:
    """Entry point: user errors print one clear message (no traceback) and exit non-zero."""
    _register_optional_commands()
    try:
        app()
    except UserError as exc:
        if _DEBUG["on"]:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
