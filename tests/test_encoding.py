"""FactorEncoder: scikit-learn conformance, levels, bins and the one-hot design."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils.estimator_checks import parametrize_with_checks

from pipeline.model.encoding import (
    MISSING,
    OTHER,
    FactorEncoder,
    categorical_text,
    few_distinct,
    quantile_edges,
)
from pipeline.model.reference import canonical_str, factor_points
from pipeline.model.rules import FactorRules, special_key


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
    # a special value (here only found automatically: one value holds most of the column)
    # is the slot after the bins, matched before them as the rules say
    special = {special_key(v): n_bins_out + k for k, v in enumerate(factor.special)}
    rule = FactorRules("x", "FIT", "numeric", edges=edges, bin_points=list(range(n_bins_out)),
                       missing_points=-1, special_points=special)
    codes = encoder.codes(train)[:, 0]
    for value, code in zip(values, codes, strict=True):
        expected, _ = factor_points(rule, value, [])
        if np.isnan(value):
            assert factor.slots[code] == MISSING
        else:
            assert code == expected  # naive: a special value's slot, else the edges below
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


# --- text worked out once per distinct value ---------------------------------------------


def _text_per_row(series: pd.Series) -> list:
    """The former row-by-row rule: text per value, missing (None, NaN, NA, NaT) is None."""
    out = []
    for v in series.astype(object):
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
        else:
            out.append(v if isinstance(v, str) else canonical_str(v))
    return out


@pytest.mark.parametrize("values", [
    ["web", None, np.nan, "", "web", "ads"],
    [1.0, 2.5, np.nan, 1.0, 3.0],
    [True, False, True],
    ["1", 1, 1.0, None, "x"],
    [None, None],
    [[1, 2], [1, 2], None, "a"],  # unhashable cells match on their text
])
def test_categorical_text_matches_the_row_by_row_rule(values):
    series = pd.Series(values, dtype=object, name="c")
    text = categorical_text(series)
    assert text.dtype == object and text.name == "c" and text.index.equals(series.index)
    expected = _text_per_row(series.map(lambda v: str(v) if isinstance(v, list) else v))
    assert [None if pd.isna(t) else t for t in text] == expected


def test_categorical_text_keeps_the_text_of_a_numpy_nan():
    series = pd.Series(["a", np.float32("nan"), None], dtype=object)
    assert categorical_text(series).tolist()[1] == "nan"  # not a float NaN: matched as text


@pytest.mark.parametrize("dtype", ["category", "str"])
def test_categorical_and_text_columns_encode_like_object_columns(dtype):
    rng = np.random.default_rng(4)
    values = rng.choice(["web", "event", "fax", "", "Select"], size=300, p=[.5, .3, .05, .1, .05])
    values = values.astype(object)
    values[rng.random(300) < 0.1] = None
    plain = pd.DataFrame({"c": pd.Series(values, dtype=object), "x": rng.normal(size=300)})
    other = plain.assign(c=plain["c"].astype(dtype))
    settings_ = {"min_leads": 20, "n_bins": 4, "missing_values": ("Select",)}
    a = FactorEncoder(**settings_).fit(plain)
    b = FactorEncoder(**settings_).fit(other)
    assert a.factors_ == b.factors_
    assert np.array_equal(a.codes(plain), b.codes(other))
    assert np.array_equal(a.codes(other), b.codes(plain))  # either kind scores the other's fit
    assert (a.transform(plain) != b.transform(other)).nnz == 0
    pd.testing.assert_series_equal(categorical_text(plain["c"]), categorical_text(other["c"]))


def test_design_equals_the_coordinate_built_one_hot():
    train = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 5, "x": np.arange(10.0)})
    encoder = FactorEncoder(min_leads=1, n_bins=2).fit(train)
    new = pd.DataFrame({"c": ["a", "zzz", "b", None], "x": [0.0, 3.0, np.nan, 9.0]})
    codes = encoder.codes(new)
    assert (codes < 0).any()  # an unseen level and a never-seen missing value
    rows, cols = np.nonzero(codes >= 0)
    reference = sp.csr_matrix((np.ones(rows.size), (rows, codes[rows, cols]
                                                    + encoder.offsets_[cols])),
                              shape=(len(new), encoder.offsets_[-1]))
    design = encoder.transform(new)
    assert design.indices.dtype == reference.indices.dtype
    assert np.array_equal(design.toarray(), reference.toarray())
    full = encoder.transform(train)
    assert np.array_equal(full.indptr, np.arange(0, 2 * len(train) + 1, 2))


def test_few_distinct_is_unique_or_none_also_past_the_first_values():
    rng = np.random.default_rng(2)
    counts = rng.integers(0, 4, 10_000).astype(float)
    assert np.array_equal(few_distinct(counts, 5), np.unique(counts))
    late = np.r_[np.zeros(5000), rng.normal(size=5000)]  # the variety comes after the start
    assert few_distinct(late, 5) is None
    assert few_distinct(rng.normal(size=10_000), 5) is None
    assert quantile_edges(late, 4) == quantile_edges(late.copy()[::-1], 4)
