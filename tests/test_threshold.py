"""SDR-ready threshold, grade cut-offs and the FIT x PAIN quadrant against naive references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.model.threshold import (
    choose_threshold,
    fit_pain_quadrant,
    grade_cutoffs,
    no_signal_threshold,
    tradeoff_table,
)


def _naive_rows(total, y):
    """(score, leads at or above, close rate) for every distinct score, lowest first."""
    rows = []
    for s in sorted(set(total.tolist())):
        above = [yi for ti, yi in zip(total, y, strict=True) if ti >= s]
        rows.append((s, len(above), sum(above) / len(above)))
    return rows


scores = st.lists(st.tuples(st.integers(-30, 60), st.integers(0, 1)), min_size=1, max_size=120)


@settings(max_examples=80, deadline=None)
@given(data=scores)
def test_tradeoff_table_matches_naive_loop(data):
    total = np.asarray([t for t, _ in data])
    y = np.asarray([v for _, v in data])
    table = tradeoff_table(total, y, weeks=4.0)
    naive = _naive_rows(total, y)
    assert table["points"].tolist() == [s for s, _, _ in naive]
    assert table["leads_at_or_above"].tolist() == [n for _, n, _ in naive]
    np.testing.assert_allclose(table["close_rate"], [r for _, _, r in naive])
    np.testing.assert_allclose(table["per_week"], [n / 4.0 for _, n, _ in naive])


def _naive_choice(total, y, band, min_lift):
    """The threshold rule spelled out: (threshold, method)."""
    rows = _naive_rows(total, y)
    n, base = len(total), sum(y) / len(y)
    half = [(s, k, r) for s, k, r in rows if k <= n / 2]
    inside = [s for s, _, r in half if band[0] <= r <= band[1]]
    if band[0] > base and inside:
        return inside[0], "target_rate"
    required = min(min_lift * base, (1 + base) / 2)
    good = [s for s, _, r in half if r >= required]
    if good:
        return good[0], "min_lift"
    return rows[-1][0], "top_score"


@settings(max_examples=120, deadline=None)
@given(data=scores, low=st.floats(0, 1), width=st.floats(0, 0.5),
       min_lift=st.sampled_from([1.5, 2.0, 3.0]))
def test_threshold_matches_the_rule_spelled_out(data, low, width, min_lift):
    total = np.asarray([t for t, _ in data])
    y = np.asarray([v for _, v in data])
    fit = total // 2
    band = (low, min(1.0, low + width))
    choice = choose_threshold(total, fit, y, target_rate=band, min_lift=min_lift)
    assert (choice.threshold, choice.method) == _naive_choice(total, y, band, min_lift)
    if choice.method == "target_rate":
        assert band[0] <= choice.expected_close_rate <= band[1]
    else:
        assert choice.note  # the band was not used: the note says why
    if choice.method != "top_score":
        assert choice.sdr_ready_share <= 0.5
    ready = total >= choice.threshold
    assert choice.sdr_ready_share == pytest.approx(ready.mean())
    assert choice.expected_close_rate == pytest.approx(y[ready].mean())
    assert choice.fit_only_share == pytest.approx(np.mean(fit >= choice.threshold))
    assert choice.sdr_ready_per_week is None


@pytest.mark.parametrize("base_rate", [0.105, 0.11, 0.40, 0.63])
def test_default_band_at_high_base_rates_never_selects_everyone(base_rate):
    """The default band (10-15%) contains or lies below these base rates: the threshold
    falls back to min_lift x the base rate (at most halfway to 100%), on at most half."""
    rng = np.random.default_rng(3)
    n = 20_000
    total = rng.integers(0, 60, n)
    logit = np.log(base_rate / (1 - base_rate)) + (total - 30) / 8
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    choice = choose_threshold(total, total, y, target_rate=(0.10, 0.15))
    base = y.mean()
    assert choice.method == "min_lift"
    assert choice.sdr_ready_share <= 0.5
    required = min(2 * base, (1 + base) / 2)
    assert choice.expected_close_rate >= required
    assert "does not lie above the base rate" in choice.note
    # the lowest such score: one point lower closes below the requirement or selects > half
    lower = total >= choice.threshold - 1
    assert y[lower].mean() < required or lower.mean() > 0.5


def test_band_above_the_base_rate_is_used():
    rng = np.random.default_rng(4)
    total = rng.integers(0, 60, 10_000)
    y = (rng.random(10_000) < 0.02 + total / 200).astype(int)  # base rate ~17%
    choice = choose_threshold(total, total, y, target_rate=(0.30, 0.40))
    assert choice.method == "target_rate"
    assert 0.30 <= choice.expected_close_rate <= 0.40


def test_no_signal_threshold_makes_no_lead_sdr_ready():
    total = np.array([0, 3, 7, 7])
    choice = no_signal_threshold(total, np.array([0, 1, 0, 1]))
    assert choice.threshold == 8 and choice.method == "no_signal"
    assert not (total >= choice.threshold).any() and choice.sdr_ready_share == 0.0


@settings(max_examples=60, deadline=None)
@given(data=scores, capacity=st.floats(0.1, 40))
def test_capacity_mode_is_the_lowest_score_within_capacity(data, capacity):
    total = np.asarray([t for t, _ in data])
    y = np.asarray([v for _, v in data])
    weeks = 3.0
    choice = choose_threshold(total, total, y, target_rate=(0.1, 0.15),
                              capacity_per_week=capacity, weeks=weeks)
    naive = _naive_rows(total, y)
    ok = [s for s, n, _ in naive if n / weeks <= capacity]
    assert choice.method == "capacity"
    assert choice.threshold == (ok[0] if ok else naive[-1][0])
    assert choice.sdr_ready_per_week == pytest.approx(np.sum(total >= choice.threshold) / weeks)


def test_capacity_needs_dates():
    total, y = np.arange(10), np.arange(10) % 2
    with pytest.raises(ValueError, match="capacity_per_week needs lead creation dates"):
        choose_threshold(total, total, y, target_rate=(0.1, 0.2), capacity_per_week=5, weeks=None)


def test_fallback_takes_top_score_when_nothing_closes_enough():
    total = np.array([0, 10, 20, 30])
    y = np.array([1, 0, 0, 0])  # higher scores close worse
    choice = choose_threshold(total, total, y, target_rate=(0.6, 0.9))
    assert choice.method == "top_score" and choice.threshold == 30


@settings(max_examples=80, deadline=None)
@given(total=st.lists(st.integers(-20, 120), min_size=1, max_size=200),
       shares=st.sampled_from([{"A": 0.1, "B": 0.2, "C": 0.3, "D": 0.4},
                               {"hot": 0.2, "warm": 0.3, "cold": 0.5}, {"A": 0.5, "B": 0.5}]))
def test_grade_cutoffs(total, shares):
    array = np.asarray(total)
    cuts = grade_cutoffs(array, shares)
    names = [c["grade"] for c in cuts]
    mins = [c["min_points"] for c in cuts]
    assert names == [g for g in shares if g in names]  # best grade first, order kept
    assert mins[-1] == array.min()  # every lead gets a grade
    assert all(b < a for a, b in zip(mins, mins[1:], strict=False))  # strictly decreasing
    # naive reference: the cut-off whose share of leads at or above it is closest to the
    # cumulative share (ties: the higher); a cut not strictly below the better one is merged
    candidates = sorted(set(total)) + [max(total) + 1]
    naive, cumulative = [], 0.0
    for name in shares:
        cumulative += shares[name]
        if name == list(shares)[-1]:
            cut = min(total)
        else:
            scored = [(round(abs(sum(t >= c for t in total) / len(total) - cumulative), 12), -c)
                      for c in candidates]
            cut = -min(scored)[1]
        if not naive or cut < naive[-1]["min_points"]:
            naive.append({"grade": name, "min_points": cut})
    assert cuts == naive


def test_grade_cutoffs_put_a_block_of_tied_leads_in_the_grade_it_fits():
    # half the leads have 0 points: they make the bottom grade, not the top one
    total = np.concatenate([np.zeros(500, dtype=int), np.arange(1, 501)])
    cuts = grade_cutoffs(total, {"A": 0.1, "B": 0.2, "C": 0.3, "D": 0.4})
    assert [c["grade"] for c in cuts] == ["A", "B", "C", "D"]
    assert cuts[-1]["min_points"] == 0 and cuts[-2]["min_points"] == 1
    grade_of_zero = [c["grade"] for c in cuts if c["min_points"] <= 0][0]
    assert grade_of_zero == "D"
    # every lead equal: one grade holds them all, the one whose share is nearest 100 %
    same = grade_cutoffs(np.full(50, 7), {"A": 0.1, "B": 0.2, "C": 0.3, "D": 0.4})
    assert [c["grade"] for c in same if c["min_points"] <= 7] == ["C"]


def test_grade_cutoffs_simple():
    total = np.arange(100)
    cuts = grade_cutoffs(total, {"A": 0.1, "B": 0.2, "C": 0.3, "D": 0.4})
    assert cuts == [{"grade": "A", "min_points": 90}, {"grade": "B", "min_points": 70},
                    {"grade": "C", "min_points": 40}, {"grade": "D", "min_points": 0}]


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-10, 30), st.integers(0, 40), st.integers(0, 1),
                               st.booleans()), min_size=1, max_size=150))
def test_quadrant_counts_add_up(rows):
    fit, pain, y, ready = (np.asarray(c) for c in zip(*rows, strict=True))
    quad = fit_pain_quadrant(fit, pain, y, ready)
    table = quad.table
    assert len(table) == 4
    assert table["leads"].sum() == len(rows)
    assert table["conversions"].sum() == y.sum()
    assert table["sdr_ready"].sum() == ready.sum()
    bad_low = (fit < quad.fit_cut) & (pain < quad.pain_cut)
    cell = table[(table["fit"] == "bad FIT") & (table["pain"] == "low PAIN")].iloc[0]
    assert cell["leads"] == bad_low.sum()
    share = (bad_low & ready).sum() / ready.sum() if ready.any() else 0.0
    assert quad.bad_fit_low_pain_sdr_share == pytest.approx(share)
    assert (quad.warning is not None) == (share > 0.05)


def test_quadrant_warning_text():
    fit = np.array([0] * 10 + [10] * 90)
    pain = np.array([0] * 10 + [10] * 90)
    y = np.zeros(100, dtype=int)
    quad = fit_pain_quadrant(fit, pain, y, np.ones(100, dtype=bool))
    assert quad.bad_fit_low_pain_sdr_share == pytest.approx(0.10)
    assert quad.warning is not None
    assert "10.0% of SDR-ready leads are bad FIT + low PAIN" in quad.warning
    clean = fit_pain_quadrant(fit, pain, y, np.arange(100) >= 10)
    assert clean.bad_fit_low_pain_sdr_share == 0.0 and clean.warning is None
