"""Progress bars for the long steps (stages, cross-validation folds, scored batches, bench parts).

The stages stay pure: they only wrap their loops in :func:`track` (or a block in
:func:`stage`), which is a plain pass-through until the edge (the command line, the bench)
turns a display on with :func:`configure`. The display is a `rich` progress bar on stderr,
drawn only when stderr is a terminal and ``--quiet`` is not given, and removed when its last
task ends (nothing is left in a log file or a pipe). Tasks nest: a stage's spinner with its
folds' bar under it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_LOCK = threading.RLock()
_STATE: dict[str, Any] = {"enabled": False, "quiet": False, "console": None, "bar": None,
                          "tasks": 0}


def configure(*, quiet: bool = False, console: Any = None, force: bool = False) -> bool:
    """Turn the display on when stderr is a terminal (or ``force``, e.g. a test's console)
    and not ``quiet``; returns whether it is on. ``console``: a rich Console to draw on
    (default: stderr)."""
    with _LOCK:
        _stop()
        _STATE["quiet"] = quiet
        _STATE["console"] = console
        _STATE["enabled"] = not quiet and (force or sys.stderr.isatty())
        return _STATE["enabled"]


def is_quiet() -> bool:
    """``--quiet`` was given: step lines are not printed either."""
    return bool(_STATE["quiet"])


def enabled() -> bool:
    return bool(_STATE["enabled"])


def _bar():
    """The shared rich Progress, started on first use."""
    if _STATE["bar"] is None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        console = _STATE["console"] or Console(stderr=True)
        _STATE["bar"] = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                                 transient=True)
        _STATE["bar"].start()
    return _STATE["bar"]


def _stop() -> None:
    if _STATE["bar"] is not None:
        _STATE["bar"].stop()
        _STATE["bar"] = None
    _STATE["tasks"] = 0


@contextlib.contextmanager
def _task(description: str, total: float | None) -> Iterator[Callable[[float], None]]:
    """A task on the display: yields ``advance(n)``; removed when the block ends."""
    if not _STATE["enabled"]:
        yield lambda n=1: None
        return
    with _LOCK:
        bar = _bar()
        task = bar.add_task(description, total=total)
        _STATE["tasks"] += 1
    try:
        yield lambda n=1: bar.advance(task, n)
    finally:
        with _LOCK:
            bar.remove_task(task)
            _STATE["tasks"] -= 1
            if _STATE["tasks"] <= 0:
                _stop()


@contextlib.contextmanager
def stage(description: str) -> Iterator[None]:
    """A spinner with the elapsed time while the block runs (a step of unknown length)."""
    with _task(description, None):
        yield


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """``items``, one by one, with a bar advancing after each (``total``: its length when
    ``items`` has none)."""
    if not _STATE["enabled"]:
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with _task(description, total) as advance:
        for item in items:
            yield item
            advance(1)


@contextlib.contextmanager
def counter(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A bar fed with a running count (rows scored so far): yields ``update(done)``."""
    if not _STATE["enabled"]:
        yield lambda done: None
        return
    seen = {"done": 0}
    with _task(description, total) as advance:
        def update(done: int) -> None:
            if done > seen["done"]:
                advance(done - seen["done"])
                seen["done"] = done

        yield update
