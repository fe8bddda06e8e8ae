"""All MLflow code: runs, registered versions, aliases (never stages) and the audit trail.

Each training run logs params, metrics, tables and the pyfunc model and registers a new
version of the config's model. Aliases, promotion and the audit trail live in
:mod:`pipeline.registry.aliases`: ``challenger`` always points at the newest version;
``champion`` moves only through :func:`gate_and_promote` (the new version is not worse than the
champion on the same holdout by more than the configured margin) or :func:`promote`.
Every alias move is appended to an audit log kept as registered-model tags (one short
line per move: ``v3 from v1 by alice: why``, keyed by time and alias; see
:mod:`pipeline.registry.trail`), read back by :func:`audit_log`; the per-version summary
(champion periods, gate decisions) is :func:`history`. Both live in the registry itself, so
they work the same with the embedded sqlite store and a tracking server.

A training run spans the whole training (:func:`training_run` is opened by the workflow
before the features are built), logs its datasets with :func:`log_datasets`, and the
registered model and each version carry a description (:func:`describe_version`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline.errors import UserError
from pipeline.model.rules import PointsRules

if TYPE_CHECKING:
    from pipeline.inputs.features import FeatureSettings

RULES_FILE = "points_rules.json"
_REF = re.compile(r"^(?P<name>[^@/]+)(?:@(?P<alias>[A-Za-z0-9_\-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ModelRef:
    """A resolved registered-model version."""

    name: str
    version: str
    run_id: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def mlflow_client():
    from mlflow import MlflowClient

    return MlflowClient()


def connect(tracking_uri: str, *, experiment: str | None = None,
            artifact_location: str | None = None) -> None:
    """Point MLflow at the store (checked first: a dead server is a clear error, not a hang)."""
    import mlflow

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    if tracking_uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=5) as resp:
                resp.read()
        except (urllib.error.URLError, OSError) as exc:
            raise UserError(f"MLflow tracking server {tracking_uri} is unreachable ({exc})",
                            hint="start it, or set registry.tracking_uri in the config") from None
    elif tracking_uri.startswith("sqlite:///"):
        from pipeline.registry.store_template import seed_sqlite_store

        db_path = Path(tracking_uri[len("sqlite:///"):])
        check_sqlite_store(db_path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        seed_sqlite_store(db_path)  # a new store: MLflow's schema, copied (not re-migrated)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    from pipeline.registry.relative import register, relative_uri

    register()  # store-relative: artifact locations (see pipeline.registry.relative)
    if experiment:
        existing = mlflow.get_experiment_by_name(experiment)
        if existing is not None and existing.lifecycle_stage == "deleted":
            raise UserError(f"MLflow experiment {experiment!r} is deleted in {tracking_uri}",
                            hint="restore it (mlflow experiments restore --experiment-id "
                                 f"{existing.experiment_id}) or set registry.experiment")
        if existing is None:
            # a tracking server chooses the artifact root itself (mlflow-artifacts:/ when it
            # serves artifacts); a local path would be written on the client's disk only
            location = None
            if artifact_location and not tracking_uri.startswith(("http://", "https://")):
                Path(artifact_location).mkdir(parents=True, exist_ok=True)
                # beside a sqlite store: relative to it (the store moves with its folder)
                location = relative_uri(tracking_uri, artifact_location) or \
                    Path(artifact_location).resolve().as_uri()
            mlflow.create_experiment(experiment, artifact_location=location)
        mlflow.set_experiment(experiment)


SQLITE_MAGIC = b"SQLite format 3\x00"


def check_sqlite_store(db_path: Path) -> None:
    """Refuse a store file that is not a sound SQLite database: empty (0 bytes: a store that
    lost its contents is not silently rebuilt empty), another kind of file, truncated or
    corrupt (``PRAGMA quick_check``). A missing file is a new store."""
    import sqlite3

    if not db_path.exists():
        return
    hint = ("restore it from a backup, or point registry.tracking_uri at another file (delete "
            "this one to start an empty store)")
    if db_path.is_dir():
        raise UserError(f"MLflow store {db_path} is a directory, not an SQLite file", hint=hint)
    if db_path.stat().st_size == 0:
        raise UserError(f"MLflow store {db_path} is an empty file (0 bytes): its versions and "
                        "audit trail are gone; it is not rebuilt silently", hint=hint)
    with open(db_path, "rb") as handle:
        magic = handle.read(len(SQLITE_MAGIC))
    if magic != SQLITE_MAGIC:
        raise UserError(f"MLflow store {db_path} is not an SQLite database", hint=hint)
    try:
        with contextlib.closing(sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro",
                                                uri=True, timeout=30)) as db:
            problems = [row[0] for row in db.execute("PRAGMA quick_check").fetchall()]
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        raise UserError(f"MLflow store {db_path} is corrupt or truncated ({exc})",
                        hint=hint) from None
    if problems != ["ok"]:
        raise UserError(f"MLflow store {db_path} is corrupt ({'; '.join(problems[:3])[:200]})",
                        hint=hint)
    if tables and "experiments" not in tables:
        raise UserError(f"MLflow store {db_path} is an SQLite database but not an MLflow store "
                        f"(tables: {', '.join(sorted(tables)[:5])})", hint=hint)


def check_store_writable(tracking_uri: str) -> None:
    """Before a command that writes to the registry (train, promote): a local store must be
    writable (SQLite also writes a journal beside the file)."""
    if not tracking_uri.startswith("sqlite:///"):
        return
    db_path = Path(tracking_uri[len("sqlite:///"):])
    folder = db_path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if (db_path.exists() and not os.access(db_path, os.W_OK)) or \
            not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"MLflow store {db_path} is read-only: this command writes to it",
                        hint="fix the permissions of the file and its folder, or use another "
                        "registry.tracking_uri; nothing was done")


def parse_model_ref(text: str) -> tuple[str, str | None, str | None]:
    """``NAME@ALIAS`` or ``NAME/VERSION`` -> (name, alias, version)."""
    match = _REF.match(text.strip())
    if not match:
        raise UserError(f"model reference {text!r} is not NAME@ALIAS or NAME/VERSION",
                        hint="for example lead-scoring@champion or lead-scoring/3")
    return match["name"], match["alias"], match["version"]


def resolve(text: str) -> ModelRef:
    """Find a registered version by alias or number; list what exists when it does not."""
    from mlflow.exceptions import MlflowException

    name, alias, version = parse_model_ref(text)
    client = mlflow_client()
    try:
        client.get_registered_model(name)
    except MlflowException:
        names = sorted(m.name for m in client.search_registered_models())
        raise UserError(f"registered model {name!r} does not exist",
                        hint=f"registered models: {', '.join(names) or '(none: run make train)'}"
                        ) from None
    try:
        mv = (client.get_model_version_by_alias(name, alias) if alias
              else client.get_model_version(name, version))
    except MlflowException:
        model = client.get_registered_model(name)
        aliases = ", ".join(f"@{a}" for a in sorted(model.aliases)) or "(no aliases)"
        versions = ", ".join(sorted((str(v.version) for v in client.search_model_versions(
            f"name='{name}'")), key=int))
        what = f"alias @{alias}" if alias else f"version {version}"
        raise UserError(f"model {name!r} has no {what}",
                        hint=f"aliases: {aliases}; versions: {versions or '(none)'}") from None
    return ModelRef(name, str(mv.version), mv.run_id)


def load_model(model_uri: str):
    """The registered pyfunc model (``"models:/lead-scoring@champion"``): raw leads in, points
    out (see :mod:`pipeline.scoring.serving`). Connect first (:func:`connect`)."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(model_uri)


def load_rules(ref: ModelRef) -> PointsRules:
    """The points table of a registered version (a JSON artifact, never a pickle)."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=ref.run_id, artifact_path=RULES_FILE,
                                                   dst_path=tmp)
        rules = PointsRules.from_json(Path(path).read_text(encoding="utf-8"))
    # the version number and the data hash (a run tag) are known only after logging, so the
    # logged table cannot hold them
    if not rules.model_version:
        rules = replace(rules, model_version=ref.version)
    if not rules.data_hash:
        tags = mlflow.get_run(ref.run_id).data.tags
        rules = replace(rules, data_hash=tags.get("data_hash", ""))
    return rules


def load_run_json(ref: ModelRef, artifact: str) -> Any:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=ref.run_id, artifact_path=artifact,
                                                   dst_path=tmp)
        return json.loads(Path(path).read_text(encoding="utf-8"))


def download_artifact(ref: ModelRef, artifact: str, dst: Path) -> Path:
    import mlflow

    return Path(mlflow.artifacts.download_artifacts(run_id=ref.run_id, artifact_path=artifact,
                                                    dst_path=str(dst)))


def log_training(*, model_name: str, params: dict[str, Any], metrics: dict[str, float],
                 tags: dict[str, str], artifact_dir: Path, rules: PointsRules,
                 feature_settings: FeatureSettings, input_example: pd.DataFrame,
                 before_artifacts: Callable[[], object] | None = None) -> ModelRef:
    """Into the active run (:func:`training_run`; else a run of its own): params, metrics,
    tags, the pyfunc model, every file in ``artifact_dir``; registers a new version and
    points ``challenger`` at it.
    ``before_artifacts`` is called (and waited for) just before ``artifact_dir`` is logged,
    the last step: a file still being written there (the report's screenshot) makes it.

    The model is logged from code (no pickle): a generated script that builds
    :class:`pipeline.scoring.serving.LeadScoringModel`, with the points table and the feature
    settings as artifacts, a signature (:func:`model_signature`: params ``events`` and
    ``as_of``, the score columns; the raw lead columns the model reads are in the model's
    metadata, :func:`model_metadata`) and an input example (raw leads: the first rows of
    ``input_example``).
    """
    import mlflow

    from pipeline.scoring.serving import FEATURES_ARTIFACT, MODEL_CODE, RULES_ARTIFACT

    example = model_input_example(rules, feature_settings, input_example)
    signature = model_signature()
    active = mlflow.active_run()
    running = contextlib.nullcontext(active) if active is not None else \
        mlflow.start_run(run_name=f"{model_name}-train")
    with tempfile.TemporaryDirectory() as tmp, running as run:
        mlflow.log_params({k: _param(v) for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if finite(v)})
        mlflow.set_tags(tags)
        rules_path = Path(tmp) / RULES_FILE
        rules_path.write_text(rules.to_json(), encoding="utf-8")
        settings_path = Path(tmp) / "feature_settings.json"
        settings_path.write_text(json.dumps(feature_settings.to_dict(), sort_keys=True),
                                 encoding="utf-8")
        mlflow.log_artifact(str(settings_path))
        code_path = Path(tmp) / "lead_scoring_model.py"
        code_path.write_text(MODEL_CODE, encoding="utf-8")
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(code_path),
            artifacts={RULES_ARTIFACT: str(rules_path), FEATURES_ARTIFACT: str(settings_path)},
            signature=signature, input_example=example,
            metadata=model_metadata(rules, feature_settings),
            registered_model_name=model_name, pip_requirements=_requirements())
        version = str(info.registered_model_version)
        if before_artifacts is not None:
            before_artifacts()
        mlflow.log_artifacts(str(artifact_dir))
    ref = ModelRef(model_name, version, run.info.run_id)
    from pipeline.registry.aliases import set_challenger

    set_challenger(ref)
    return ref


@contextlib.contextmanager
def training_run(model_name: str, *, experiment: str | None = None,
                 started_ms: int | None = None) -> Iterator[str]:
    """The MLflow run of one training in ``experiment`` (default: the one :func:`connect`
    set), active inside the block (its id is yielded): started at ``started_ms`` (epoch
    milliseconds: when the training started, before the store was even connected), ended when
    the block ends, FAILED when it raises. Connect first."""
    import mlflow

    found = mlflow.get_experiment_by_name(experiment) if experiment else None
    experiment_id = found.experiment_id if found is not None else \
        mlflow.tracking.fluent._get_experiment_id()
    run = mlflow_client().create_run(experiment_id, start_time=started_ms,
                               run_name=f"{model_name}-train")
    with mlflow.start_run(run_id=run.info.run_id):
        yield run.info.run_id


def log_datasets(datasets: list[tuple[pd.DataFrame, str, str, str]], *,
                 target: str | None = None) -> None:
    """Log each (frame, name, source path, context) as an input of the active run
    (``mlflow.log_input``): its schema, row count (the profile) and a digest. ``context`` is
    ``training`` or ``holdout``; ``target`` the label column when the frame has it."""
    import mlflow
    from mlflow.data.sources import LocalArtifactDatasetSource

    for frame, name, source, context in datasets:
        dataset = mlflow.data.from_pandas(
            frame, source=LocalArtifactDatasetSource(str(source)), name=name,
            targets=target if target in frame.columns else None)
        mlflow.log_input(dataset, context=context)


def describe_model(model_name: str, description: str) -> None:
    """Set the registered model's description when it has none (a person's edit stays)."""
    client = mlflow_client()
    if not (client.get_registered_model(model_name).description or "").strip():
        client.update_registered_model(model_name, description=description)


def describe_version(ref: ModelRef, description: str) -> None:
    """Set a version's description (what changed against its parent, the gate's decision)."""
    mlflow_client().update_model_version(ref.name, ref.version, description=description)


def model_input_example(rules: PointsRules, settings: FeatureSettings, frame: pd.DataFrame
                        ) -> pd.DataFrame:
    """Five raw leads: the model's raw input columns present in ``frame``, as given (missing
    values stay missing)."""
    from pipeline.scoring.serving import raw_input_columns

    names = [n for n in raw_input_columns(rules, settings) if n in frame.columns] or \
        list(frame.columns)
    example = frame[names].head(5).reset_index(drop=True)
    text = [n for n in names if example[n].dtype == object]
    return example.assign(**{n: example[n].where(example[n].notna(), None) for n in text})


def model_signature():
    """Params ``events`` (path of the event log) and ``as_of`` (ISO time), both optional; the
    score columns as output; no input schema.

    MLflow checks a column typed ``double`` or ``long`` in one vectorised step, but no column
    type takes both an integer and a float column (``double`` refuses int64, ``long`` refuses
    floats with gaps), and a column of any type is checked value by value in Python (1-2 s
    per column per million leads: issue 24). Without an input schema MLflow hands the input
    to the model as it is: a leads frame (integer or float numbers, text, gaps, as
    ``pd.read_csv`` gives them) or the dict form ``{"leads": df, "events": df}``; the model
    keeps the columns it reads (:func:`pipeline.scoring.serving.signature_columns`, listed in
    the model's metadata) and reads them as ``lead-scoring score`` does (a column of any
    type refused nothing either).
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    from pipeline.scoring.serving import PARAMS

    outputs = Schema([ColSpec("long", "points"), ColSpec("long", "fit"), ColSpec("long", "pain"),
                      ColSpec("double", "probability"), ColSpec("boolean", "sdr_ready"),
                      ColSpec("string", "grade"), ColSpec("string", "reason_codes")])
    params = ParamSchema([ParamSpec(name, "string", default) for name, default in PARAMS.items()])
    return ModelSignature(inputs=None, outputs=outputs, params=params)


def model_metadata(rules: PointsRules, settings: FeatureSettings) -> dict[str, Any]:
    """The ``metadata`` of the logged model (in its MLmodel file): the input columns the model
    reads, every one optional (:func:`pipeline.scoring.serving.signature_columns`: a Spark UDF
    takes them in this order), and the raw ones a lead needs."""
    from pipeline.scoring.serving import INPUT_COLUMNS_KEY, raw_input_columns, signature_columns

    return {INPUT_COLUMNS_KEY: signature_columns(rules, settings),
            "raw_input_columns": raw_input_columns(rules, settings),
            "input_values": "integer or float numbers, text, missing values; any column may be "
                            "absent; the dict form {'leads': df, 'events': df}"}


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("mlflow", "pandas", "numpy", "scikit-learn")]


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:6000]


def finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
