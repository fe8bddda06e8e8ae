"""User-facing errors: a message that names the file, row, column or key and what to do."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or usage: the CLI prints the message (no traceback), exits with ``exit_code``."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  hint: {hint}")


class NothingScoredError(UserError):
    """Scoring ran but no lead could be scored (every row rejected)."""

    exit_code = 1


class LockedError(UserError):
    """Another run holds the lock (cron overlap); exit code 75 (EX_TEMPFAIL) so schedulers retry."""

    exit_code = 75


class DriftError(UserError):
    """A drift check found a factor or the score that needs retraining (exit code 3)."""

    exit_code = 3
