"""``lead-scoring audit``, ``edit`` and ``register-rules``: people in the loop.

``audit`` evaluates rule sets a company already uses beside the learned table on the same
holdout; ``edit`` writes the points editor page of a version; ``register-rules`` registers an
edited (or imported) table as a new version, tagged as edited by hand, with its diff to the
parent version, through the same promotion gate as a training
(:func:`pipeline.workflow.gate`).
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli.main import ConfigOpt, ModelOpt, rich_console
from pipeline.errors import UserError
from pipeline.workflow import say

TrackingOpt = Annotated[str | None, typer.Option(help="MLflow tracking URI (with --model)")]


@dataclass(frozen=True)
class Holdout:
    """The leads of a config split as its trainings split them."""

    features: Any  # a pipeline.inputs.features.FeatureSet (raw columns added)
    split: Any  # a pipeline.model.evaluate.Split
    train: Any  # pandas frames
    holdout: Any
    weeks: float | None


def load_holdout(cfg, half_lives: dict[str, float], event_rules=()) -> Holdout:  # noqa: ANN001
    """Read and validate the config's leads, build their features (the learned table's
    half-lives or event rules: no search), add the raw lead columns the features do not hold
    (hand-made rules may read them), and split them as training does (same share, seed and
    method)."""
    from pipeline import workflow
    from pipeline.inputs.features import build_features
    from pipeline.model.audit import holdout_weeks
    from pipeline.model.evaluate import holdout_split

    leads = workflow.read_leads(cfg, training=True)
    say(f"read {len(leads.frame):,} labelled leads from {cfg.data.leads}")
    features = build_features(leads, cfg, events=workflow.events_source(cfg, None),
                              half_lives=dict(half_lives) or None,
                              crm_rules=list(event_rules) or None)
    frame = features.frame
    raw = leads.frame.reset_index(drop=True)
    if len(raw) == len(frame):
        extra = [c for c in raw.columns if c not in frame.columns]
        frame = frame.reset_index(drop=True).assign(**{c: raw[c] for c in extra})
        features = replace(features, frame=frame)
    y = frame["converted"].to_numpy(dtype=int)
    split = holdout_split(frame, y, share=cfg.model.holdout_share, seed=cfg.seed)
    train, hold = frame.iloc[split.train], frame.iloc[split.holdout]
    created = hold["created_at"] if "created_at" in hold.columns else None
    return Holdout(features, split, train.reset_index(drop=True), hold.reset_index(drop=True),
                   holdout_weeks(created))


def _read_events(cfg):  # noqa: ANN001, ANN202 - a Config -> a pandas frame
    """The config's raw event log (``lead_id, event, timestamp``) as text columns."""
    import pandas as pd

    from pipeline import workflow

    path = workflow.events_source(cfg, None)
    if path is None:
        raise UserError("the rules count events (event criteria rows) but the config has no "
                        "event log", hint="set data.events and events.groups in the config")
    if "".join(path.suffixes).lower().endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def counted(cfg, rules, data: Holdout, events) -> tuple[Any, Any, Any]:  # noqa: ANN001
    """``(frame, train, holdout)``: the leads with the columns ``rules``' event rules count,
    each lead as of its training snapshot (creation + ``events.snapshot_horizon_days``), the
    way a CRM applies event criteria
    (:func:`pipeline.exports.event_criteria.event_counts`); the frames as they are when
    ``rules`` counts no events."""
    if not rules.event_rules:
        return data.features.frame, data.train, data.holdout
    import pandas as pd

    from pipeline.exports.event_criteria import event_counts

    frame = data.features.frame
    if "created_at" not in frame.columns:
        raise UserError("the rules count events (event criteria rows) but the leads have no "
                        "creation time", hint="set data.created_at_column in the config")
    as_of = pd.to_datetime(frame["created_at"]) + pd.Timedelta(
        days=cfg.events.snapshot_horizon_days)
    counts = event_counts(rules, frame, events, as_of=as_of, id_column=cfg.data.id_name)
    frame = frame.assign(**{c: counts[c] for c in counts.columns})
    return (frame, frame.iloc[data.split.train].reset_index(drop=True),
            frame.iloc[data.split.holdout].reset_index(drop=True))


def _check_columns(name: str, rules, frame) -> None:
    from pipeline.model.audit import missing_columns

    absent = missing_columns(rules, frame)
    if absent:
        raise UserError(f"{name}: the leads have no column {', '.join(map(repr, absent))}",
                        hint="rename the rule's field to a column of the leads file or a "
                             "derived signal (email_domain_type, name_spam, seniority)")


def _learned(model: str | None, config: Path | None, tracking_uri: str | None):
    from pipeline.cli.main import model_config, resolve_model
    from pipeline.registry import store as registry

    ref, cfg = resolve_model(model, config, tracking_uri)
    return ref, model_config(ref, cfg), registry.load_rules(ref)


# --------------------------------------------------------------------------- audit


def audit(
    rules: Annotated[list[Path], typer.Option("--rules", "-r", help="rule set(s) to audit: "
                                              "rules JSON/CSV, HubSpot JSON, CRM sheet "
                                              "(event criteria rows too)")],
    config: ConfigOpt = None,
    model: ModelOpt = None,
    threshold: Annotated[int | None, typer.Option(help="SDR-ready threshold of the audited "
                                                  "rules (default: theirs; a sheet without "
                                                  "one: the learned table's volume)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    report: Annotated[Path | None, typer.Option(help="also write the audit as an HTML report "
                                                "section")] = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Evaluate existing rule sets beside the learned table on the same holdout."""
    from pipeline.exports.importers import read_rules
    from pipeline.model.audit import audit_tables, code_table, threshold_for_volume

    ref, cfg, learned = _learned(model, config, tracking_uri)
    data = load_holdout(cfg, learned.decay_half_life_days, learned.event_rules)
    learned_name = f"learned v{ref.version}"
    _check_columns(learned_name, learned, data.holdout)
    volume = int(((code_table(learned, data.holdout).totals() >= learned.sdr_threshold)
                  & ~code_table(learned, data.holdout).spam).sum())
    tables, notes, frames, events = {learned_name: learned}, [], {}, None
    for path in rules:
        imported = read_rules(path, missing_values=cfg.data.missing_values,
                              numeric=data.features.numeric, event_groups=cfg.events.groups)
        name = path.name if path.name not in tables else str(path)
        if imported.rules.event_rules and events is None:
            events = _read_events(cfg)
        if imported.rules.event_rules:
            seen = set(events["event"].astype(str))
            notes += [f"{name}: {r.factor}: event(s) {', '.join(sorted(set(r.events) - seen))} "
                      f"never occur in {cfg.data.events}: they count 0"
                      for r in imported.rules.event_rules if set(r.events) - seen]
        _, train, holdout = counted(cfg, imported.rules, data, events)
        frames[name] = (train, holdout)
        _check_columns(str(path), imported.rules, holdout)
        table = imported.rules
        if threshold is not None:
            table = replace(table, sdr_threshold=threshold)
        elif not imported.has_threshold:
            chosen = threshold_for_volume(code_table(table, holdout).totals(), volume)
            table = replace(table, sdr_threshold=chosen)
            notes.append(f"{name}: no SDR-ready threshold in a {imported.format} file: "
                         f"{chosen} points, the learned table's volume ({volume:,} holdout "
                         "leads) or the nearest")
        notes += [f"{name}: {n}" for n in imported.notes]
        tables[name] = table
    result = audit_tables(tables, data.train, data.holdout, reference=learned_name,
                          weeks=data.weeks, alpha=cfg.analysis.significance, frames=frames)
    if cfg.model.refit_on_all:
        notes.append(f"{learned_name} was refit on every labelled lead (model.refit_on_all): "
                     "it has seen the holdout, its figures flatter it")
    if report is not None:
        from pipeline.inputs.reader import write_text_atomic
        from pipeline.reports.audit import audit_section
        from pipeline.reports.page import render_html

        write_text_atomic(report, render_html(
            f"Audit of rule sets: {ref.name}", f"{result.holdout_leads:,} holdout leads of "
            f"{cfg.data.leads}", [audit_section(result, notes)]))
        say(f"report -> {report}")
    if as_json:
        print(json.dumps({**result.to_dict(), "notes": notes}, sort_keys=True))
        return
    _print_audit(result, notes)


def _print_audit(result, notes: list[str]) -> None:  # noqa: ANN001 - an AuditResult
    from rich.table import Table

    table = Table(title=f"audit on {result.holdout_leads:,} holdout leads "
                        f"(base rate {result.holdout_rate:.1%})")
    table.add_column("figure")
    s = result.summary
    for name in s["table"]:
        table.add_column(str(name), justify="right")

    def pct(x: float) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1%}"

    def num(x: float, digits: int = 4) -> str:
        return "-" if isinstance(x, float) and math.isnan(x) else f"{x:.{digits}f}"

    rows = [("factors / rules", [f"{a} / {b}" for a, b in zip(s["factors"], s["rules"],
                                                               strict=True)]),
            ("AUC", [num(x) for x in s["auc"]]),
            ("Brier (calibrated)", [num(x) for x in s["brier_calibrated"]]),
            ("SDR-ready threshold", [str(x) for x in s["sdr_threshold"]]),
            ("SDR-ready leads", [f"{x:,} ({pct(y)})" for x, y in zip(s["sdr_ready"],
                                                                     s["sdr_ready_share"],
                                                                     strict=True)])]
    if result.weeks:
        rows.append(("SDR-ready per week", [num(x, 1) for x in s["sdr_ready_per_week"]]))
    rows += [("close rate", [pct(x) for x in s["close_rate"]]),
             (f"close rate, top {result.volume:,}", [pct(x) for x in s["close_rate_at_volume"]]),
             ("contradictions", [str(x) for x in s["contradictions"]])]
    for label, values in rows:
        table.add_row(label, *values)
    console = rich_console()
    console.print(table)
    for row in result.contradictions.itertuples():
        console.print(f"contradiction ({row.table}): {row.factor} = {row.level}: {row.points:+d} "
                      f"points vs factor average {row.factor_average_points:+.1f}, yet it closes "
                      f"at {row.conversion_rate:.1%} vs {row.overall_rate:.1%} "
                      f"({row.leads:,} training leads)")
    for note in notes:
        console.print(f"[yellow]note[/]: {note}")


# --------------------------------------------------------------------------- edit


def edit(
    model: ModelOpt = None,
    config: ConfigOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML page to write")]
    = Path("data/processed/points_editor.html"),
    tracking_uri: TrackingOpt = None,
) -> None:
    """Write the points editor of a version: one HTML page, open it in a browser."""
    from pipeline.inputs.reader import write_text_atomic
    from pipeline.model.audit import code_table
    from pipeline.reports.editor import editor_html, editor_payload

    ref, cfg, rules = _learned(model, config, tracking_uri)
    if not rules.factors:
        raise UserError(f"{ref.name} v{ref.version} has an empty points table (no signal): "
                        "nothing to edit")
    if output.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--output {output}: the editor is an HTML page, give a .html name")
    data = load_holdout(cfg, rules.decay_half_life_days, rules.event_rules)
    _check_columns(f"{ref.name} v{ref.version}", rules, data.holdout)
    payload = editor_payload(code_table(rules, data.train),
                             data.train["converted"].to_numpy(dtype=int),
                             code_table(rules, data.holdout),
                             data.holdout["converted"].to_numpy(dtype=int),
                             parent=f"{ref.name}/{ref.version}",
                             alpha=cfg.analysis.significance, weeks=data.weeks)
    write_text_atomic(output, editor_html(payload))
    say(f"{ref.name} v{ref.version}: points editor -> {output} ({len(data.holdout):,} holdout "
        "leads embedded); Save there, then: lead-scoring register-rules FILE")


# --------------------------------------------------------------------------- register-rules


@dataclass(frozen=True)
class EditedTable:
    """What :func:`pipeline.workflow.gate` reads of a training result, for a table edited
    by hand: its rules, holdout metrics and split."""

    rules: Any
    metrics: dict[str, float]
    split: Any
    no_signal: bool = False


def register_rules(
    file: Annotated[Path, typer.Argument(help="the rules file (the editor's, or any format "
                                         "audit reads)")],
    parent: Annotated[str | None, typer.Option(help="NAME/VERSION it was edited from "
                                               "(default: the file's, else @champion)")]
    = None,
    config: ConfigOpt = None,
    reason: Annotated[str, typer.Option(help="why (kept on the version)")] = "edited by hand",
    tracking_uri: TrackingOpt = None,
) -> None:
    """Register a table edited by hand as a new version (diff to its parent, promotion gate)."""
    from pipeline import workflow
    from pipeline.exports.diff import diff_rules
    from pipeline.exports.importers import read_rules
    from pipeline.inputs.features import FeatureSettings
    from pipeline.inputs.reader import write_text_atomic
    from pipeline.model.audit import audit_tables, calibrate, code_table
    from pipeline.registry import aliases
    from pipeline.registry import store as registry

    pre = read_rules(file)
    ref, cfg, base = _learned(parent or pre.parent, config, tracking_uri)
    imported = read_rules(file, missing_values=cfg.data.missing_values,
                          event_groups=cfg.events.groups)
    data = load_holdout(cfg, base.decay_half_life_days, base.event_rules)
    frame, train, holdout = counted(cfg, imported.rules, data, _read_events(cfg)
                                    if imported.rules.event_rules else None)
    _check_columns(str(file), imported.rules, holdout)
    y_train = data.train["converted"].to_numpy(dtype=int)
    a, b = calibrate(code_table(imported.rules, train).totals(), y_train)
    rules = replace(imported.rules, prob_intercept=a, prob_slope=b, model_name=ref.name,
                    model_version="", derived=base.derived, data_hash=base.data_hash,
                    decay_half_life_days=dict(base.decay_half_life_days),
                    scaling=dict(base.scaling))
    diff = diff_rules(base, rules)
    result = audit_tables({"edited": rules, "parent": base}, data.train, data.holdout,
                          reference="parent", weeks=data.weeks,
                          alpha=cfg.analysis.significance, frames={"edited": (train, holdout)})
    row = result.summary.set_index("table").loc["edited"]
    metrics = {"holdout_auc": float(row["auc"]), "holdout_brier": float(row["brier_calibrated"]),
               "sdr_ready_share": float(row["sdr_ready_share"]),
               "contradictions": float(row["contradictions"]),
               "n_holdout": float(len(data.holdout)), "changed_rules": float(len(diff))}
    if not math.isnan(row["close_rate"]):
        metrics["holdout_close_rate"] = float(row["close_rate"])
    parent_ref = f"{ref.name}/{ref.version}"
    tags = {"edited_by_hand": "true", "parent_version": ref.version,
            "changed_rules": str(len(diff)), "config_name": cfg.name,
            **workflow.input_digests(cfg)}
    with tempfile.TemporaryDirectory() as tmp:
        art = Path(tmp)
        write_text_atomic(art / registry.RULES_FILE, rules.to_json())
        write_text_atomic(art / "diff_to_parent.csv", diff.to_csv(index=False))
        write_text_atomic(art / "edited_rules_source" / file.name,
                          file.read_text(encoding="utf-8-sig"))
        write_text_atomic(art / "audit.json", json.dumps(result.to_dict(), sort_keys=True))
        write_text_atomic(art / "locked.json", json.dumps(imported.locked, sort_keys=True))
        try:
            registry.download_artifact(ref, "config.json", art)
        except Exception as exc:  # noqa: BLE001 - MLflow raises several types for "absent"
            raise UserError(f"{parent_ref} has no config.json artifact: {exc}",
                            hint="edit a version trained by this version of lead-scoring"
                            ) from None
        new = registry.log_training(
            model_name=ref.name, params={"edited_from": parent_ref, "reason": reason,
                                         "config_name": cfg.name},
            metrics=metrics, tags=tags, artifact_dir=art, rules=rules,
            feature_settings=FeatureSettings.from_config(cfg),
            input_example=workflow.raw_example(cfg, data.features.frame))
    aliases.tag_version(new, {"edited_by_hand": "true", "parent_version": ref.version,
                              "edit_reason": reason, "changed_rules": str(len(diff))})
    # the gate scores the edited table on its own event counts; the champion is compared on
    # them only when its event rules are these (else through its logged holdout AUC)
    kept = [r for r in data.features.event_rules if r.factor not in
            {e.factor for e in rules.event_rules}]
    features = replace(data.features, frame=frame, event_rules=[*kept, *rules.event_rules])
    decision = workflow.gate(cfg, new, EditedTable(rules, metrics, data.split), features)
    from pipeline.registry.trail import version_description

    registry.describe_version(new, "Edited by hand: " + version_description(
        version=new.version, parent=ref.version, changes=diff, metrics=metrics,
        decision=decision, kept=rules.factor_names(), rows=len(data.features.frame)))
    console = rich_console()
    if len(diff):
        console.print(f"changes from {parent_ref}:")
        console.print(diff.to_string(index=False))
    else:
        console.print(f"no points changed from {parent_ref}")
    if imported.locked:
        console.print("locked levels (for points.locked in the config, relative to each "
                      "factor's most common level):")
        for key, value in sorted(imported.locked.items()):
            console.print(f"  {json.dumps(key)}: {value}")
    say(f"registered {new.name} version {new.version} (edited by hand from v{ref.version}, "
        f"holdout AUC {metrics['holdout_auc']:.4f}); {decision['summary']}")


def register(app: typer.Typer) -> None:
    """Add ``audit``, ``edit`` and ``register-rules`` to the main CLI (idempotent)."""
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in
             app.registered_commands}
    for name, command in (("audit", audit), ("edit", edit), ("register-rules", register_rules)):
        if name not in names:
            app.command(name)(command)
