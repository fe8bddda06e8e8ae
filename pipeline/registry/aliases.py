"""Aliases, promotion and the audit trail: ``challenger`` points at the newest version,
``champion`` moves through the promotion gate (:func:`gate_decision`) or :func:`promote`, and
every alias move is appended to the audit log kept as registered-model tags (see
:mod:`pipeline.registry.trail`), read back by :func:`audit_log`; the per-version summary is
:func:`history`."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from pipeline.errors import UserError
from pipeline.registry import trail
from pipeline.registry.store import ModelRef, finite, mlflow_client

CHAMPION, CHALLENGER = "champion", "challenger"
AUDIT_PREFIX = "audit."
AUDIT_COLUMNS = ["time", "alias", "version", "previous", "reason", "user"]


def champion(name: str) -> ModelRef | None:
    from mlflow.exceptions import MlflowException

    try:
        mv = mlflow_client().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    return ModelRef(name, str(mv.version), mv.run_id)


def logged_metric(ref: ModelRef, key: str) -> float:
    """The metric ``key`` logged by ``ref``'s run (NaN when it logged none): what the gate
    compares with when the champion cannot be scored on the challenger's holdout."""
    return float(mlflow_client().get_run(ref.run_id).data.metrics.get(key, float("nan")))


def set_challenger(ref: ModelRef) -> None:
    """Point ``challenger`` at ``ref`` (the newest version) and log the move."""
    client = mlflow_client()
    previous = _alias_version(ref.name, CHALLENGER)
    client.set_registered_model_alias(ref.name, CHALLENGER, ref.version)
    _record_move(ref.name, CHALLENGER, ref.version, previous, "new version registered")


def promote(ref: ModelRef, *, reason: str) -> None:
    """Move ``champion`` to ``ref`` and record the move (who was champion before, why, when)."""
    client = mlflow_client()
    previous = champion(ref.name)
    now = _now()
    client.set_registered_model_alias(ref.name, CHAMPION, ref.version)
    client.set_model_version_tag(ref.name, ref.version, "champion_since", now)
    if "champion_until" in (client.get_model_version(ref.name, ref.version).tags or {}):
        # champion again (a rollback): the end of its earlier period is not this one's
        client.delete_model_version_tag(ref.name, ref.version, "champion_until")
    client.set_model_version_tag(ref.name, ref.version, "promotion_reason",
                                 trail.short(reason))
    if previous and previous.version != ref.version:
        client.set_model_version_tag(ref.name, previous.version, "champion_until", now)
        client.set_model_version_tag(ref.name, previous.version, "replaced_by", ref.version)
    _record_move(ref.name, CHAMPION, ref.version, previous.version if previous else None, reason)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _alias_version(name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow_client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return os.environ.get("USER", "unknown")


def _record_move(name: str, alias: str, version: str, previous: str | None, reason: str) -> None:
    """Append one alias move to the model's audit log (a registered-model tag per move).

    The key sorts by time (microseconds, then the alias), so moves never overwrite each other.
    """
    stamp = datetime.now(UTC)
    key = f"{AUDIT_PREFIX}{stamp.strftime('%Y%m%dT%H%M%S.%f')}Z.{alias}"
    mlflow_client().set_registered_model_tag(
        name, key, trail.format_move(str(version), previous, _user(), reason))


def audit_log(name: str) -> pd.DataFrame:
    """Every alias move of ``name``, oldest first: ``time, alias, version, previous, reason,
    user`` (``previous`` is the version the alias pointed at before, empty for the first)."""
    from mlflow.exceptions import MlflowException

    try:
        model = mlflow_client().get_registered_model(name)
    except MlflowException:
        raise UserError(f"registered model {name!r} does not exist",
                        hint="run make train first") from None
    events = []
    for key, value in sorted((model.tags or {}).items()):
        if key.startswith(AUDIT_PREFIX):
            stamp, _, alias = key[len(AUDIT_PREFIX):].rpartition(".")
            events.append(trail.parse_move(trail.key_time(stamp), alias, value))
    return pd.DataFrame([{c: e.get(c, "") for c in AUDIT_COLUMNS} for e in events],
                        columns=AUDIT_COLUMNS)


def record_decision(ref: ModelRef, decision: dict[str, Any]) -> None:
    """Keep the gate decision on the version (short ``gate.*`` tags, see
    :func:`pipeline.registry.trail.gate_tags`) and its run (metrics)."""
    client = mlflow_client()
    for key, value in trail.gate_tags(decision).items():
        client.set_model_version_tag(ref.name, ref.version, key, value)
    for key in ("challenger_auc", "champion_auc"):
        if finite(decision.get(key)):
            client.log_metric(ref.run_id, f"gate_{key}", float(decision[key]))
    client.set_tag(ref.run_id, "gate_promoted", str(decision.get("promoted")).lower())


def tag_version(ref: ModelRef, tags: dict[str, str]) -> None:
    """Set tags on a registered version (short values: what a person reads in the UI)."""
    client = mlflow_client()
    for key, value in tags.items():
        client.set_model_version_tag(ref.name, ref.version, key, str(value)[:4900])


def history(name: str) -> pd.DataFrame:
    """The audit trail: every version with its champion periods, reasons and gate decisions."""
    client = mlflow_client()
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
        decision = trail.decision_from_tags(tags)
        rows.append({
            "version": int(v.version),
            "created": datetime.fromtimestamp(v.creation_timestamp / 1000, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "aliases": ",".join(sorted(alias_of.get(str(v.version), []))),
            "champion_since": tags.get("champion_since", ""),
            "champion_until": tags.get("champion_until", ""),
            "promotion_reason": tags.get("promotion_reason", ""),
            "gate": decision.get("summary", ""),
            "gate_brief": trail.gate_brief(decision),
            "run_id": v.run_id,
        })
    return pd.DataFrame(rows)


def version_decision(name: str, version: str) -> dict[str, Any]:
    """The gate decision recorded on a version ({} when none)."""
    return trail.decision_from_tags(mlflow_client().get_model_version(name, version).tags or {})


def gate_decision(*, challenger_auc: float, champion_auc: float | None, margin: float,
                  no_signal: bool, champion_version: str | None) -> dict[str, Any]:
    """Promote unless the challenger is worse than the champion by more than ``margin`` AUC."""
    if no_signal:
        return {"promoted": False, "challenger_auc": challenger_auc, "champion_auc": champion_auc,
                "summary": "not promoted: no signal (nothing beats the base rate out of sample)"}
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
