"""The training procedure's own helpers: text factors as categories, same results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.model import train as training
from pipeline.model.train_analysis import with_text_as_categories


def test_text_columns_become_categories_and_the_rest_stays():
    frame = pd.DataFrame({
        "source": pd.Series(["web", None, "ads", "web"], dtype=object),
        "country": pd.array(["DE", "FR", None, "DE"], dtype="str"),
        "visits": [1.0, 2.0, np.nan, 4.0],
        "mixed": pd.Series(["a", 1, None, 2.5], dtype=object),
        "id": ["L1", "L2", "L3", "L4"],
    })
    out = with_text_as_categories(frame, ["source", "country", "visits", "mixed"])
    assert isinstance(out["source"].dtype, pd.CategoricalDtype)
    assert isinstance(out["country"].dtype, pd.CategoricalDtype)
    assert out["source"].isna().tolist() == [False, True, False, False]
    assert out["source"].astype(object).where(out["source"].notna(), None).tolist() == \
        ["web", None, "ads", "web"]
    assert out["visits"].dtype == float and out["id"].dtype == frame["id"].dtype
    assert out["mixed"].dtype == object  # values that cannot be ordered stay as they are
    assert frame["source"].dtype == object  # a copy: the input is untouched
    assert with_text_as_categories(frame, ["visits"]) is frame


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


@pytest.mark.slow
def test_benchmark_and_inference_are_of_the_split_and_of_the_registered_table(demo_features):
    """The benchmark is trained on the training side of the split and judged on its holdout;
    the coefficient table is the statsmodels inference of the table that is registered
    (refit on every labelled lead)."""
    from pipeline.analysis.selection_check import eligible_columns
    from pipeline.model.fit import tabulate_coefficients

    cfg, features = demo_features
    assert cfg.model.refit_on_all
    result = training.train(features, cfg)
    frame, split = features.frame, result.split
    y = frame["converted"].to_numpy(dtype=int)
    train_part, test_part = (with_text_as_categories(frame.iloc[rows], features.factors)
                             for rows in (split.train, split.holdout))
    bench = training.holdout_benchmark(train_part, y[split.train], test_part, y[split.holdout],
                                       eligible_columns(result.analysis.selection), cfg)
    assert result.metrics["holdout_auc_benchmark"] == bench["auc"]
    assert result.metrics["holdout_brier_benchmark"] == bench["brier"]
    kept = result.analysis.kept
    everyone = with_text_as_categories(frame[kept], kept).reset_index(drop=True)
    sample, estimates = training.inference(result.scorecard, everyone, y, cfg)
    assert len(sample.y) == min(len(y), cfg.model.max_inference_rows)
    table, _ = tabulate_coefficients(result.scorecard.encoder_, sample, estimates,
                                     result.scorecard.fit_, {c: features.groups[c] for c in kept})
    pd.testing.assert_frame_equal(table, result.coefficients)


def _row_by_row_benchmark_design(train: pd.DataFrame, test: pd.DataFrame):
    """The benchmark design as first written (text mapped row by row): the reference."""
    from pipeline.model.encoding import categorical_text, is_numeric_column

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
    from pipeline.model.evaluate import _benchmark_design

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
