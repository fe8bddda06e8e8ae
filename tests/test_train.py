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
