"""``lead-scoring export``, ``verify-export`` and ``features``: the table for other scorers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.main import (
    ConfigOpt,
    ModelOpt,
    app,
    events_source,
    lookup_adder,
    model_config,
    resolve_model,
)
from pipeline.cli.score import time_option
from pipeline.errors import UserError
from pipeline.workflow import say

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
                                      time_option("--as-of", as_of))
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
                                      time_option("--as-of", as_of))
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
    add_lookups = lookup_adder(cfg, rules.missing_values)
    if add_lookups is not None:
        raw = add_lookups(raw)
    settings = FeatureSettings.from_config(cfg)
    log = events_source(cfg, events) if event_factors(rules, settings) else None
    frame = scoring_features(raw, rules, settings, events=log, as_of=as_of)
    absent = [name for name in rules.input_columns() if name not in frame.columns]
    if absent:  # as `lead-scoring score` refuses it: every export would score them as missing
        raise UserError(f"{source}: lacks columns the points table needs: {absent}",
                        hint="pass raw leads with the columns of the training data")
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
