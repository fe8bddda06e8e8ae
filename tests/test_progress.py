"""Progress bars: drawn on a terminal, silent in a pipe and with --quiet; the stages' loops
yield the same items whether a bar is drawn or not."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from pipeline import progress

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _reset():
    yield
    progress.configure(quiet=False)  # back to: a bar only on a real terminal


def terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=100, color_system=None), buffer


def test_a_bar_on_a_terminal_names_the_step_and_counts() -> None:
    console, buffer = terminal()
    assert progress.configure(console=console, force=True)
    with progress.stage("training"):
        seen = list(progress.track(range(4), "cross-validation: 4 folds"))
    with progress.counter("scoring rows") as update:
        for done in (10, 25, 25, 40):
            update(done)
    assert seen == [0, 1, 2, 3]
    text = buffer.getvalue()
    assert "training" in text and "cross-validation: 4 folds" in text and "scoring rows" in text
    assert "0/4" in text  # drawn with its total (the live display refreshes 10 times a second)
    assert progress._STATE["bar"] is None  # removed with its last task


def test_silent_in_a_pipe_and_with_quiet(capsys: pytest.CaptureFixture) -> None:
    assert not progress.configure()  # pytest's stderr is not a terminal
    assert list(progress.track(iter("abc"), "x", total=3)) == ["a", "b", "c"]
    console, buffer = terminal()
    assert not progress.configure(quiet=True, console=console, force=True)
    with progress.stage("s"):
        assert list(progress.track([1, 2], "t")) == [1, 2]
    assert buffer.getvalue() == "" and capsys.readouterr().err == ""
    assert progress.is_quiet()
    from pipeline.workflow import step

    step("[1/5] hidden")
    assert capsys.readouterr().err == ""


@given(st.lists(st.integers(), max_size=30), st.booleans())
def test_track_yields_the_items_unchanged(items: list[int], shown: bool) -> None:
    console, _ = terminal()
    progress.configure(console=console, force=shown)
    assert list(progress.track(items, "t")) == items
    assert list(progress.track(iter(items), "t")) == items
    progress.configure()


def test_cross_validation_folds_show_a_bar() -> None:
    """The fit's C search (a stage's inner loop) draws its folds, and gives the same result
    with the bar as without."""
    import scipy.sparse as sp

    from pipeline.model.fit import fit_regularised

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (rng.random(400) < 1 / (1 + np.exp(-x[:, 0]))).astype(int)
    design = sp.csr_matrix(x)
    plain = fit_regularised(design, y, c_grid=[0.1, 1.0], folds=3, seed=1,
                            max_iter=200)
    console, buffer = terminal()
    progress.configure(console=console, force=True)
    shown = fit_regularised(design, y, c_grid=[0.1, 1.0], folds=3, seed=1,
                            max_iter=200)
    assert "choosing C: 3 CV folds" in buffer.getvalue()
    assert shown.C == plain.C


@pytest.mark.parametrize("target", ["train", "retrain", "score", "export", "evaluate", "lift",
                                    "report", "drift"])
def test_every_make_target_honours_config(target: str) -> None:
    done = subprocess.run(["make", "-n", "-C", str(REPO), target, "CONFIG=configs/other.yaml",
                           "INPUT=new.csv", "QUIET=1"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    commands = [line for line in done.stdout.splitlines() if "lead-scoring" in line]
    assert commands, done.stdout
    assert any("--config configs/other.yaml" in line for line in commands)
    assert all("--quiet" in line for line in commands)
    assert "demo-data" not in done.stdout  # the demo data only for the demo config


def test_make_drift_without_input_says_what_to_give() -> None:
    done = subprocess.run(["make", "-s", "-C", str(REPO), "drift", f"STAMP={__file__}"],
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "make drift INPUT=" in done.stderr
