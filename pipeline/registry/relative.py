"""Artifact locations relative to the store: ``store-relative:artifacts/1/<run>/artifacts``.

MLflow writes every local artifact location as an absolute path (it resolves a relative one
against the working directory when the experiment is created), so a store copied or moved
with its repository points at folders that are no longer there. For the local sqlite store
whose artifact folder lies beside the database (the default: ``models/mlflow.db`` and
``models/artifacts/``), new experiments get a location under this module's URI scheme
instead: a path relative to the database's folder, resolved whenever an artifact is read or
written. The scheme is registered with MLflow when the store is connected
(:func:`pipeline.registry.store.connect`) and, through the ``mlflow.artifact_repository``
entry point, in any process where the package is installed (``mlflow ui``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

SCHEME = "store-relative"


def store_folder(tracking_uri: str | None = None) -> Path:
    """The folder of the sqlite store at ``tracking_uri`` (default: MLflow's current one)."""
    uri = tracking_uri
    if not uri:
        import mlflow

        uri = mlflow.get_tracking_uri() or os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri.startswith("sqlite:///"):
        raise ValueError(f"{SCHEME}: artifact locations need a local sqlite store, not {uri!r}")
    return Path(uri[len("sqlite:///"):]).resolve().parent


def relative_uri(tracking_uri: str, artifact_location: str | Path) -> str | None:
    """``store-relative:<path>`` for an artifact folder inside the sqlite store's folder,
    else None (a folder elsewhere, or a store that is not a local sqlite file)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    base = store_folder(tracking_uri)
    target = Path(artifact_location).resolve()
    try:
        relative = target.relative_to(base)
    except ValueError:
        return None
    return f"{SCHEME}:{relative.as_posix()}"


def resolve(artifact_uri: str, tracking_uri: str | None = None) -> Path:
    """The absolute folder a ``store-relative:`` URI names."""
    relative = artifact_uri[len(SCHEME) + 1:].lstrip("/")
    path = (store_folder(tracking_uri) / relative).resolve()
    return path


@functools.cache
def repository_class() -> type:
    """MLflow's local artifact repository on the folder a ``store-relative:`` URI names (made
    on first use: reading a store from :mod:`pipeline.registry.local` never imports MLflow)."""
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    class StoreRelativeArtifactRepository(LocalArtifactRepository):
        """MLflow's local artifact repository, on the folder a ``store-relative:`` URI names."""

        def __init__(self, artifact_uri: str, tracking_uri: str | None = None,
                     registry_uri: str | None = None) -> None:
            super().__init__(resolve(artifact_uri, tracking_uri).as_uri(), tracking_uri,
                             registry_uri)

    return StoreRelativeArtifactRepository


def __getattr__(name: str) -> Any:
    """``StoreRelativeArtifactRepository``, as the ``mlflow.artifact_repository`` entry point
    names it (pyproject.toml)."""
    if name == "StoreRelativeArtifactRepository":
        return repository_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register() -> None:
    """Make MLflow open ``store-relative:`` locations in this process (idempotent)."""
    from mlflow.store.artifact.artifact_repository_registry import (
        _artifact_repository_registry,
    )

    _artifact_repository_registry.register(SCHEME, repository_class())
