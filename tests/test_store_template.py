"""New sqlite MLflow stores copied from the cached empty schema are the stores MLflow makes."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from pipeline.registry import store_template


def _schema(db: Path) -> tuple[list[tuple], list[tuple]]:
    """Tables, indexes and the alembic revision. The parts of a CREATE TABLE are compared as
    a set: MLflow's own migrations write a table's CHECK constraints in varying order (two
    stores it builds in one process can differ so), which SQLite does not care about."""
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                           "ORDER BY type, name").fetchall()
        revision = con.execute("SELECT version_num FROM alembic_version").fetchall()
    tables = []
    for kind, name, table, sql in rows:
        if sql and sql.startswith("CREATE TABLE"):
            head, _, body = sql.partition("(")
            parts = re.split(r",\s*\n", body.rsplit(")", 1)[0])
            sql = (head.strip(), tuple(sorted(part.strip() for part in parts)))
        tables.append((kind, name, table, sql))
    return tables, revision


def _experiments(uri: str) -> list[tuple[str, str, str]]:
    from mlflow import MlflowClient

    return sorted((e.experiment_id, e.name, e.artifact_location)
                  for e in MlflowClient(tracking_uri=uri).search_experiments())


@pytest.mark.slow  # ~20 s: five trainings / two MLflow stores built from scratch
def test_a_seeded_store_is_the_store_mlflow_builds(tmp_path, monkeypatch):
    from pipeline.registry import store as registry

    monkeypatch.setenv(store_template.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    by_mlflow = tmp_path / "by_mlflow" / "mlflow.db"
    by_mlflow.parent.mkdir()
    _experiments(f"sqlite:///{by_mlflow}")  # MLflow migrates a new store itself
    seeded = tmp_path / "seeded" / "mlflow.db"
    registry.connect(f"sqlite:///{seeded}", experiment="leads",
                     artifact_location=str(tmp_path / "seeded" / "artifacts"))
    assert store_template.template_path().exists()
    assert _schema(seeded) == _schema(by_mlflow)
    experiments = _experiments(f"sqlite:///{seeded}")
    assert [(e[0], e[1]) for e in experiments] == [("0", "Default"), ("1", "leads")]
    # artifacts beside the database: a location relative to the store (it can move)
    assert experiments[1][2] == "store-relative:artifacts"


def test_artifact_locations_are_relative_only_beside_a_sqlite_store(tmp_path):
    from pipeline.registry.relative import relative_uri, resolve

    uri = f"sqlite:///{tmp_path / 'models' / 'mlflow.db'}"
    assert relative_uri(uri, tmp_path / "models" / "artifacts") == "store-relative:artifacts"
    assert relative_uri(uri, tmp_path / "models") == "store-relative:."
    assert relative_uri(uri, tmp_path / "elsewhere") is None  # kept absolute by connect()
    assert relative_uri("http://127.0.0.1:5000", tmp_path / "models" / "artifacts") is None
    assert resolve("store-relative:artifacts/1/abc/artifacts", uri) == \
        (tmp_path / "models" / "artifacts" / "1" / "abc" / "artifacts").resolve()


@pytest.mark.slow  # builds an MLflow store from scratch (~7 s)
def test_the_template_is_built_once_and_a_store_is_never_overwritten(tmp_path, monkeypatch):
    monkeypatch.setenv(store_template.CACHE_ENV, str(tmp_path / "cache"))
    assert store_template.seed_sqlite_store(tmp_path / "a.db")
    template = store_template.template_path()
    built = template.stat().st_mtime_ns

    def no_second_build(path):
        raise AssertionError("the template was built again")

    monkeypatch.setattr(store_template, "build_template", no_second_build)
    assert store_template.seed_sqlite_store(tmp_path / "b.db")
    assert template.stat().st_mtime_ns == built
    assert _schema(tmp_path / "b.db") == _schema(tmp_path / "a.db")
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"a store with data")
    assert not store_template.seed_sqlite_store(existing)
    assert existing.read_bytes() == b"a store with data"
    assert not list(tmp_path.glob(".*.seed"))  # no temporary copy left behind


@pytest.mark.slow  # builds an MLflow store from scratch (~7 s)
def test_without_a_usable_cache_mlflow_builds_the_store_itself(tmp_path, monkeypatch):
    from pipeline.registry import store as registry

    blocked = tmp_path / "not_a_folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv(store_template.CACHE_ENV, str(blocked))
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    assert not store_template.seed_sqlite_store(db)
    assert not db.exists()
    registry.connect(f"sqlite:///{db}", experiment="leads")
    assert [e[1] for e in _experiments(f"sqlite:///{db}")] == ["Default", "leads"]


@pytest.mark.parametrize("home_cache", [True, False])
def test_cache_folder_follows_the_environment(tmp_path, monkeypatch, home_cache):
    monkeypatch.delenv(store_template.CACHE_ENV, raising=False)
    if home_cache:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path))
        assert store_template.cache_dir() == tmp_path / ".cache" / "lead-scoring"
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert store_template.cache_dir() == tmp_path / "xdg" / "lead-scoring"
