"""The training workflow: read, features, train, artifacts and report, register, gate.

The stages (:mod:`pipeline.model.train` and the modules it calls) are pure procedures with no
concurrency of their own. What may overlap lives here, through one mechanism, a
:class:`concurrent.futures.ThreadPoolExecutor`, and only for work that waits rather than
computes: connecting to the MLflow store, importing the training modules and hashing the
input files while the leads are read (Arrow and hashlib release the GIL), and Chromium
rendering the report's screenshot (a subprocess) while the run is logged to MLflow.

This module imports only the standard library at import time: the command line imports it
to answer ``--help`` and must stay quick.
"""

from __future__ import annotations

import contextlib
import gc
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.errors import UserError

GC_FIRST_GENERATION = 50_000  # while training: new container objects between young collections
OUTPUT_FILES = ("points_table.csv", "report.html", "lift_table.csv", "selection.csv",
                "trust_rules.csv")


def say(message: str) -> None:
    """Print a progress line to stderr (stdout stays clean for --json)."""
    print(message, file=sys.stderr, flush=True)


def step(message: str) -> None:
    """A ``[n/5]`` step line: :func:`say`, unless ``--quiet``."""
    from pipeline.progress import is_quiet

    if not is_quiet():
        say(message)


@contextlib.contextmanager
def training_memory() -> Iterator[None]:
    """For the training run only (both restored after it): Arrow on the system allocator
    (see :func:`pipeline.inputs.reader.system_allocator`), and the garbage collector looking at new
    objects after 50,000 of them, not 700. Importing MLflow, SQLAlchemy and matplotlib makes
    millions of objects that live as long as the process: a 1M-lead training spent 1.6 s
    collecting them, 0.5 s now."""
    from pipeline.inputs.reader import system_allocator

    thresholds = gc.get_threshold()
    gc.set_threshold(GC_FIRST_GENERATION, *thresholds[1:])
    try:
        with system_allocator():
            yield
    finally:
        gc.set_threshold(*thresholds)


def connect(cfg) -> None:
    """Connect to the config's MLflow store (created on first use)."""
    from pipeline.registry import store as registry

    registry.connect(cfg.registry.tracking_uri, experiment=cfg.experiment_name,
                     artifact_location=cfg.registry.artifact_location)


def import_training_modules() -> None:
    """Import what training needs (statsmodels, scikit-learn, matplotlib: seconds), so that
    it can be done while the leads are read."""
    import statsmodels.discrete.discrete_model  # noqa: F401 - imported for its side effect

    import pipeline.model.train  # noqa: F401
    import pipeline.reports.artifacts  # noqa: F401
    import pipeline.reports.content  # noqa: F401
    import pipeline.scoring.serving  # noqa: F401 - MLflow's pyfunc: half a second, at logging time


def read_leads(cfg, *, training: bool):
    """The leads with their lookups joined (data.lookups), validated and labelled (a bad
    file fails here)."""
    from pipeline.inputs.intake import read_leads as read_and_validate

    return read_and_validate(cfg, training=training)


def events_source(cfg, events: Path | None) -> Path | None:
    """The event log to use (``events``, else the config's), or None when the config has no
    event groups; a named log that does not exist is a user error."""
    path = events or cfg.data.events
    if path is None or not cfg.events.groups:
        return None
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: event log not found", hint="set data.events in the config")
    return path


def say_warnings(leads, features, events) -> None:
    """The intake's notes, then dropped columns and ignored events as warning lines, on
    stderr."""
    from pipeline.inputs.event_log import event_warnings

    for line in leads.notes:
        say(line)
    for line in [*leads.warnings, *event_warnings(features.event_diagnostics, str(events))]:
        say(f"warning: {line}")


def raw_example(cfg, frame):
    """The first training leads as raw leads (the creation time under its input name): the
    pyfunc model's input example."""
    created = cfg.data.created_at_column
    head = frame.head(5).reset_index(drop=True)
    if created and created not in head.columns and "created_at" in head.columns:
        head = head.assign(**{created: head["created_at"].astype(str)})
    return head


def training_params(cfg, result) -> dict[str, Any]:
    """The MLflow parameters of a training run: the settings that shaped the table."""
    params = {
        "config_name": cfg.name, "scaling": cfg.points.scaling, "pdo": cfg.points.pdo,
        "n_bins": cfg.analysis.n_bins, "min_leads": cfg.analysis.min_leads,
        "max_factors": cfg.analysis.max_factors, "min_lift_pp": cfg.analysis.min_lift_pp,
        "leakage_auc": cfg.analysis.leakage_auc, "significance": cfg.analysis.significance,
        "holdout_share": cfg.model.holdout_share,
        "split_method": result.split.method, "seed": cfg.seed,
        "kept_factors": result.analysis.kept,
    }
    if result.scorecard is not None:
        params["C"] = result.scorecard.fit_.C
    return params


def input_digests(cfg) -> dict[str, str]:
    """SHA-256 prefixes of the leads file, the event log, the lookups (one hash over their
    hashes, in config order) and the closed-deals file, as lineage tags."""
    import hashlib

    from pipeline.inputs.reader import file_digest

    digests = {"data_hash": file_digest(cfg.data.leads)}
    if cfg.data.events and Path(cfg.data.events).exists():
        digests["events_hash"] = file_digest(cfg.data.events)
    lookups = [file_digest(entry.path) for entry in cfg.data.lookups
               if Path(entry.path).is_file()]
    if lookups:
        digests["lookups_hash"] = hashlib.sha256(" ".join(lookups).encode()).hexdigest()[:16]
    if cfg.label.won_in is not None and Path(cfg.label.won_in.path).is_file():
        digests["won_in_hash"] = file_digest(cfg.label.won_in.path)
    return digests


def lineage_tags(cfg, features, result, digests: dict[str, str]) -> dict[str, str]:
    """Tags that tie a run to its data, config and code (``digests``: :func:`input_digests`)."""
    tags = {**digests, "config_hash": cfg.digest(), "rows": str(len(features.frame)),
            "config_name": cfg.name, "no_signal": str(result.no_signal).lower()}
    if "created_at" in features.frame.columns:
        tags["date_min"] = str(features.frame["created_at"].min())
        tags["date_max"] = str(features.frame["created_at"].max())
    try:
        commit = subprocess.run(["git", "-C", str(cfg.root), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=5, check=False)
        if commit.returncode == 0:
            tags["git_commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return tags


def gate(cfg, ref, result, features) -> dict[str, Any]:
    """Compare the new version with the champion on this run's holdout; promote it or not;
    record the decision on the version. A champion whose features this run lacks is
    compared through its own logged holdout AUC; one that cannot be loaded is not replaced
    blindly."""
    from pipeline.model.calibration import safe_auc
    from pipeline.registry import aliases
    from pipeline.registry import store as registry
    from pipeline.scoring.frame import score_frame

    current = aliases.champion(cfg.model_name)
    champion_auc, basis = None, "on the same holdout"
    challenger_auc = float(result.metrics["holdout_auc"])
    if current is not None and current.version != ref.version:
        try:
            rules = registry.load_rules(current)
        except Exception as exc:  # noqa: BLE001 - any store error: do not promote blindly
            decision = {"promoted": False, "challenger_auc": result.metrics["holdout_auc"],
                        "champion_auc": None,
                        "summary": f"not promoted: cannot evaluate champion v{current.version} "
                                   f"({exc})"}
            aliases.record_decision(ref, decision)
            return decision
        holdout = features.frame.iloc[result.split.holdout]
        same_features = all(f in holdout.columns for f in rules.input_columns()) and \
            dict(rules.decay_half_life_days) == dict(features.half_lives) and \
            all(r in features.event_rules for r in rules.event_rules)
        if same_features:
            # both tables as registered: a table refit on every lead has seen this holdout,
            # and so may the champion's, so the challenger is scored the same way
            y = holdout["converted"].to_numpy()
            champion_auc = safe_auc(y, score_frame(rules, holdout)["points"].to_numpy())
            if result.rules.factors:
                challenger_auc = safe_auc(y, score_frame(result.rules, holdout)["points"]
                                          .to_numpy())
            basis = "on the same holdout (both tables as registered)"
        else:
            champion_auc = aliases.logged_metric(current, "holdout_auc")
            basis = "(champion's logged holdout AUC: its features differ)"
    decision = aliases.gate_decision(
        challenger_auc=challenger_auc, champion_auc=champion_auc,
        margin=cfg.registry.promotion_margin, no_signal=result.no_signal,
        champion_version=current.version if current else None)
    if champion_auc is not None:
        decision["summary"] = decision["summary"].replace("on the same holdout", basis)
    if current is not None and current.version != ref.version:
        decision["champion_version"] = current.version
    aliases.record_decision(ref, decision)
    if decision["promoted"]:
        aliases.promote(ref, reason=decision["summary"])
    return decision


@dataclass(frozen=True)
class TrainingRun:
    """What one training run produced: the result, the registered version, the gate's
    decision, the registered rules (with their version) and where the outputs went."""

    result: Any  # a pipeline.model.train.TrainResult
    ref: Any  # a pipeline.registry.store.ModelRef
    decision: dict[str, Any]
    rules: Any  # the registered PointsRules, version and data hash set
    out_dir: Path
    started: float  # time.perf_counter() at the start of the run


def train_and_register(cfg, out: Path | None) -> TrainingRun:
    """Read and validate the leads, build the features, train, write the artifacts and the
    report, log and register the version in MLflow, gate it, and copy the main outputs
    (points table, report, lift table, selection, rules) to ``out`` (default
    ``data/processed/<config name>``)."""
    started = time.perf_counter()
    started_ms = int(time.time() * 1000)  # the MLflow run starts here, not when it is logged
    from pipeline.progress import stage

    with ThreadPoolExecutor(max_workers=3) as background:
        # a new MLflow store and the training modules take seconds to set up: done while
        # the leads are read (Arrow reads, and hashlib hashes, without holding the GIL)
        connecting = background.submit(connect, cfg)
        importing = background.submit(import_training_modules)
        hashing = background.submit(input_digests, cfg)
        with stage("reading and validating the leads"):
            leads = read_leads(cfg, training=True)  # a bad file is reported first
        connecting.result()
        importing.result()
        digests = hashing.result()
        from pipeline.registry import aliases
        from pipeline.registry import store as registry

        with registry.training_run(cfg.model_name, experiment=cfg.experiment_name,
                                   started_ms=started_ms):
            features = _features(cfg, leads)
            from pipeline.model.train import train

            with stage("training: selection, fit, points, evaluation"):
                result = train(features, cfg)
            step(f"[3/5] trained: {len(result.analysis.kept)} factors kept, holdout AUC "
                 f"{result.metrics['holdout_auc']:.4f} ({result.split.method} split)")
            log_datasets(cfg, features, result)
            out_dir = Path(out) if out else Path(cfg.root) / "data" / "processed" / cfg.name
            with tempfile.TemporaryDirectory() as tmp:
                art = Path(tmp)
                parent = aliases.champion(cfg.model_name)
                with stage("writing the report, logging to MLflow, gating"):
                    ref, rules, tags = _log_run(cfg, features, result, digests, art,
                                                background)
                    decision = gate(cfg, ref, result, features)
                    describe(cfg, ref, parent, rules, result, decision,
                             rows=len(features.frame))
                step(f"[4/5] registered {ref.name} version {ref.version} (@challenger); "
                    f"{decision['summary']}")
                _copy_outputs(art, out_dir, rules)
    return TrainingRun(result, ref, decision, rules, out_dir, started)


def log_datasets(cfg, features, result) -> None:
    """The training and holdout leads as inputs of the active MLflow run (schema, row count,
    digest; source: the leads file), and the event log's rows when there is one."""
    from pipeline.registry import store as registry

    frame = features.frame
    datasets = [(frame.iloc[result.split.train], f"{cfg.name}-train", str(cfg.data.leads),
                 "training"),
                (frame.iloc[result.split.holdout], f"{cfg.name}-holdout", str(cfg.data.leads),
                 "holdout")]
    registry.log_datasets(datasets, target="converted")


def describe(cfg, ref, parent, rules, result, decision: dict[str, Any], *, rows: int) -> None:
    """Descriptions on the registered model (once) and on the new version: its figures, what
    changed against ``parent`` (the champion when it was trained) and the gate's decision."""
    from pipeline.exports.diff import diff_rules
    from pipeline.registry import store as registry
    from pipeline.registry.trail import model_description, version_description

    registry.describe_model(ref.name, model_description(ref.name, cfg.name))
    changes = None
    if parent is not None and parent.version != ref.version:
        try:
            changes = diff_rules(registry.load_rules(parent), rules)
        except Exception:  # noqa: BLE001 - an unreadable parent: described as such below
            changes = None
    registry.describe_version(ref, version_description(
        version=ref.version, parent=parent.version if parent is not None else None,
        changes=changes, metrics=result.metrics, decision=decision,
        kept=list(result.analysis.kept), rows=rows))


def _features(cfg, leads):
    """The feature set of the validated ``leads`` (event features included), with its
    warnings and progress lines said."""
    from pipeline.inputs.features import build_features

    events = events_source(cfg, None)
    from pipeline.progress import stage

    step(f"[1/5] validated {len(leads.frame):,} leads from {cfg.data.leads}")
    with stage("building the features"):
        features = build_features(leads, cfg, events=events)
    say_warnings(leads, features, events)
    if features.half_lives:
        hl = ", ".join(f"{g} {h:g} d" for g, h in sorted(features.half_lives.items()))
        step(f"[2/5] features: {len(features.factors)} candidate factors; learned half-lives: "
             f"{hl}")
    elif features.event_rules:
        from pipeline.inputs.crm_events import rules_summary

        step(f"[2/5] features: {len(features.factors)} candidate factors; "
             f"{rules_summary(features.event_rules, features.representation_metrics)}")
    else:
        step(f"[2/5] features: {len(features.factors)} candidate factors")
    return features


def _log_run(cfg, features, result, digests: dict[str, str], art: Path,
             background: ThreadPoolExecutor):
    """Write the artifacts into ``art``, log them with the model to MLflow and register a
    version: (its ref, the rules with the version set, the lineage tags). Chromium renders
    the report's screenshot on ``background`` while MLflow logs; its PNG is logged last."""
    from pipeline.inputs.features import FeatureSettings
    from pipeline.registry import store as registry
    from pipeline.reports.artifacts import report_screenshot, write_training_artifacts

    write_training_artifacts(art, result, features, cfg, screenshot=False)
    screenshot = background.submit(report_screenshot, art)
    tags = lineage_tags(cfg, features, result, digests)
    ref = registry.log_training(
        model_name=cfg.model_name, params=training_params(cfg, result), metrics=result.metrics,
        tags=tags, artifact_dir=art, rules=result.rules,
        feature_settings=FeatureSettings.from_config(cfg),
        input_example=raw_example(cfg, features.frame), before_artifacts=screenshot.result)
    rules = replace(result.rules, model_version=ref.version, data_hash=tags.get("data_hash", ""))
    return ref, rules, tags


def _copy_outputs(art: Path, out_dir: Path, rules) -> None:
    """The main outputs copied from the run's artifacts to ``out_dir``, and the registered
    rules (with their version) written there."""
    from pipeline.inputs.reader import write_bytes_atomic, write_text_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES:
        if (art / name).exists():
            write_bytes_atomic(out_dir / name, (art / name).read_bytes())
    write_text_atomic(out_dir / "points_rules.json", rules.to_json())

