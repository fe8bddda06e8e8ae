"""A registered version read straight from a local store, without starting MLflow.

``lead-scoring score`` needs three things from the registry: which run a ``NAME@ALIAS`` or
``NAME/VERSION`` is, its points table and its config. With the embedded sqlite store and
artifacts on the local disk they are two small queries and two JSON files away, while
importing MLflow and opening its store takes seconds of every scoring run. Anything else (a
tracking server, remote artifacts, a schema this reader does not know, a version being
deleted) gives ``None`` and the caller goes through MLflow as before: this is a shortcut,
never a second source of truth.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pipeline.model.rules import PointsRules
from pipeline.registry.relative import SCHEME, resolve
from pipeline.registry.store import RULES_FILE, ModelRef, parse_model_ref

SQLITE = "sqlite:///"


@dataclass(frozen=True)
class LocalVersion:
    """A resolved version and the folder of its run's artifacts."""

    ref: ModelRef
    artifacts: Path

    def rules(self) -> PointsRules:
        rules = PointsRules.from_json((self.artifacts / RULES_FILE).read_text(encoding="utf-8"))
        return rules if rules.model_version else replace(rules, model_version=self.ref.version)

    def run_json(self, name: str) -> Any:
        return json.loads((self.artifacts / name).read_text(encoding="utf-8"))


def _one(con: sqlite3.Connection, sql: str, args: tuple) -> tuple | None:
    rows = con.execute(sql, args).fetchall()
    return rows[0] if len(rows) == 1 else None


def local_version(tracking_uri: str, text: str) -> LocalVersion | None:
    """The version ``text`` names in the sqlite store at ``tracking_uri`` (an absolute
    ``sqlite:///`` URI) when its run's artifacts are local files, else None."""
    if not tracking_uri.startswith(SQLITE + "/"):
        return None
    db = Path(tracking_uri[len(SQLITE):])
    if not db.is_file():
        return None
    name, alias, version = parse_model_ref(text)
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            if alias:
                row = _one(con, "SELECT version FROM registered_model_aliases "
                                "WHERE name = ? AND alias = ?", (name, alias))
                if row is None:
                    return None
                version = str(row[0])
            row = _one(con, "SELECT run_id, current_stage, status FROM model_versions "
                            "WHERE name = ? AND version = ?", (name, int(version)))
            if row is None or row[1] == "Deleted_Internal" or row[2] not in (None, "READY"):
                return None
            run = _one(con, "SELECT artifact_uri, lifecycle_stage FROM runs WHERE run_uuid = ?",
                       (row[0],))
    except (sqlite3.Error, ValueError):
        return None
    if run is None or run[1] != "active" or not run[0]:
        return None
    parsed = urlparse(run[0])
    if parsed.scheme == SCHEME:  # artifacts beside the store (pipeline.registry.relative)
        artifacts = resolve(run[0], tracking_uri)
    elif parsed.scheme in ("", "file"):
        artifacts = Path(unquote(parsed.path))
    else:
        return None
    if not (artifacts / RULES_FILE).is_file():
        return None
    return LocalVersion(ModelRef(name, version, row[0]), artifacts)
