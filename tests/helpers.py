"""Helpers shared by test modules: run the CLI in-process."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from typer.testing import CliRunner


def invoke(args: list[str]) -> Any:
    """``lead-scoring ARGS`` on the Typer app (no error mapping); fails the test on non-zero."""
    from pipeline.cli.main import app

    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        raise AssertionError(f"{args} failed ({result.exit_code}): {result.output}\n"
                             f"{result.exception!r}")
    return result


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: object
            ) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``lead-scoring ARGS`` run through ``cli.main``, the real
    entry point with its error handling; a traceback on stderr fails the test."""
    from pipeline.cli import main as cli

    monkeypatch.setattr(sys, "argv", ["lead-scoring", *map(str, args)])
    monkeypatch.setitem(cli._DEBUG, "on", False)
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err
