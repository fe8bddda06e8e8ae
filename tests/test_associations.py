"""Target and pairwise associations, IV/WoE and VIF against slow references written here."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import roc_auc_score
from statsmodels.stats.outliers_influence import variance_inflation_factor

from pipeline.analysis.association_measures import (
    _average_ranks,
    _sorted_ranks,
    auc,
    cramers_v_from_codes,
    dense_codes,
    oof_target_mean_auc,
    woe_table,
)
from pipeline.analysis.associations import (
    PAIRWISE_COLUMNS,
    TARGET_COLUMNS,
    missing_mask,
    pairwise_associations,
    sorted_level_codes,
    target_associations,
    vif_table,
)
from pipeline.analysis.lift import lift_table
from pipeline.analysis.lift_levels import level_frame


def make_leads(seed: int = 0, n: int = 800) -> tuple[pd.DataFrame, pd.Series]:
    """Synthetic leads: a strong categorical, its near-copy, numerics and edge cases."""
    rng = np.random.default_rng(seed)
    source = rng.choice(["web", "event", "partner", "ads"], size=n, p=[0.4, 0.3, 0.2, 0.1])
    visits = rng.poisson(3.0, size=n).astype(float)
    logit = -1.0 + np.select([source == "event", source == "partner"], [1.0, 2.5], 0.0)
    logit = logit + 0.3 * (visits - 3)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    channel = np.array([{"web": "online", "ads": "online"}.get(s, s) for s in source], dtype=object)
    channel[rng.random(n) < 0.02] = "online"  # near-copy of source
    temperature = np.where(rng.random(n) < 0.5, "mid", None).astype(object)
    temperature[(y == 1) & (rng.random(n) < 0.3)] = "hot"  # always converts
    temperature[(y == 0) & (rng.random(n) < 0.3)] = "cold"  # never converts
    spend = rng.gamma(2.0, 50.0, size=n) + 30 * y
    spend[rng.random(n) < 0.1] = np.nan
    X = pd.DataFrame(
        {
            "source": pd.Series(source, dtype=object),
            "channel": pd.Series(channel, dtype=object),
            "visits": visits,
            "visits_copy": 2 * visits + 1,
            "spend": spend,
            "temperature": pd.Series(temperature, dtype=object),
            "constant": "yes",
            "only_missing": pd.Series([None] * n, dtype=object),
            "numeric_constant": np.full(n, 4.0),
        }
    )
    return X, pd.Series(y, name="converted")


# ------------------------------------------------------------------ references


def naive_auc(scores: list[float], y: list[int]) -> float:
    """Share of (positive, negative) pairs ranked right, ties counting one half."""
    pos = [s for s, t in zip(scores, y, strict=True) if t == 1]
    neg = [s for s, t in zip(scores, y, strict=True) if t == 0]
    wins = 0.0
    for p in pos:
        for q in neg:
            wins += 1.0 if p > q else 0.5 if p == q else 0.0
    return wins / (len(pos) * len(neg))


def naive_cramers_v(a: list, b: list) -> float:
    rows, cols = sorted(set(a)), sorted(set(b))
    if len(rows) < 2 or len(cols) < 2:
        return float("nan")
    n = len(a)
    observed = {(r, c): 0 for r in rows for c in cols}
    for u, v in zip(a, b, strict=True):
        observed[(u, v)] += 1
    row_tot = {r: sum(observed[(r, c)] for c in cols) for r in rows}
    col_tot = {c: sum(observed[(r, c)] for r in rows) for c in cols}
    chi2 = 0.0
    for r in rows:
        for c in cols:
            e = row_tot[r] * col_tot[c] / n
            chi2 += (observed[(r, c)] - e) ** 2 / e
    return math.sqrt(chi2 / (n * (min(len(rows), len(cols)) - 1)))


def naive_iv(levels: list[str], y: list[int]) -> float:
    events = sum(y)
    non = len(y) - events
    iv = 0.0
    for level in sorted(set(levels)):
        e = sum(1 for lv, t in zip(levels, y, strict=True) if lv == level and t == 1)
        ne = sum(1 for lv, t in zip(levels, y, strict=True) if lv == level and t == 0)
        de = (e if e > 0 else 0.5) / events
        dn = (ne if ne > 0 else 0.5) / non
        iv += (de - dn) * math.log(de / dn)
    return iv


def naive_pearson(x: list[float], z: list[float]) -> float:
    pairs = [(u, v) for u, v in zip(x, z, strict=True) if not (math.isnan(u) or math.isnan(v))]
    mx = sum(u for u, _ in pairs) / len(pairs)
    mz = sum(v for _, v in pairs) / len(pairs)
    sxz = sum((u - mx) * (v - mz) for u, v in pairs)
    sxx = sum((u - mx) ** 2 for u, _ in pairs)
    szz = sum((v - mz) ** 2 for _, v in pairs)
    return sxz / math.sqrt(sxx * szz) if sxx > 0 and szz > 0 else float("nan")


# ---------------------------------------------------------------------- tests


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 1)), min_size=2, max_size=40))
def test_auc_matches_pair_counting(pairs):
    scores = [float(s) for s, _ in pairs]
    y = [t for _, t in pairs]
    got = auc(np.array(scores), np.array(y))
    if 0 < sum(y) < len(y):
        assert got == pytest.approx(naive_auc(scores, y))
        assert got == pytest.approx(roc_auc_score(y, scores))
    else:
        assert got == 0.5


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=60))
def test_cramers_v_matches_naive(pairs):
    a = [u for u, _ in pairs]
    b = [v for _, v in pairs]
    got = cramers_v_from_codes(np.array(a), np.array(b))
    want = naive_cramers_v(a, b)
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, abs=1e-9)


def test_woe_table_by_hand():
    levels = pd.Series(["a"] * 4 + ["b"] * 4 + ["c"] * 2)
    y = pd.Series([1, 1, 1, 0, 1, 0, 0, 0, 0, 0])  # 4 events, 6 non-events; c never converts
    table = woe_table(levels, y).set_index("level")
    assert table.loc["a", "woe"] == pytest.approx(math.log((3 / 4) / (1 / 6)))
    assert table.loc["c", "dist_events"] == pytest.approx(0.5 / 4)  # zero cell -> 0.5
    assert table.loc["c", "woe"] == pytest.approx(math.log((0.5 / 4) / (2 / 6)))
    assert table["iv"].sum() == pytest.approx(naive_iv(list(levels), list(y)))
    with pytest.raises(ValueError, match="both classes in y, got 0 conversions out of 10"):
        woe_table(levels, y * 0)


def test_target_associations_match_naive_reference():
    X, y = make_leads(seed=1, n=400)
    frame, _ = level_frame(X)
    table = target_associations(X, y, level_frame=frame)
    assert list(table.columns) == TARGET_COLUMNS
    assert list(table["attribute"]) == list(X.columns)
    t = list(y)
    for row in table.itertuples(index=False):
        levels = list(frame[row.attribute])
        assert row.n_levels == len(set(levels))
        assert row.missing_share == pytest.approx(float(X[row.attribute].isna().mean()))
        assert row.information_value == pytest.approx(naive_iv(levels, t))
        want_v = naive_cramers_v(levels, t)
        if math.isnan(want_v):
            assert math.isnan(row.cramers_v)
        else:
            assert row.cramers_v == pytest.approx(want_v)
        if row.kind == "numeric":
            x = list(X[row.attribute])
            assert row.point_biserial == pytest.approx(
                naive_pearson(x, [float(v) for v in t]), nan_ok=True
            )
            lowest = min((v for v in x if not math.isnan(v)), default=0.0) - 1.0
            a = naive_auc([lowest if math.isnan(v) else v for v in x], t)
            assert row.single_auc == pytest.approx(max(a, 1 - a))
        else:
            assert math.isnan(row.point_biserial)
    by = table.set_index("attribute")
    for column in ("constant", "only_missing", "numeric_constant"):
        assert by.loc[column, "single_auc"] == 0.5
        assert by.loc[column, "information_value"] == pytest.approx(0.0)
        assert by.loc[column, "n_levels"] == 1
    assert by.loc["only_missing", "missing_share"] == 1.0
    # strong effects are found: partner/event source and the always/never temperature levels
    assert by.loc["source", "single_auc"] > 0.65
    assert by.loc["temperature", "information_value"] > by.loc["constant", "information_value"]


def test_categorical_auc_is_out_of_fold():
    rng = np.random.default_rng(3)
    n = 600
    y = rng.integers(0, 2, size=n)
    unique_ids = np.array([f"id{i}" for i in range(n)], dtype=object)  # pure noise, 1 lead/level
    # in-sample target encoding of unique ids would give AUC 1; out of fold it is uninformative
    assert oof_target_mean_auc(unique_ids, y) == pytest.approx(0.5, abs=0.05)
    levels = np.where(y == 1, "win", "loss").astype(object)  # the outcome itself
    assert oof_target_mean_auc(levels, y) == 1.0
    # fixed seed: deterministic
    noisy = rng.choice(["a", "b", "c"], size=n).astype(object)
    assert oof_target_mean_auc(noisy, y) == oof_target_mean_auc(noisy, y)


def test_target_associations_reject_single_class():
    X, y = make_leads(n=50)
    with pytest.raises(ValueError, match="single class"):
        target_associations(X, y * 0)


def test_pairwise_associations_match_naive_reference():
    X, _ = make_leads(seed=2, n=300)
    frame, _ = level_frame(X)
    table = pairwise_associations(X, level_frame=frame)
    assert list(table.columns) == PAIRWISE_COLUMNS
    k = X.shape[1]
    assert len(table) == k * (k - 1) // 2
    numeric = {"visits", "visits_copy", "spend", "numeric_constant"}
    for row in table.itertuples(index=False):
        if row.attribute_a in numeric and row.attribute_b in numeric:
            assert row.measure == "pearson"
            want = naive_pearson(list(X[row.attribute_a]), list(X[row.attribute_b]))
        else:
            assert row.measure == "cramers_v"
            want = naive_cramers_v(list(frame[row.attribute_a]), list(frame[row.attribute_b]))
        assert row.value == pytest.approx(want, nan_ok=True)
    pairs = table.set_index(["attribute_a", "attribute_b"])["value"]
    assert pairs[("visits", "visits_copy")] == pytest.approx(1.0)
    assert pairs[("source", "channel")] > 0.9
    assert math.isnan(pairs[("source", "constant")])


def test_vif_matches_statsmodels_with_intercept():
    rng = np.random.default_rng(4)
    n = 300
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    c = a + 0.3 * b + 0.2 * rng.normal(size=n)
    design = pd.DataFrame({"a": a, "b": b, "c": c, "d": rng.integers(0, 2, size=n).astype(float)})
    got = vif_table(design)
    assert list(got.columns) == ["feature", "vif"]
    with_const = np.column_stack([np.ones(n), design.to_numpy()])
    want = [variance_inflation_factor(with_const, j + 1) for j in range(design.shape[1])]
    assert got["vif"].to_numpy() == pytest.approx(want, rel=1e-8)


def test_vif_constant_and_collinear_columns():
    rng = np.random.default_rng(5)
    a = rng.normal(size=100)
    b = rng.normal(size=100)
    design = pd.DataFrame({"a": a, "b": b, "sum": a + b, "const": 1.0})
    got = vif_table(design).set_index("feature")["vif"]
    assert math.isnan(got["const"])  # no variance: undefined
    assert got[["a", "b", "sum"]].tolist() == [np.inf, np.inf, np.inf]
    with pytest.raises(ValueError, match=r"non-numeric \['s'\]"):
        vif_table(design.assign(s="x"))
    with pytest.raises(ValueError, match=r"NaN in \['a'\]"):
        vif_table(design.assign(a=np.where(a > 0, np.nan, a)))


# ------------------------------------------------- fast paths against their slow originals


@pytest.mark.parametrize("make", [
    lambda rng: rng.integers(0, 12, 20_000).astype(float),  # a count: ranks by counting
    lambda rng: np.where(rng.random(20_000) < 0.5, -0.0, rng.integers(-3, 3, 20_000)),
    lambda rng: np.r_[rng.integers(0, 5, 9_000), [-np.inf, np.inf]].astype(float),
    lambda rng: rng.normal(size=20_000),  # continuous: sorted as before
    lambda rng: np.r_[rng.integers(0, 5, 9_000), [np.nan]].astype(float),
    lambda rng: rng.integers(0, 3, 50).astype(float),  # small
])
def test_average_ranks_are_scipys_exactly(make):
    s = make(np.random.default_rng(0))
    got, want = _average_ranks(s), stats.rankdata(s)
    assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True)
    y = (np.arange(s.size) % 3 == 0).astype(int)
    ranks = stats.rankdata(s)
    reference = (ranks[y == 1].sum() - y.sum() * (y.sum() + 1) / 2) / (y.sum() * (s.size - y.sum()))
    assert auc(s, y) == float(reference) or math.isnan(reference)


def test_cramers_v_renumbers_sparse_negative_and_huge_codes_like_unique():
    rng = np.random.default_rng(1)
    a = rng.choice([5, 100, 7, 3_000_000], size=500)
    b = rng.choice([-1, 4, 9], size=500)
    dense_a = np.unique(a, return_inverse=True)[1]
    dense_b = np.unique(b, return_inverse=True)[1]
    assert np.array_equal(dense_codes(a), dense_a)
    assert np.array_equal(dense_codes(np.array([4, 2, 4, 9])), [1, 0, 1, 2])
    assert cramers_v_from_codes(a, b) == cramers_v_from_codes(dense_a, dense_b)
    assert cramers_v_from_codes(a, b) == pytest.approx(naive_cramers_v(list(a), list(b)))
    assert math.isnan(cramers_v_from_codes(np.array([], dtype=int), np.array([], dtype=int)))


def test_missing_share_counts_nulls_and_empty_text_once_per_value():
    series = pd.Series(["a", "", None, np.nan, "a", "", "b", pd.NA], dtype=object)
    want = [False, True, True, True, False, True, False, True]
    assert missing_mask(series).tolist() == want
    assert missing_mask(series.astype("category")).tolist() == want
    unhashable = pd.Series([["x"], "", None, "a"], dtype=object)
    assert missing_mask(unhashable).tolist() == [False, True, True, False]
    assert missing_mask(pd.Series([1.0, np.nan])).tolist() == [False, True]


def test_categorical_columns_associate_like_object_columns():
    X, y = make_leads(seed=4, n=500)
    other = X.assign(source=X["source"].astype("category"),
                     temperature=X["temperature"].astype("category"))
    frame, _ = level_frame(X)
    frame_other, _ = level_frame(other)
    pd.testing.assert_frame_equal(target_associations(X, y, level_frame=frame),
                                  target_associations(other, y, level_frame=frame_other))
    pd.testing.assert_frame_equal(pairwise_associations(X, level_frame=frame),
                                  pairwise_associations(other, level_frame=frame_other))
    holed = frame.assign(source=frame["source"].where(frame["source"] != "web", None))
    with pytest.raises(ValueError, match="must label every value"):
        target_associations(X, y, level_frame=holed)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["b", "a", "(missing)", "(other)", "10", "9", "Z"]),
                min_size=1, max_size=60),
       st.lists(st.sampled_from(["b", "a", "(missing)", "(other)", "10", "9", "Z", "unused"]),
                min_size=0, max_size=8, unique=True))
def test_sorted_level_codes_of_a_categorical_are_factorize_sorted(labels, extra):
    categories = list(dict.fromkeys([*reversed(labels), *extra]))  # any order, some unused
    column = pd.Series(pd.Categorical(labels, categories=categories))
    codes, names = sorted_level_codes(column)
    want_codes, want_names = pd.factorize(np.array(labels, dtype=object), sort=True)
    np.testing.assert_array_equal(codes, want_codes)
    assert list(names) == list(want_names)


def test_categorical_level_frame_gives_the_same_associations():
    X, y = make_leads(seed=3, n=800)
    as_text, meta = level_frame(X, min_leads=20, n_bins=4)
    as_categories, meta_too = level_frame(X, min_leads=20, n_bins=4, categorical=True)
    assert meta == meta_too
    for column in X.columns:
        assert as_categories[column].astype(object).tolist() == as_text[column].tolist()
    pd.testing.assert_frame_equal(target_associations(X, y, level_frame=as_categories),
                                  target_associations(X, y, level_frame=as_text))
    pd.testing.assert_frame_equal(pairwise_associations(X, level_frame=as_categories),
                                  pairwise_associations(X, level_frame=as_text))
    groups = {c: "FIT" for c in X.columns}
    pd.testing.assert_frame_equal(
        lift_table(X, y, groups, min_leads=20, n_bins=4, levels=(as_categories, meta)),
        lift_table(X, y, groups, min_leads=20, n_bins=4))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from([0.0, -0.0, 1.5, -2.0, 3.0, float("inf"), -float("inf"), 7.25]),
                min_size=1, max_size=200),
       st.lists(st.floats(allow_nan=False, width=64), max_size=50))
def test_sorted_ranks_are_rankdata(ties, spread):
    values = np.array(ties + spread, dtype=float)
    np.testing.assert_array_equal(_sorted_ranks(values), stats.rankdata(values))
    np.testing.assert_array_equal(_sorted_ranks(np.array([np.nan, 1.0])),
                                  stats.rankdata(np.array([np.nan, 1.0])))
