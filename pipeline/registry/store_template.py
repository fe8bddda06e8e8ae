"""New sqlite MLflow stores from a cached copy of MLflow's own empty, migrated schema.

MLflow builds a new sqlite store by running every schema migration it ever had (about 1.7 s
of Python, on each new store). The result depends only on the MLflow and SQLAlchemy
versions, so it is built once per version into a cache folder and copied from then on.
The template holds no experiment: MLflow adds its Default experiment when it first connects,
exactly as on a store it made itself. Anything unusual (no cache folder, an MLflow whose
internals moved) leaves the store to MLflow, the slow way; nothing depends on the cache.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

CACHE_ENV = "LEAD_SCORING_CACHE_DIR"


def cache_dir() -> Path:
    """``$LEAD_SCORING_CACHE_DIR``, else ``$XDG_CACHE_HOME/lead-scoring``, else
    ``~/.cache/lead-scoring``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lead-scoring"


def template_path() -> Path:
    """Where the empty schema of the installed MLflow + SQLAlchemy versions is kept."""
    import mlflow
    import sqlalchemy

    return cache_dir() / f"mlflow-{mlflow.__version__}-sqlalchemy-{sqlalchemy.__version__}.db"


def build_template(path: Path) -> Path:
    """Run MLflow's own table creation and migrations into a new sqlite file at ``path``
    (written beside it, then renamed: a reader never sees half a schema)."""
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401 - its tables, as MLflow has them
    from mlflow.store.db import utils

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    try:
        engine = utils.create_sqlalchemy_engine(f"sqlite:///{partial}")
        try:
            utils._initialize_tables(engine)
            utils._verify_schema(engine)  # at MLflow's head revision, or it raises
        finally:
            engine.dispose()
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def seed_sqlite_store(db_path: Path) -> bool:
    """Lay the cached empty schema at ``db_path`` when no store is there yet.

    True when laid; False when a store already exists there (it is never touched) or the
    cache cannot serve, and MLflow then creates the store itself. Safe when two processes
    start on the same new store: the file is linked into place only if still absent.
    """
    db_path = Path(db_path)
    if db_path.exists() and db_path.stat().st_size > 0:
        return False
    copy = db_path.with_name(f".{db_path.name}.{os.getpid()}.seed")
    try:
        template = template_path()
        if not template.exists():
            build_template(template)
        shutil.copyfile(template, copy)
        if db_path.exists():  # an empty file: MLflow would have filled it in place
            db_path.unlink()
        os.link(copy, db_path)  # FileExistsError if another process laid its store meanwhile
        return True
    except Exception:  # noqa: BLE001 - any failure here: MLflow builds the store as usual
        return False
    finally:
        with contextlib.suppress(OSError):
            copy.unlink()
