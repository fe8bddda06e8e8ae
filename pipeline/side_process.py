"""A second process for training work that holds the GIL (lift charts, the benchmark model).

A thread would take turns with the main thread's fit; a second process runs on the other
core. Work runs in submission order. When no process can start, :meth:`SideProcess.submit`
returns None and the caller does the work itself, so nothing is lost to this shortcut. A job
sent with :meth:`SideProcess.submit_claimable` can be taken back while the side process has
not started it: a caller that would wait for it behind other work does it itself instead.

A spawned process imports scikit-learn, matplotlib and pandas again (2-3 s of CPU). With
``fork_when_safe`` the process is forked instead, inheriting every loaded module, when that
is safe: on Linux, with no other Python thread alive (a thread could hold a lock the child
would inherit locked). The forked child runs its native thread pools (BLAS, OpenMP) on one
thread: it is the second core, and a pool inherited through fork must not be used.
"""

from __future__ import annotations

import gc
import importlib
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any


def preload(*modules: str) -> None:
    """Import ``modules`` (submitted first, so the side process is ready when work comes)."""
    for module in modules:
        importlib.import_module(module)


def _claim(token: str) -> bool:
    """True for the first process to ask for ``token`` (a path): creating a file that must
    not exist yet is atomic, so exactly one of the two processes runs the job."""
    try:
        os.close(os.open(token, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _run_if_claimed(token: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """In the side process: ``fn(*args, **kwargs)``, or None if the parent took it back."""
    return fn(*args, **kwargs) if _claim(token) else None


@dataclass(frozen=True)
class Claimable:
    """A job sent to the side process that the sender can take back until it starts there."""

    future: Future
    token: str

    def take_back(self) -> bool:
        """True when the side process had not started the job: it will skip it, and the
        caller runs it instead. False when it has started (or finished) it."""
        return _claim(self.token)


def _one_native_thread() -> None:
    """In a forked child: BLAS and OpenMP on the calling thread only (see the module doc)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


class SideProcess:
    """One spawned worker process, started on first use and shut down on :meth:`close`."""

    def __init__(self, *, fork_when_safe: bool = False) -> None:
        self._pool: Any = None
        self._broken = False
        self._fork_when_safe = fork_when_safe
        self.start_method: str | None = None  # "fork" or "spawn" once started
        self._claims: str | None = None  # folder of the claim files of claimable jobs
        self._jobs = 0

    def _choose_start_method(self) -> str:
        safe = sys.platform.startswith("linux") and threading.active_count() == 1
        return "fork" if self._fork_when_safe and safe else "spawn"

    def will_fork(self) -> bool:
        """True when the process, started now, would be forked (cheap: ~0.1 s) rather than
        spawned (2-3 s of imports): worth it even for a small training."""
        return self._pool is None and not self._broken and self._choose_start_method() == "fork"

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future | None:
        """``fn(*args, **kwargs)`` in the side process (``fn`` and its arguments must pickle),
        or None when the process cannot start."""
        if self._broken:
            return None
        try:
            if self._pool is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                method = self._choose_start_method()
                # frozen, what the child inherits is skipped by its collections, which then
                # do not copy the parent's pages by touching them (a caller's own freeze stays)
                thaw = method == "fork" and gc.get_freeze_count() == 0
                if thaw:
                    gc.freeze()
                try:
                    self._pool = ProcessPoolExecutor(
                        max_workers=1, mp_context=multiprocessing.get_context(method),
                        initializer=_one_native_thread if method == "fork" else None)
                    self.start_method = method
                    return self._pool.submit(fn, *args, **kwargs)  # forks, or spawns
                finally:
                    if thaw:
                        gc.unfreeze()  # the parent's own collections are as before
            return self._pool.submit(fn, *args, **kwargs)
        except (OSError, RuntimeError, ValueError):
            self._broken = True
            self.close()
            return None

    def submit_claimable(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
                         ) -> Claimable | None:
        """Like :meth:`submit`, but the caller may :meth:`Claimable.take_back` the job while
        the side process has not started it (rather than wait for it behind other work)."""
        if self._claims is None:
            self._claims = tempfile.mkdtemp(prefix="lead-scoring-side-")
        self._jobs += 1
        token = os.path.join(self._claims, f"job-{self._jobs}")
        future = self.submit(_run_if_claimed, token, fn, *args, **kwargs)
        return None if future is None else Claimable(future, token)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None
        if self._claims is not None:
            shutil.rmtree(self._claims, ignore_errors=True)
            self._claims = None

    def __enter__(self) -> SideProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
