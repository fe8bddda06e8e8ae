"""Lift table: every statistic against a slow reference written here, plus edge cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pipeline.analysis.levels import snap_edges
from pipeline.analysis.lift import LIFT_COLUMNS, lift_table
from pipeline.analysis.lift_levels import _canonical_level, level_frame
from pipeline.analysis.lift_stats import (
    benjamini_hochberg,
    beta_prior,
    holm,
    independence_test,
    shrunk_rates,
    wilson_interval,
)
from pipeline.model.reference import factor_points
from pipeline.model.rules import FactorRules
from pipeline.reports.plots_lift import (
    MAX_CHART_LEVELS,
    chart_file_name,
    lift_chart,
    save_lift_charts,
)

Z95 = 1.959963984540054


def make_leads(seed: int = 0, n: int = 600) -> tuple[pd.DataFrame, pd.Series, dict[str, str]]:
    """Synthetic leads with known effects and every edge case in one frame."""
    rng = np.random.default_rng(seed)
    source = rng.choice(
        ["web", "event", "partner", "ads", "tiny1", "tiny2"],
        size=n,
        p=[0.4, 0.3, 0.15, 0.11, 0.02, 0.02],
    )
    visits = rng.poisson(3.0, size=n).astype(float)
    logit = -1.2 + np.select([source == "event", source == "partner"], [1.0, 2.0], 0.0)
    logit = logit + 0.25 * (visits - 3)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    temperature = np.where(rng.random(n) < 0.5, "mid", None).astype(object)
    temperature[(y == 1) & (rng.random(n) < 0.3)] = "hot"  # always converts
    temperature[(y == 0) & (rng.random(n) < 0.3)] = "cold"  # never converts
    spend = rng.gamma(2.0, 50.0, size=n)
    spend[rng.random(n) < 0.1] = np.nan
    X = pd.DataFrame(
        {
            "source": pd.Series(source, dtype=object),
            "visits": visits,
            "temperature": pd.Series(temperature, dtype=object),
            "spend": spend,
            "constant": "yes",
            "only_missing": pd.Series([None] * n, dtype=object),
            "binary": rng.integers(0, 2, size=n).astype(float),
            "numeric_missing": np.full(n, np.nan),
        }
    )
    groups = {c: ("PAIN" if c in ("visits", "spend") else "FIT") for c in X.columns}
    return X, pd.Series(y, name="converted"), groups


# ------------------------------------------------------------------ references


def naive_edges(values: list[float], n_bins: int) -> list[float]:
    """Quantile edges by hand: the sorted value at position floor(q * (n - 1)) (the "lower"
    quantile, the points table's rule since one module decides both), unique, < max."""
    xs = sorted(v for v in values if not math.isnan(v))
    distinct = sorted(set(xs))
    if len(distinct) <= n_bins:
        return distinct[:-1]
    edges: list[float] = []
    for j in range(1, n_bins):
        edge = xs[math.floor(j * (len(xs) - 1) / n_bins + 1e-9)]
        if edge not in edges and edge < distinct[-1]:
            edges.append(edge)
    return edges


def naive_wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 / (1 + Z95**2 / n) * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n))
    return max(centre - half, 0.0), min(centre + half, 1.0)


def naive_bh(p: list[float]) -> list[float]:
    m = len(p)
    out = []
    for i in range(m):
        # adjusted p_i = min over j with p_j >= p_i of p_j * m / rank_j
        best = 1.0
        for j in range(m):
            if p[j] >= p[i]:
                rank = sum(1 for q in p if q <= p[j])
                best = min(best, p[j] * m / rank)
        out.append(best)
    return out


def naive_p_value(a: int, b: int, c: int, d: int) -> float:
    table = np.array([[a, b], [c, d]])
    if (table.sum(axis=0) == 0).any() or (table.sum(axis=1) == 0).any():
        return 1.0
    expected = stats.contingency.expected_freq(table)
    if (expected < 5).any():
        return float(stats.fisher_exact(table).pvalue)
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def naive_lift_rows(X: pd.DataFrame, y: pd.Series, levels: pd.DataFrame) -> dict:
    """Counts per (attribute, level) by looping over rows."""
    counts: dict[tuple[str, str], list[int]] = {}
    for i in range(len(X)):
        for column in X.columns:
            key = (column, levels[column].iloc[i])
            cell = counts.setdefault(key, [0, 0])
            cell[0] += 1
            cell[1] += int(y.iloc[i])
    return counts


# ---------------------------------------------------------------------- levels


def test_level_frame_categorical_pools_rare_and_labels_missing():
    X, _, _ = make_leads()
    frame, meta = level_frame(X, min_leads=30)
    raw = X["source"]
    counts = raw.value_counts()
    for value, label in zip(raw, frame["source"], strict=True):
        expected = value if counts[value] >= 30 else "(other)"
        assert label == expected
    assert meta["source"]["kind"] == "categorical"
    assert meta["source"]["levels"][-1] == "(other)"
    ordinary = meta["source"]["levels"][:-1]
    leads = [int((frame["source"] == lv).sum()) for lv in ordinary]
    assert leads == sorted(leads, reverse=True)
    assert set(frame.loc[X["temperature"].isna(), "temperature"]) == {"(missing)"}
    assert meta["temperature"]["levels"][-1] == "(missing)"
    assert (frame["only_missing"] == "(missing)").all()
    assert meta["constant"]["levels"] == ["yes"]


@pytest.mark.parametrize("n_bins", [2, 3, 5, 10])
def test_numeric_bins_match_reference_and_points_contract(n_bins):
    X, _, _ = make_leads(seed=3)
    frame, meta = level_frame(X, n_bins=n_bins)
    for column in ("visits", "spend", "binary"):
        edges = meta[column]["edges"]
        # the reference quantile edges, snapped to human thresholds
        assert edges == snap_edges(X[column].to_numpy(float), naive_edges(list(X[column]), n_bins))
        rules = FactorRules(
            column, "FIT", "numeric", edges=edges, bin_points=[0] * (len(edges) + 1)
        )
        assert meta[column]["bins"] == rules.bin_labels()
        for value, label in zip(X[column], frame[column], strict=True):
            if math.isnan(value):
                assert label == "(missing)"
            else:  # the label is the points table's bin label for that value
                assert factor_points(rules, value, [])[1] == label
        # no empty bin
        assert all((frame[column] == lv).any() for lv in meta[column]["levels"])


def test_numeric_only_missing_and_distinct_values():
    X, _, _ = make_leads()
    frame, meta = level_frame(X)
    assert meta["numeric_missing"] == {
        "kind": "numeric",
        "edges": [],
        "levels": ["(missing)"],
        "bins": [],
        "special": [],
    }
    assert meta["binary"]["edges"] == [0.0]
    assert meta["binary"]["levels"] == ["<= 0", "> 0"]  # one bin per value, labelled as bins
    assert set(frame["binary"]) == {"<= 0", "> 0"}


def test_level_frame_rejects_reserved_values_and_does_not_mutate():
    X, _, _ = make_leads()
    before = X.copy()
    level_frame(X)
    pd.testing.assert_frame_equal(X, before)
    bad = X.assign(source="(other)")
    with pytest.raises(ValueError, match=r"column 'source'.*reserved"):
        level_frame(bad)
    with pytest.raises(ValueError, match="min_leads must be >= 1, got 0"):
        level_frame(X, min_leads=0)


def naive_level_labels(values: list, min_leads: int) -> list[str]:
    """Level labels row by row: each value's text, rare ones pooled, missing labelled."""
    text = [_canonical_level(v) for v in values]
    counts: dict[str, int] = {}
    for t in text:
        if t is not None:
            counts[t] = counts.get(t, 0) + 1
    return [
        "(missing)" if t is None else "(other)" if counts[t] < min_leads else t for t in text
    ]


def test_level_text_is_per_value_even_when_mixed_kinds_compare_equal():
    # 1 == 1.0 == True and 0 == False in Python: the text is still worked out per value
    values = [1, True, 1.0, "1", 0, False, "", None, np.nan, np.int64(1), np.True_] * 3
    X = pd.DataFrame({"mixed": pd.Series(values, dtype=object)})
    frame, meta = level_frame(X, min_leads=6)
    assert frame["mixed"].tolist() == naive_level_labels(values, 6)
    assert meta["mixed"]["levels"] == ["1", "true", "(other)", "(missing)"]


@pytest.mark.parametrize("dtype", ["category", "str"])
def test_categorical_and_text_columns_give_the_object_levels(dtype):
    X, y, groups = make_leads(seed=5)
    other = X.assign(source=X["source"].astype(dtype), temperature=X["temperature"].astype(dtype))
    frame, meta = level_frame(X)
    frame_other, meta_other = level_frame(other)
    pd.testing.assert_frame_equal(frame, frame_other)
    assert meta == meta_other
    assert all(dtype == np.dtype(object) for dtype in frame.dtypes)
    pd.testing.assert_frame_equal(lift_table(X, y, groups), lift_table(other, y, groups))


def test_lift_table_from_levels_equals_lift_table_from_x():
    X, y, groups = make_leads(seed=6)
    levels = level_frame(X, min_leads=25, n_bins=4)
    direct = lift_table(X, y, groups, min_leads=25, n_bins=4)
    pd.testing.assert_frame_equal(direct, lift_table(X, y, groups, levels=levels))
    frame, meta = levels
    broken = {**meta, "source": {**meta["source"], "levels": ["web", "web", "event"]}}
    with pytest.raises(ValueError, match="levels must be unique"):
        lift_table(X, y, groups, levels=(frame, broken))
    short = {**meta, "source": {**meta["source"], "levels": ["web", "event"]}}
    with pytest.raises(ValueError, match="levels missing from its metadata"):
        lift_table(X, y, groups, levels=(frame, short))


# ---------------------------------------------------------------- statistics


def test_wilson_known_value():
    low, high = wilson_interval(np.array([8]), np.array([10]))
    assert low[0] == pytest.approx(0.4902, abs=1e-4)
    assert high[0] == pytest.approx(0.9433, abs=1e-4)
    low, high = wilson_interval(np.array([0, 5]), np.array([5, 5]))
    assert low[0] == 0.0 and high[1] == 1.0


def test_benjamini_hochberg_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 -> *4/rank = 0.02, 0.02, 0.04, 0.04 (already monotone)
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    # step-up: 0.04*3/2 = 0.06 is lowered to the next one's 0.05*3/3 = 0.05
    assert benjamini_hochberg([0.01, 0.04, 0.05]) == pytest.approx([0.03, 0.05, 0.05])
    assert benjamini_hochberg([0.9, 0.8]) == pytest.approx([0.9, 0.9])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12))
def test_benjamini_hochberg_matches_naive(p):
    got = benjamini_hochberg(p)
    assert got == pytest.approx(naive_bh(p))
    assert all(g >= q - 1e-12 for g, q in zip(got, p, strict=True))


def test_beta_prior_solves_the_moment_equation():
    k = np.array([30, 12, 50, 3])
    n = np.array([100, 80, 120, 3])
    a, b, how = beta_prior(k, n, overall_rate=k.sum() / n.sum())
    assert how == "moments"
    mu = k.sum() / n.sum()
    assert a / (a + b) == pytest.approx(mu)
    rho = 1 / (a + b + 1)
    # between-level chi-square = (L - 1) + rho * (N - sum n^2 / N - (L - 1)), by loops
    lhs = sum(ni * (ki / ni - mu) ** 2 for ki, ni in zip(k, n, strict=True)) / (mu * (1 - mu))
    big_n = sum(n)
    rhs = 3 + rho * (big_n - sum(ni * ni for ni in n) / big_n - 3)
    assert lhs == pytest.approx(rhs)


def test_beta_prior_recovers_a_known_prior():
    rng = np.random.default_rng(7)
    n = rng.integers(50, 400, size=400)
    p = rng.beta(4.0, 12.0, size=400)  # strength 16, mean 0.25
    k = rng.binomial(n, p)
    a, b, how = beta_prior(k, n, overall_rate=k.sum() / n.sum())
    assert how == "moments"
    assert a / (a + b) == pytest.approx(0.25, abs=0.02)
    assert a + b == pytest.approx(16.0, rel=0.25)


@pytest.mark.parametrize(
    ("k", "n"),
    [
        ([5], [10]),  # single level
        ([0, 0], [10, 20]),  # nobody converts
        ([1, 0], [1, 1]),  # too few leads to estimate
    ],
)
def test_beta_prior_falls_back_to_weak_prior(k, n):
    a, b, how = beta_prior(np.array(k), np.array(n), overall_rate=0.3)
    assert how == "weak"
    assert a + b == pytest.approx(2.0)
    assert a / (a + b) == pytest.approx(0.3)


def test_beta_prior_pools_levels_that_differ_no_more_than_chance():
    # identical rates: no spread beyond sampling noise, so an infinitely strong prior
    a, b, how = beta_prior(np.array([10, 10]), np.array([100, 100]), overall_rate=0.1)
    assert (a, b, how) == (math.inf, math.inf, "pooled")
    got = shrunk_rates(np.array([10, 10, 0]), np.array([100, 100, 0]), a, b, prior_mean=0.1)
    assert got.tolist() == [0.1, 0.1, 0.1]


def _best_shrunk_pp(k: np.ndarray, n: np.ndarray) -> float:
    """Largest |shrunk rate - pooled rate| of a factor's levels, in percentage points."""
    mu = k.sum() / n.sum()
    a, b, _ = beta_prior(k, n, overall_rate=mu)
    return float(100 * np.abs(shrunk_rates(k, n, a, b, prior_mean=mu) - mu).max())


def test_shrinkage_flattens_a_null_factor():
    # 50 levels of ~100 leads with the same true rate: the raw best level is ~10 pp off by
    # chance alone; shrunk, it is ~0 (the old weak prior kept almost all of it)
    best, raw = [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        n = rng.poisson(100, size=50) + 1
        k = rng.binomial(n, rng.uniform(0.1, 0.4))
        best.append(_best_shrunk_pp(k, n))
        raw.append(float(100 * np.abs(k / n - k.sum() / n.sum()).max()))
    assert min(raw) > 5
    assert sum(b == 0 for b in best) >= 8  # about half the time pooled exactly
    assert np.median(best) < 0.5
    assert sorted(best)[17] < 3.5  # 18 of 20 well below the 5 pp of min_lift_pp
    assert max(best) < 5  # a chance excess of spread: the significance test drops it


def test_shrinkage_keeps_a_real_spread():
    # true rates 5 % and 25 %, 500 leads per level: shrinking moves no level by 1 pp
    for seed in range(20):
        rng = np.random.default_rng(seed)
        n = np.full(6, 500)
        k = rng.binomial(n, np.array([0.05, 0.25] * 3))
        mu = k.sum() / n.sum()
        a, b, how = beta_prior(k, n, overall_rate=mu)
        assert how == "moments"
        shrunk = shrunk_rates(k, n, a, b, prior_mean=mu)
        assert np.abs(shrunk - k / n).max() < 0.01


def naive_holm(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12))
def test_holm_matches_naive(p):
    got = holm(p)
    assert got == pytest.approx(naive_holm(p))
    assert all(g >= q - 1e-12 for g, q in zip(got, p, strict=True))
    assert (got >= benjamini_hochberg(p) - 1e-12).all()  # Holm is the stricter of the two


def test_independence_test_is_pearsons_chi_square_on_dense_tables():
    k = np.array([30, 12, 50, 20])
    n = np.array([100, 80, 120, 90])
    statistic, p, how = independence_test(k, n)
    table = np.column_stack([k, n - k])
    ref = stats.chi2_contingency(table, correction=False)
    assert how == "chi2"
    assert statistic == pytest.approx(ref.statistic)
    assert p == pytest.approx(ref.pvalue)


def test_independence_test_simulates_sparse_tables():
    # a level of 5 leads at a 2 % base rate: the chi-square tail would call one win there
    # significant; the simulated p-value does not
    n = np.array([3000, 2000, 5])
    k = np.array([60, 40, 1])
    _, asymptotic = stats.chi2_contingency(np.column_stack([k, n - k]), correction=False)[:2]
    statistic, p, how = independence_test(k, n, draws=4999, seed=1)
    assert how == "simulated"
    assert asymptotic < 0.05 < p
    assert independence_test(k, n, draws=4999, seed=1) == (statistic, p, how)  # seeded
    # a real association in a sparse table is still found
    _, p_real, how = independence_test(np.array([20, 100, 3]), np.array([3000, 2000, 3]),
                                       draws=4999)
    assert how == "simulated" and p_real == pytest.approx(1 / 5000)


@pytest.mark.parametrize(("k", "n"), [([5], [10]), ([0, 0], [10, 20]), ([10, 20], [10, 20])])
def test_independence_test_without_anything_to_test(k, n):
    assert independence_test(np.array(k), np.array(n)) == (0.0, 1.0, "none")


def test_shrinkage_puts_three_of_three_below_500_leads_at_60_percent():
    # levels spread around 35 % as attributes usually are; one tiny level wins 3 of 3
    rows = [
        ("small", 3, 3),
        ("big", 500, 300),
        ("c", 400, 120),
        ("d", 300, 105),
        ("e", 300, 90),
        ("f", 200, 80),
        ("g", 200, 70),
        ("h", 250, 75),
    ]
    level, y = [], []
    for name, n, k in rows:
        level += [name] * n
        y += [1] * k + [0] * (n - k)
    X = pd.DataFrame({"a": pd.Series(level, dtype=object)})
    table = lift_table(X, pd.Series(y), {"a": "FIT"}, min_leads=1)
    rates = table.set_index("level")
    assert rates.loc["small", "conversion_rate"] == 1.0
    assert rates.loc["small", "shrunk_rate"] < rates.loc["big", "shrunk_rate"]
    assert rates.loc["big", "shrunk_rate"] == pytest.approx(0.6, abs=0.01)


# ---------------------------------------------------------------- lift table


def test_lift_table_matches_naive_reference():
    X, y, groups = make_leads(seed=1, n=500)
    frame, meta = level_frame(X, min_leads=30, n_bins=4)
    table = lift_table(X, y, groups, min_leads=30, n_bins=4)
    assert list(table.columns) == LIFT_COLUMNS
    counts = naive_lift_rows(X, y, frame)
    total_n, total_k = len(y), int(y.sum())
    overall = total_k / total_n
    assert len(table) == len(counts)
    naive_p = []
    for row in table.itertuples(index=False):
        n, k = counts[(row.attribute, row.level)]
        assert (row.leads, row.conversions) == (n, k)
        assert row.group == groups[row.attribute]
        assert row.kind == meta[row.attribute]["kind"]
        assert row.conversion_rate == pytest.approx(k / n)
        lo, hi = naive_wilson(k, n)
        assert (row.ci_low, row.ci_high) == (pytest.approx(lo), pytest.approx(hi))
        assert row.lift == pytest.approx((k / n) / overall)
        assert row.diff_pp == pytest.approx(100 * (k / n - overall))
        assert row.shrunk_diff_pp == pytest.approx(100 * (row.shrunk_rate - overall))
        assert row.seed_points == int(math.floor(abs(row.diff_pp) + 0.5)) * (
            1 if row.diff_pp >= 0 else -1
        )
        p = naive_p_value(k, n - k, total_k - k, total_n - n - (total_k - k))
        assert row.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)
        naive_p.append(p)
    assert table["p_adjusted"].to_numpy() == pytest.approx(naive_bh(naive_p), rel=1e-9)
    # shrunk rate = (a + k) / (a + b + n) with the attribute's prior
    for attribute, rows in table.groupby("attribute", sort=False):
        a, b, _ = beta_prior(
            rows["conversions"].to_numpy(), rows["leads"].to_numpy(), overall_rate=overall
        )
        if math.isinf(a):  # no spread beyond chance: every level at the overall rate
            expected = pd.Series(overall, index=rows.index)
        else:
            expected = (a + rows["conversions"]) / (a + b + rows["leads"])
        assert rows["shrunk_rate"].to_numpy() == pytest.approx(expected.to_numpy()), attribute


def test_lift_table_edge_cases_and_order():
    X, y, groups = make_leads(seed=2)
    table = lift_table(X, y, groups)
    assert list(dict.fromkeys(table["attribute"])) == list(X.columns)
    temp = table[table["attribute"] == "temperature"].set_index("level")
    assert temp.loc["hot", "conversion_rate"] == 1.0 and temp.loc["hot", "ci_high"] == 1.0
    assert temp.loc["cold", "conversion_rate"] == 0.0 and temp.loc["cold", "ci_low"] == 0.0
    overall = y.mean()
    assert overall < temp.loc["hot", "shrunk_rate"] < 1.0
    assert 0.0 < temp.loc["cold", "shrunk_rate"] < overall
    assert list(temp.index)[-1] == "(missing)"
    for column, level in [
        ("constant", "yes"),
        ("only_missing", "(missing)"),
        ("numeric_missing", "(missing)"),
    ]:
        rows = table[table["attribute"] == column]
        assert list(rows["level"]) == [level]
        row = rows.iloc[0]
        assert row.leads == len(X) and row.p_value == 1.0
        assert row.diff_pp == pytest.approx(0.0) and row.seed_points == 0
        assert row.shrunk_rate == pytest.approx(overall)
    spend = table[table["attribute"] == "spend"]
    assert list(spend["level"])[-1] == "(missing)"
    assert np.isnan(spend["bin_lower"].iloc[-1])
    assert spend["bin_lower"].iloc[0] == -np.inf and spend["bin_upper"].iloc[-2] == np.inf
    assert (
        spend["bin_upper"].iloc[:-2].to_numpy() == spend["bin_lower"].iloc[1:-1].to_numpy()
    ).all()


def test_seed_points_follow_the_conversion_rate_method():
    # 40 % in level "a" against an overall 15 %: 25 points
    level = ["a"] * 100 + ["b"] * 300
    y = [1] * 40 + [0] * 60 + [1] * 20 + [0] * 280
    table = lift_table(
        pd.DataFrame({"f": pd.Series(level, dtype=object)}), pd.Series(y), {"f": "FIT"}
    )
    row = table.set_index("level").loc["a"]
    assert row.conversion_rate == pytest.approx(0.40)
    assert row.seed_points == 25
    assert row.lift == pytest.approx(0.40 / 0.15)


def test_lift_table_single_class_target_is_defined():
    X, _, groups = make_leads(n=100)
    table = lift_table(X, pd.Series(np.zeros(100, dtype=int)), groups)
    assert (table["conversion_rate"] == 0).all()
    assert (table["p_value"] == 1.0).all()
    assert table["lift"].isna().all()


def test_lift_table_validates_inputs():
    X, y, groups = make_leads(n=50)
    with pytest.raises(ValueError, match=r"no FIT/PAIN entry for columns \['spend'\]"):
        lift_table(X, y, {k: v for k, v in groups.items() if k != "spend"})
    with pytest.raises(ValueError, match=r"one of \('FIT', 'PAIN'\).*'visits': 'BEHAVIOUR'"):
        lift_table(X, y, {**groups, "visits": "BEHAVIOUR"})
    with pytest.raises(ValueError, match="only 0 and 1, got e.g. 2.0"):
        lift_table(X, y.replace(1, 2), groups)
    with pytest.raises(ValueError, match="same index"):
        lift_table(X, y.reset_index(drop=True).set_axis(range(1, 51)), groups)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(20, 200),
    min_leads=st.integers(1, 40),
)
@pytest.mark.filterwarnings("ignore::pipeline.analysis.levels.SentinelWarning")
def test_lift_invariants(seed, n, min_leads):
    X, y, groups = make_leads(seed=seed, n=n)
    table = lift_table(X, y, groups, min_leads=min_leads)
    overall = y.mean()
    for _, rows in table.groupby("attribute", sort=False):
        assert rows["leads"].sum() == n
        assert rows["conversions"].sum() == y.sum()
        assert rows["level"].is_unique
    rate = table["conversion_rate"]
    assert (table["ci_low"] <= rate + 1e-12).all() and (rate <= table["ci_high"] + 1e-12).all()
    # the posterior mean lies between the level's own rate and the prior mean (overall)
    lo = np.minimum(rate, overall) - 1e-12
    hi = np.maximum(rate, overall) + 1e-12
    assert ((table["shrunk_rate"] >= lo) & (table["shrunk_rate"] <= hi)).all()
    assert (table["p_adjusted"] >= table["p_value"] - 1e-12).all()


# ------------------------------------------------------------------------ plots


def test_lift_chart_draws_rates_intervals_and_overall(tmp_path):
    X, y, groups = make_leads()
    table = lift_table(X, y, groups)
    rows = table[table["attribute"] == "source"]
    fig = lift_chart(rows, float(y.mean()))
    ax = fig.axes[0]
    assert ax.get_title() == "source"
    assert ax.get_xlabel() and ax.get_ylabel() == "level"
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx(list(100 * rows["conversion_rate"]))
    vertical = [line for line in ax.get_lines() if line.get_xdata()[0] == line.get_xdata()[1]]
    assert any(line.get_xdata()[0] == pytest.approx(100 * y.mean()) for line in vertical)
    with pytest.raises(ValueError, match="one attribute at a time, got 2"):
        lift_chart(table[table["attribute"].isin(["source", "visits"])], 0.3)


def test_lift_chart_of_many_levels_shows_those_with_the_most_leads():
    n_levels = MAX_CHART_LEVELS + 12
    rows = pd.DataFrame({
        "attribute": "city", "level": [f"city {k}" for k in range(n_levels)],
        "leads": [(k * 37) % 101 + 1 for k in range(n_levels)],
        "conversion_rate": np.linspace(0.05, 0.6, n_levels)})
    rows["ci_low"], rows["ci_high"] = rows["conversion_rate"] - 0.02, rows["conversion_rate"] + 0.02
    ax = lift_chart(rows, 0.3).axes[0]
    shown = rows.nlargest(MAX_CHART_LEVELS, "leads", keep="first").sort_index()
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx(list(100 * shown["conversion_rate"]))
    assert [t.get_text().split(" (n=")[0] for t in ax.get_yticklabels()] == list(shown["level"])
    assert ax.get_title() == (
        f"city ({MAX_CHART_LEVELS} of {n_levels} levels: those with the most leads)")


def test_save_lift_charts_stays_inside_out_dir(tmp_path):
    X, y, _ = make_leads(n=200)
    X = X[["source", "visits"]].set_axis(["../../etc", "a/b"], axis=1)
    table = lift_table(X, y, {"../../etc": "FIT", "a/b": "PAIN"})
    out = tmp_path / "charts"
    paths = save_lift_charts(table, float(y.mean()), out)
    assert len(paths) == 2
    for path in paths:
        assert path.resolve().parent == out.resolve()
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    assert chart_file_name("a/b") != chart_file_name("a-b")  # the hash keeps them apart
    assert "/" not in chart_file_name("../../etc") and ".." not in chart_file_name("../../etc")
