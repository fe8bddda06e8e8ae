"""Helpers shared by test modules: run the CLI in-process; the demo leads with a PAIN count
and their config (tests/test_faults.py, tests/test_hostile_input.py)."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]


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


def run_quiet(*args: object) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``lead-scoring ARGS`` through ``cli.main``, in-process,
    without pytest fixtures (hypothesis cannot use function-scoped ones)."""
    from pipeline.cli import main as cli

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(out):
        mp.setattr(sys, "argv", ["lead-scoring", *map(str, args)])
        mp.setitem(cli._DEBUG, "on", False)
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def visits_leads(demo_dir: Path, path: Path, n_leads: int = 1200) -> Path:
    """The first ``n_leads`` demo leads plus a numeric PAIN count ``visits`` that won leads
    mostly have more of (not always: a level where every lead lost would be a leak)."""
    frame = pd.read_csv(demo_dir / "leads.csv", dtype=str, keep_default_na=False).head(n_leads)
    rng = np.random.default_rng(3)
    won = (frame["outcome"] == "won").to_numpy()
    boost = 3 * (won & (rng.random(len(frame)) < 0.8))
    frame["visits"] = (rng.integers(0, 8, len(frame)) + boost).astype(str)
    frame.to_csv(path, index=False)
    return path


def visits_config(path: Path, leads: Path, store: Path) -> Path:
    """The demo config on ``leads`` with ``visits`` as PAIN, no events, no account roll-up
    (faster; test_bad_inputs checks the roll-up), its MLflow store in ``store``."""
    settings_ = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    settings_["root"] = str(REPO)
    settings_["data"].update(leads=str(leads), events=None, account_column=None)
    settings_["events"] = {"groups": {}}
    settings_["columns"]["pain"] = ["visits"]
    settings_["registry"] = {"tracking_uri": f"sqlite:///{store / 'mlflow.db'}",
                             "artifact_location": str(store / "artifacts")}
    path.write_text(yaml.safe_dump(settings_, sort_keys=False))
    return path
