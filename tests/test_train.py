"""The training procedure's own helpers: text factors as categories, same results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import train as training


def test_text_columns_become_categories_and_the_rest_stays():
    frame = pd.DataFrame({
        "source": pd.Series(["web", None, "ads", "web"], dtype=object),
        "country": pd.array(["DE", "FR", None, "DE"], dtype="str"),
        "visits": [1.0, 2.0, np.nan, 4.0],
        "mixed": pd.Series(["a", 1, None, 2.5], dtype=object),
        "id": ["L1", "L2", "L3", "L4"],
    })
    out = training.with_text_as_categories(frame, ["source", "country", "visits", "mixed"])
    assert isinstance(out["source"].dtype, pd.CategoricalDtype)
    assert isinstance(out["country"].dtype, pd.CategoricalDtype)
    assert out["source"].isna().tolist() == [False, True, False, False]
    assert out["source"].astype(object).where(out["source"].notna(), None).tolist() == \
        ["web", None, "ads", "web"]
    assert out["visits"].dtype == float and out["id"].dtype == frame["id"].dtype
    assert out["mixed"].dtype == object  # values that cannot be ordered stay as they are
    assert frame["source"].dtype == object  # a copy: the input is untouched
    assert training.with_text_as_categories(frame, ["visits"]) is frame


@pytest.mark.slow
def test_training_on_categories_gives_what_training_on_text_gives(demo_features, monkeypatch):
    cfg, features = demo_features
    as_categories = training.train(features, cfg)
    monkeypatch.setattr(training, "with_text_as_categories", lambda frame, columns: frame)
    as_text = training.train(features, cfg)
    assert as_categories.rules.to_json() == as_text.rules.to_json()
    pd.testing.assert_frame_equal(as_categories.analysis.lift, as_text.analysis.lift)
    pd.testing.assert_frame_equal(as_categories.analysis.selection, as_text.analysis.selection)
    assert as_categories.metrics == as_text.metrics


class _DeadSide:
    """A side process whose work always fails (as if the process had died while on it)."""

    def submit(self, fn, /, *args, **kwargs):
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool

        future = Future()
        future.set_exception(BrokenProcessPool("the side process died"))
        return future

    def submit_claimable(self, fn, /, *args, **kwargs):
        import os

        from pipeline.side_process import Claimable

        # a token that exists already: the job was claimed there, then the process died
        return Claimable(self.submit(fn, *args, **kwargs), os.devnull)


@pytest.mark.slow
def test_benchmark_in_a_side_process_is_the_benchmark_on_a_thread(demo_features):
    from pipeline.side_process import SideProcess

    cfg, features = demo_features
    on_thread = training.train(features, cfg)
    with SideProcess() as side:
        in_process = training.train(features, cfg, side=side)
    after_failure = training.train(features, cfg, side=_DeadSide())  # trained here instead
    for result in (in_process, after_failure):
        assert result.metrics["holdout_auc_benchmark"] == on_thread.metrics[
            "holdout_auc_benchmark"]
        assert result.metrics["holdout_brier_benchmark"] == on_thread.metrics[
            "holdout_brier_benchmark"]
        assert result.rules.to_json() == on_thread.rules.to_json()


def test_side_process_runs_work_in_order_and_says_when_it_cannot_start(monkeypatch):
    from pipeline.side_process import SideProcess, preload

    with SideProcess() as side:
        ready = side.submit(preload, "json", "pipeline.side_process")
        first, second = side.submit(divmod, 7, 2), side.submit(pow, 2, 10)
        assert (first.result(timeout=120), second.result(timeout=120)) == ((3, 1), 1024)
        assert ready.done() and ready.result() is None
        missing = side.submit(preload, "no_such_module_here")
        with pytest.raises(ModuleNotFoundError):
            missing.result(timeout=120)
    import concurrent.futures

    def refuse(*args, **kwargs):
        raise OSError("no processes here")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", refuse)
    with SideProcess() as side:
        assert side.submit(divmod, 7, 2) is None  # the caller does the work itself
        assert side.submit(divmod, 7, 2) is None


def _pid_when_let(started: str | None = None, gate: str | None = None) -> int:
    """This process's id, after saying it started (``started`` appears) and being let go
    (``gate`` appears): a job the test can hold in the side process."""
    import os
    import time
    from pathlib import Path

    if started:
        Path(started).touch()
    deadline = time.monotonic() + 120
    while gate and not Path(gate).exists():
        assert time.monotonic() < deadline, "the test never let the job go"
        time.sleep(0.01)
    return os.getpid()


def _wait_for(path) -> None:
    import time

    deadline = time.monotonic() + 120
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_work_not_started_aside_is_taken_back_and_done_here(tmp_path):
    """A job the side process has not started is done here when its result is asked for
    (the side process then skips it); one it is running is waited for; a claim is won once."""
    import os

    from pipeline.side_process import SideProcess

    started, gate = tmp_path / "started", tmp_path / "go"
    with SideProcess(fork_when_safe=True) as side:
        first = side.submit_claimable(_pid_when_let, str(started), str(gate))
        running = training._Aside(first.future, job=(_pid_when_let,), claim=first)
        second = side.submit_claimable(_pid_when_let)
        queued = training._Aside(second.future, job=(_pid_when_let,), claim=second)
        _wait_for(started)
        assert running.pending_aside() and queued.pending_aside()
        assert queued.result() == os.getpid()  # not started there: done here, not waited for
        assert not queued.pending_aside()
        assert queued.result() == os.getpid()  # once: the result is kept
        assert not second.take_back()  # claimed already
        gate.touch()
        assert running.result() != os.getpid()  # it was running there: waited for
        assert not running.pending_aside()
        assert second.future.result(timeout=120) is None  # the side process skipped it
        done = side.submit_claimable(_pid_when_let)
        assert done.future.result(timeout=120) != os.getpid()
        assert not done.take_back()  # finished there: nothing to take back
    thread_work = training._Aside(None, job=(_pid_when_let,))  # no side process at all
    thread_work.take_back()
    assert not thread_work.pending_aside() and thread_work.result() == os.getpid()


_SET_IN_PARENT = {"value": "as imported"}


def _inherited_state() -> tuple[str, list[int]]:
    from threadpoolctl import threadpool_info

    return _SET_IN_PARENT["value"], [pool["num_threads"] for pool in threadpool_info()]


def _frozen_objects() -> int:
    import gc

    return gc.get_freeze_count()


def test_side_process_is_forked_when_safe_and_spawned_otherwise():
    import gc
    import threading

    from pipeline.side_process import SideProcess

    _SET_IN_PARENT["value"] = "changed in the parent"
    try:
        with SideProcess(fork_when_safe=True) as side:
            would_fork = side.will_fork()
            value, threads = side.submit(_inherited_state).result(timeout=120)
            assert would_fork == (side.start_method == "fork")  # it said what happened
            assert not side.will_fork()  # started: nothing more to fork
            if threading.active_count() == 1:  # the test runner started no thread of its own
                assert side.start_method == "fork"
                assert value == "changed in the parent"  # inherited, not imported again
                assert set(threads) <= {1}  # native pools on one thread in the child
                # what the child inherited its collections leave alone; the parent's are as
                # before the fork
                assert side.submit(_frozen_objects).result(timeout=120) > 0
                assert gc.get_freeze_count() == 0
        stop = threading.Event()
        other = threading.Thread(target=stop.wait)
        other.start()
        try:
            with SideProcess(fork_when_safe=True) as side:
                assert not side.will_fork()
                value, _ = side.submit(_inherited_state).result(timeout=120)
                assert side.start_method == "spawn"  # a live thread could hold a lock
                assert value == "as imported"
        finally:
            stop.set()
            other.join()
        with SideProcess() as side:
            assert not side.will_fork()
            assert side.submit(_inherited_state).result(timeout=120)[0] == "as imported"
            assert side.start_method == "spawn"
    finally:
        _SET_IN_PARENT["value"] = "as imported"


def _row_by_row_benchmark_design(train: pd.DataFrame, test: pd.DataFrame):
    """The benchmark design as first written (text mapped row by row): the reference."""
    from pipeline.encoding import categorical_text, is_numeric_column

    cols_train, cols_test = [], []
    for column in train.columns:
        if is_numeric_column(train[column]):
            cols_train.append(pd.to_numeric(train[column], errors="coerce").to_numpy(float))
            cols_test.append(pd.to_numeric(test[column], errors="coerce").to_numpy(float))
            continue
        text_train = categorical_text(train[column]).fillna("(missing)")
        levels = list(text_train.value_counts().index[:250])
        mapping = {lvl: float(i) for i, lvl in enumerate(sorted(levels))}
        cols_train.append(text_train.map(mapping).to_numpy(float, na_value=np.nan))
        text_test = categorical_text(test[column]).fillna("(missing)")
        cols_test.append(text_test.map(mapping).to_numpy(float, na_value=np.nan))
    return np.column_stack(cols_train), np.column_stack(cols_test)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_benchmark_design_maps_each_level_as_row_by_row_mapping_did(seed):
    """Levels past the 250 most frequent (ties at the cut included), missing, a level
    written "(missing)", numbers as text, Categoricals, unseen test levels."""
    from pipeline.evaluate import _benchmark_design

    rng = np.random.default_rng(seed)
    n = 4000
    many = np.array([f"v{i}" for i in range(400)], dtype=object)[rng.integers(0, 400, n)]
    many[rng.random(n) < 0.05] = None
    few = rng.choice(np.array(["a", "b", "(missing)", None, "12"], dtype=object), n)
    train = pd.DataFrame({"many": many, "few": few, "cat": pd.Categorical(few.astype(str)),
                          "num": rng.normal(size=n)})
    test = pd.DataFrame({"many": many[::-1].copy(), "few": np.where(rng.random(n) < 0.1, "new",
                                                                    few).astype(object),
                         "cat": pd.Categorical(few[::-1].astype(str)), "num": rng.normal(size=n)})
    got_train, got_test, categorical = _benchmark_design(train, test)
    want_train, want_test = _row_by_row_benchmark_design(train, test)
    np.testing.assert_array_equal(got_train, want_train)
    np.testing.assert_array_equal(got_test, want_test)
    assert categorical == [True, True, True, False]
