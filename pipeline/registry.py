"""All MLflow code: runs, registered versions, aliases (never stages) and the audit trail.

Each training run logs params, metrics, tables and the pyfunc model and registers a new
version of the config's model. ``challenger`` always points at the newest version;
``champion`` moves only through :func:`gate_and_promote` (the new version is not worse than the
champion on the same holdout by more than the configured margin) or :func:`promote`.
Alias moves are recorded as model-version tags and read back by :func:`history`.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import UserError
from pipeline.rules import PointsRules

CHAMPION, CHALLENGER = "champion", "challenger"
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


def _client():
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
        Path(tracking_uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    if experiment:
        existing = mlflow.get_experiment_by_name(experiment)
        if existing is None:
            location = None
            if artifact_location and not tracking_uri.startswith(("http://", "https://")):
                Path(artifact_location).mkdir(parents=True, exist_ok=True)
                location = Path(artifact_location).resolve().as_uri()
            mlflow.create_experiment(experiment, artifact_location=location)
        mlflow.set_experiment(experiment)


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
    client = _client()
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
        versions = ", ".join(sorted((v.version for v in client.search_model_versions(
            f"name='{name}'")), key=int))
        what = f"alias @{alias}" if alias else f"version {version}"
        raise UserError(f"model {name!r} has no {what}",
                        hint=f"aliases: {aliases}; versions: {versions or '(none)'}") from None
    return ModelRef(name, str(mv.version), mv.run_id)


def load_rules(ref: ModelRef) -> PointsRules:
    """The points table of a registered version (a JSON artifact, never a pickle)."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=ref.run_id, artifact_path=RULES_FILE,
                                                   dst_path=tmp)
        return PointsRules.from_json(Path(path).read_text(encoding="utf-8"))


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
                 derived_settings: dict[str, Any], input_example: pd.DataFrame) -> ModelRef:
    """One MLflow run: params, metrics, tags, every file in ``artifact_dir``, the pyfunc model;
    registers a new version and points ``challenger`` at it."""
    import mlflow
    from mlflow.models import infer_signature

    from pipeline.serving import DERIVED_ARTIFACT, RULES_ARTIFACT, LeadScoringModel

    with mlflow.start_run(run_name=f"{model_name}-train") as run:
        mlflow.log_params({k: _param(v) for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if _finite(v)})
        mlflow.set_tags(tags)
        mlflow.log_artifacts(str(artifact_dir))
        rules_path = artifact_dir / RULES_FILE
        derived_path = artifact_dir / "derived_settings.json"
        derived_path.write_text(json.dumps(derived_settings, sort_keys=True), encoding="utf-8")
        model = LeadScoringModel()
        model.rules, model.derived = rules, derived_settings
        example_out = model.predict(None, input_example)
        signature = infer_signature(input_example, example_out)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=LeadScoringModel(),
            artifacts={RULES_ARTIFACT: str(rules_path), DERIVED_ARTIFACT: str(derived_path)},
            signature=signature, input_example=input_example,
            registered_model_name=model_name, pip_requirements=_requirements())
        version = str(info.registered_model_version)
    client = _client()
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    return ModelRef(model_name, version, run.info.run_id)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("mlflow", "pandas", "numpy", "scikit-learn")]


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:6000]


def _finite(value: Any) -> bool:
    try:
        return value is not None and float(value) == float(value) and abs(float(value)) != float("inf")
    except (TypeError, ValueError):
        return False


def champion(name: str) -> ModelRef | None:
    from mlflow.exceptions import MlflowException

    try:
        mv = _client().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    return ModelRef(name, str(mv.version), mv.run_id)


def promote(ref: ModelRef, *, reason: str) -> None:
    """Move ``champion`` to ``ref`` and record the move (who was champion before, why, when)."""
    client = _client()
    previous = champion(ref.name)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    client.set_registered_model_alias(ref.name, CHAMPION, ref.version)
    client.set_model_version_tag(ref.name, ref.version, "champion_since", now)
    client.set_model_version_tag(ref.name, ref.version, "promotion_reason", reason[:4900])
    if previous and previous.version != ref.version:
        client.set_model_version_tag(ref.name, previous.version, "champion_until", now)
        client.set_model_version_tag(ref.name, previous.version, "replaced_by", ref.version)


def record_decision(ref: ModelRef, decision: dict[str, Any]) -> None:
    """Keep the gate decision on the version (tag) and its run (metrics)."""
    client = _client()
    client.set_model_version_tag(ref.name, ref.version, "gate_decision",
                                 json.dumps(decision, sort_keys=True)[:4900])
    for key in ("challenger_auc", "champion_auc"):
        if _finite(decision.get(key)):
            client.log_metric(ref.run_id, f"gate_{key}", float(decision[key]))
    client.set_tag(ref.run_id, "gate_promoted", str(decision.get("promoted")).lower())


def history(name: str) -> pd.DataFrame:
    """The audit trail: every version with its champion periods, reasons and gate decisions."""
    client = _client()
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except Exception as exc:  # noqa: BLE001 - surface any store error as a user message
        raise UserError(f"cannot read the registry for {name!r}: {exc}") from None
    if not versions:
        raise UserError(f"registered model {name!r} has no versions", hint="run make train first")
    model = client.get_registered_model(name)
    alias_of = {}
    for alias, version in (model.aliases or {}).items():
        alias_of.setdefault(str(version), []).append(alias)
    rows = []
    for v in sorted(versions, key=lambda v: int(v.version)):
        tags = v.tags or {}
        decision = json.loads(tags["gate_decision"]) if "gate_decision" in tags else {}
        rows.append({
            "version": int(v.version),
            "created": datetime.fromtimestamp(v.creation_timestamp / 1000, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "aliases": ",".join(sorted(alias_of.get(str(v.version), []))),
            "champion_since": tags.get("champion_since", ""),
            "champion_until": tags.get("champion_until", ""),
            "promotion_reason": tags.get("promotion_reason", ""),
            "gate": decision.get("summary", ""),
            "run_id": v.run_id,
        })
    return pd.DataFrame(rows)


def gate_decision(*, challenger_auc: float, champion_auc: float | None, margin: float,
                  no_signal: bool, champion_version: str | None) -> dict[str, Any]:
    """Promote unless the challenger is worse than the champion by more than ``margin`` AUC."""
    if no_signal:
        return {"promoted": False, "challenger_auc": challenger_auc, "champion_auc": champion_auc,
                "summary": "not promoted: no signal (no factor passed selection)"}
    if champion_auc is None:
        return {"promoted": True, "challenger_auc": challenger_auc, "champion_auc": None,
                "summary": f"promoted: first champion (holdout AUC {challenger_auc:.4f})"}
    promoted = challenger_auc >= champion_auc - margin
    verb = "promoted" if promoted else "not promoted"
    return {"promoted": promoted, "challenger_auc": challenger_auc, "champion_auc": champion_auc,
            "margin": margin,
            "summary": (f"{verb}: challenger holdout AUC {challenger_auc:.4f} vs champion "
                        f"v{champion_version} {champion_auc:.4f} on the same holdout "
                        f"(margin {margin})")}
