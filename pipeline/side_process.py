"""A second process for training work that holds the GIL (lift charts, the benchmark model).

A thread would take turns with the main thread's fit; a spawned process runs on the other
core. Work runs in submission order. When no process can start, :meth:`SideProcess.submit`
returns None and the caller does the work itself, so nothing is lost to this shortcut.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


def preload(*modules: str) -> None:
    """Import ``modules`` (submitted first, so the side process is ready when work comes)."""
    for module in modules:
        importlib.import_module(module)


class SideProcess:
    """One spawned worker process, started on first use and shut down on :meth:`close`."""

    def __init__(self) -> None:
        self._pool: Any = None
        self._broken = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future | None:
        """``fn(*args, **kwargs)`` in the side process (``fn`` and its arguments must pickle),
        or None when the process cannot start."""
        if self._broken:
            return None
        try:
            if self._pool is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            return self._pool.submit(fn, *args, **kwargs)
        except (OSError, RuntimeError, ValueError):
            self._broken = True
            self.close()
            return None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None

    def __enter__(self) -> SideProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
