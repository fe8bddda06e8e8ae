"""FactorEncoder: scikit-learn conformance, levels, bins and the one-hot design."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils.estimator_checks import parametrize_with_checks

from pipeline.encoding import MISSING, OTHER, FactorEncoder, quantile_edges
from pipeline.rules import FactorRules, factor_points


@parametrize_with_checks([FactorEncoder(), FactorEncoder(min_leads=1, n_bins=3)])
def test_sklearn_conformance(estimator, check):
    check(estimator)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "source": ["web"] * 6 + ["event"] * 3 + ["fax", "telex"] + [None],
        "size": [1.0, 2.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, np.nan, 34.0, 55.0, 89.0],
    })


def test_levels_rare_pooling_and_missing(frame):
    encoder = FactorEncoder(min_leads=3, n_bins=3).fit(frame)
    source, size = encoder.factors_
    assert source.kind == "categorical" and size.kind == "numeric"
    assert source.slots == ["web", "event", OTHER, MISSING]
    assert source.counts == [6, 3, 2, 1]
    assert source.rare_levels == ["fax", "telex"]
    assert size.slots[-1] == MISSING and size.counts[-1] == 1
    assert sum(size.counts) == len(frame)
    assert list(encoder.offsets_) == [0, 4, 4 + len(size.slots)]
    names = encoder.get_feature_names_out()
    assert names[0] == "source=web" and len(names) == encoder.offsets_[-1]


def test_codes_unseen_and_missing_never_seen():
    train = pd.DataFrame({"c": ["a"] * 4 + ["b"] * 4})
    encoder = FactorEncoder(min_leads=1).fit(train)
    codes = encoder.codes(pd.DataFrame({"c": ["a", "b", "zzz", None]}))
    assert codes[:, 0].tolist() == [0, 1, -1, -1]  # unseen and never-seen missing: -1
    design = encoder.transform(pd.DataFrame({"c": ["a", "zzz"]})).toarray()
    assert design.tolist() == [[1.0, 0.0], [0.0, 0.0]]  # unseen: an all-zero block


def test_missing_tokens_and_empty_string_are_missing():
    train = pd.DataFrame({"c": ["a", "a", "Select", "", None, "b"]})
    encoder = FactorEncoder(min_leads=1, missing_values=("Select",)).fit(train)
    (factor,) = encoder.factors_
    assert factor.slots == ["a", "b", MISSING]
    assert factor.counts == [2, 1, 3]
    codes = encoder.codes(pd.DataFrame({"c": ["Select", "", "b"]}))[:, 0]
    assert codes.tolist() == [2, 2, 1]


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.floats(-1e6, 1e6, allow_subnormal=False),
                                 st.integers(-50, 50).map(float), st.just(np.nan)),
                       min_size=1, max_size=80),
       n_bins=st.integers(2, 8))
def test_numeric_bins_are_right_closed_like_the_rules(values, n_bins):
    train = pd.DataFrame({"x": values})
    encoder = FactorEncoder(n_bins=n_bins).fit(train)
    (factor,) = encoder.factors_
    edges = factor.edges
    assert all(b > a for a, b in zip(edges, edges[1:], strict=False))
    assert len(edges) + 1 <= n_bins
    n_bins_out = len(edges) + 1
    rule = FactorRules("x", "FIT", "numeric", edges=edges, bin_points=list(range(n_bins_out)),
                       missing_points=-1)
    codes = encoder.codes(train)[:, 0]
    for value, code in zip(values, codes, strict=True):
        expected, _ = factor_points(rule, value, [])
        if np.isnan(value):
            assert factor.slots[code] == MISSING
        else:
            assert code == expected  # naive: the number of edges strictly below the value
    counts = np.bincount(codes, minlength=len(factor.slots))
    assert counts.tolist() == factor.counts


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(-100, 100, allow_subnormal=False), min_size=1, max_size=60),
       n_bins=st.integers(2, 10))
def test_quantile_edges_properties(values, n_bins):
    array = np.asarray(values)
    edges = quantile_edges(array, n_bins)
    distinct = np.unique(array)
    assert len(edges) <= max(n_bins - 1, 0)
    assert all(e < distinct[-1] for e in edges)
    if distinct.size <= n_bins:  # few distinct values: one bin each
        assert edges == [float(v) for v in distinct[:-1]]


def test_design_rows_one_hot(frame):
    encoder = FactorEncoder(min_leads=3, n_bins=3).fit(frame)
    design = encoder.transform(frame).toarray()
    assert design.shape == (len(frame), encoder.offsets_[-1])
    for j in range(len(encoder.factors_)):
        block = design[:, encoder.offsets_[j]:encoder.offsets_[j + 1]]
        assert (block.sum(axis=1) == 1).all()  # every training lead has exactly one slot


def test_fit_does_not_mutate_and_validates_columns(frame):
    before = frame.copy(deep=True)
    encoder = FactorEncoder(min_leads=3).fit(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert list(encoder.feature_names_in_) == ["source", "size"]
    assert encoder.n_features_in_ == 2
    with pytest.raises(ValueError, match="Feature names seen at fit time, yet now missing"):
        encoder.transform(frame[["source"]])
    with pytest.raises(ValueError, match="same order"):
        encoder.transform(frame[["size", "source"]])
    with pytest.raises(TypeError, match="does not support sparse input"):
        import scipy.sparse as sp

        encoder.fit(sp.csr_matrix(np.eye(3)))


def test_arrays_get_positional_names():
    array = np.array([[1.0, np.nan], [2.0, 3.0], [3.0, 4.0]])
    encoder = FactorEncoder(min_leads=1).fit(array)
    assert not hasattr(encoder, "feature_names_in_")
    assert [f.name for f in encoder.factors_] == ["x0", "x1"]
    assert encoder.get_feature_names_out()[0].startswith("x0=")
    # a frame with non-string column names is positional as well
    encoder.fit(pd.DataFrame(array))
    assert [f.name for f in encoder.factors_] == ["x0", "x1"]
    assert encoder.transform(array).shape[0] == 3
