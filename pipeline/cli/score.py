"""``lead-scoring score``: score leads with a registered version, every lead scored or rejected."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.main import (
    ConfigOpt,
    ModelOpt,
    app,
    connect,
    events_source,
    load_config,
    lookup_adder,
    maybe_lock,
    model_config,
    resolve_model,
    with_master,
)
from pipeline.errors import NothingScoredError, UserError
from pipeline.workflow import say

# --------------------------------------------------------------------------- scoring


def score_to_file(cfg, rules, input_path: Path, output: Path, rejects: Path | None, *, as_of,
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
    add_lookups = lookup_adder(cfg, rules.missing_values)
    changed = None
    events = (events_source(cfg, None) if rules.decay_half_life_days or rules.event_rules
              else None)
    if events is not None:
        from pipeline.inputs.event_log import check_event_log

        checked = check_event_log(events, settings.event_to_group, default_as_of=as_of is None)
        for warning in checked.warnings:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        as_of = as_of if as_of is not None else checked.as_of
        from pipeline.inputs.event_features import changed_since, event_features_for_scoring

        if since is not None:  # first: the event features are made for these leads only
            changed = changed_since(cfg, events, since, leads=Path(input_path))
            if not changed:
                raise NothingNew(since)
        if event_factors(rules, settings):
            event_table = event_features_for_scoring(cfg, events, rules, as_of=as_of,
                                                     leads=Path(input_path), only_ids=changed)
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
    as_of_ts = time_option("--as-of", as_of)
    since_ts = time_option("--since", since)
    if model is None and config is not None:
        cfg = load_config(config, master=master)
        if cfg.targets:
            _score_targets(cfg, input, output, rejects, as_of=as_of_ts, since=since_ts,
                           batch_size=batch_size, engine=engine, lock=lock)
            return
    ref, rules, model_cfg = _score_model(model, config, tracking_uri)
    model_cfg = with_master(model_cfg, master)
    source = Path(input) if input else Path(model_cfg.data.leads)
    check_score_paths(model_cfg, source, output, rejects)
    from pipeline.outputs import output_lock

    with maybe_lock(model_cfg, lock, "score"), output_lock(output, rejects):
        started = time.perf_counter()
        try:
            summary = score_to_file(model_cfg, rules, source, output, rejects, as_of=as_of_ts,
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

    cfg = load_config(config) if config is not None else None
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


def time_option(option: str, value: str | None):
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

    connect(cfg)
    source = Path(input) if input else Path(cfg.data.leads)
    check_score_paths(cfg, source, output, rejects)
    merged, all_rejects = None, []
    with maybe_lock(cfg, lock, "score"), tempfile.TemporaryDirectory() as tmp:
        for target_cfg in cfg.for_targets():
            target = target_cfg.name.removeprefix(f"{cfg.name}-")
            ref = registry.resolve(f"{target_cfg.model_name}@champion")
            rules = registry.load_rules(ref)
            part, part_rejects = Path(tmp) / f"{target}.parquet", Path(tmp) / f"{target}_rej.csv"
            summary = score_to_file(target_cfg, rules, source, part, part_rejects, as_of=as_of,
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
    from pipeline.scoring.accounts import account_rollup, lead_accounts

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
