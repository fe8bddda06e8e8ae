"""Points people trust: human thresholds (levels.py), adjacent bins with equal points merged,
rules worth 0 left out of the CRM sheet, and the trust figures (trust_rules.py)."""

from __future__ import annotations

import csv
import io
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import invoke
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import exports as ex
from pipeline.analysis.levels import (
    MAX_DIGITS,
    SentinelWarning,
    duration_unit,
    edge_candidates,
    numeric_cut,
    quantile_edges,
    significant_digits,
    snap_edges,
)
from pipeline.model.reference import factor_points, score_record
from pipeline.model.rules import FactorRules, PointsRules, merge_equal_bins
from pipeline.model.train import train
from pipeline.reports.trust_rules import (
    crm_rule_count,
    crm_zero_count,
    direction_changes,
    largest_points_under,
    longest_threshold,
    trust_table,
)

# ------------------------------------------------------------------------------ helpers


def sheet_rows(text: str) -> list[dict]:
    """The rule rows of a crm-csv sheet; its last line must be the "score 0" comment."""
    lines = text.splitlines()
    assert lines[-1].startswith("# levels not listed score 0")
    return list(csv.DictReader(io.StringIO("\n".join(lines[:-1]) + "\n")))


def cell_text(row: dict) -> str:
    """A value cell as the builder reads it: the ``'`` the sheet added (noted) dropped."""
    added = "leading ' was added" in row["notes"] and row["value"].startswith("'")
    return row["value"][1:] if added else row["value"]


def cell_list(row: dict) -> list[str]:
    cell = cell_text(row)
    return json.loads(cell) if cell.startswith("[") else cell.split("; ")


def sheet_total(rows: list[dict], lead: dict, tokens: list[str]) -> int:
    """A CRM builder reading the sheet: per field the first rule that holds, 0 when none."""
    total, done = 0, set()
    for row in rows:
        field, op = row["field"], row["operator"]
        value = lead.get(field)
        empty = value is None or value == "" or value in tokens or (
            isinstance(value, float) and math.isnan(value))
        if field in done:
            continue
        if op == "is empty":
            hit = empty
        elif empty:
            hit = False
        elif op == "equals":
            hit = value == cell_text(row) or (
                not isinstance(value, str) and float(value) == float(row["value"]))
        elif op == "is any of":
            hit = value in cell_list(row)
        elif op == "is not in":
            hit = value not in cell_list(row)
        elif op == "is not empty":
            hit = True
        elif op == "at most":
            hit = float(value) <= float(row["value"])
        elif op == "greater than":
            hit = float(value) > float(row["value"])
        else:
            assert op == "between", op
            hit = float(row["value"]) < float(value) <= float(row["value2"])
        if hit:
            done.add(field)
            total += int(row["points"])
    return total


def assert_human(edges: list[float]) -> None:
    assert all(significant_digits(e) <= MAX_DIGITS for e in edges), edges
    assert all(b > a for a, b in zip(edges, edges[1:], strict=False)), edges


def whole_minutes(days: float) -> bool:
    """A days threshold that is a whole number of minutes (written to 3 significant digits,
    rounded up, as :func:`pipeline.analysis.levels.edge_candidates` writes durations)."""
    minutes = days * 1440
    return any(significant_digits(days) <= MAX_DIGITS
               and math.isclose(days, x / 1440, rel_tol=5e-3, abs_tol=1e-9)
               for x in (math.floor(minutes), math.ceil(minutes)))


# ------------------------------------------------------------------------------ thresholds


def test_significant_digits_and_duration_units():
    assert significant_digits(0.6394478731128349) == 16
    assert [significant_digits(x) for x in (0.0417, 1230.0, 0.0, 7.5, -0.25)] == [3, 3, 1, 2, 2]
    assert duration_unit("days_to_first_product") == "days"
    assert duration_unit("account_age_days") == "days"
    assert duration_unit("hours_since_visit") == "hours"
    assert duration_unit("decayed_non_product") is None
    assert duration_unit("tenure", "weeks") == "weeks"
    with pytest.raises(ValueError, match="unit must be one of"):
        duration_unit("tenure", "fortnights")


def test_nice_candidates_come_coarse_first_and_short():
    candidates = list(edge_candidates(0.6394478731128349))
    assert candidates[:6] == [0.0, 5.0, 2.5, 2.0, 1.0, 0.5]
    assert 0.64 in candidates and 0.65 in candidates
    assert all(significant_digits(c) <= MAX_DIGITS for c in candidates)
    assert all(float(c).is_integer() for c in edge_candidates(37.0, integer=True))
    # durations in days: whole days, then hours (12 h = 0.5), 1 hour written 0.0417
    days = list(edge_candidates(1.2872569444444444, unit="days"))
    assert days.index(1.0) < days.index(1.25) < days.index(1.29)
    assert 0.5 in edge_candidates(0.43, unit="days")
    assert 0.0417 in edge_candidates(0.0417, unit="days")


@pytest.mark.parametrize(("edge", "want"), [(1.2872569444444444, 1.0), (0.43, 0.5),
                                            (0.0417, 0.0417)])
def test_day_edges_snap_to_days_and_hours(edge, want):
    """Leads spread evenly, a few between the edge and the whole day / hour: the snapped edge
    is that day / hour."""
    lo, hi = sorted([edge, want])
    values = np.concatenate([np.linspace(0, lo, 1000, endpoint=False),
                             np.linspace(lo, hi, 20), np.linspace(hi, 4 * hi, 3000)[1:]])
    assert snap_edges(values, [edge], unit="days") == [want]


def test_snapping_changes_nothing_when_a_nice_number_lies_between_the_values():
    values = np.array([0.12345, 0.6394478731128349, 0.9, 1.7, 3.3])
    snapped = snap_edges(values, [0.6394478731128349, 1.7])
    assert snapped == [0.75, 2.5]  # no value between 0.64 and 0.75, nor between 1.7 and 2.5
    assert np.array_equal(np.searchsorted(snapped, values), np.searchsorted([0.64, 1.7], values))


def test_counts_keep_integer_edges():
    rng = np.random.default_rng(1)
    values = rng.poisson(4, 2000).astype(float)
    edges = snap_edges(values, quantile_edges(values, 8))
    assert edges and all(float(e).is_integer() for e in edges)


def test_an_edge_that_would_empty_a_bin_is_dropped():
    values = np.array([1.001, 1.002, 1.003, 1.004, 50.0])
    edges = snap_edges(values, [1.001, 1.002, 1.003])
    assert_human(edges)
    codes = np.searchsorted(edges, values)
    assert len(set(codes.tolist())) == len(edges) + 1  # no empty bin
    assert len(edges) <= 3


FLOATS = st.floats(-1e4, 1e4, allow_nan=False, allow_subnormal=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(FLOATS, min_size=1, max_size=300), st.integers(2, 20),
       st.sampled_from([None, "days", "hours", "minutes"]))
def test_snapped_edges_are_human_distinct_and_leave_no_bin_empty(values, n_bins, unit):
    values = np.asarray(values, dtype=float)
    raw = quantile_edges(values, n_bins)
    edges = snap_edges(values, raw, unit=unit)
    assert len(edges) <= len(raw)
    assert_human(edges)
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    assert (counts > 0).all(), (edges, counts)


# ------------------------------------------------------------------------------ the merge

POINTS = st.integers(-3, 3)


@st.composite
def numeric_factors(draw) -> FactorRules:
    edges = sorted(set(draw(st.lists(st.integers(-20, 20).map(lambda x: x / 2), max_size=8))))
    points = draw(st.lists(POINTS, min_size=len(edges) + 1, max_size=len(edges) + 1))
    special = draw(st.dictionaries(st.sampled_from(["999", "-1", "0", "2.5"]), POINTS,
                                   max_size=2))
    return FactorRules("x", "PAIN", "numeric", edges=[float(e) for e in edges],
                       bin_points=points, missing_points=draw(POINTS),
                       unseen_points=draw(POINTS), special_points=special)


VALUES = st.one_of(st.floats(-15, 15, allow_nan=False), st.integers(-12, 12).map(lambda x: x / 2),
                   st.sampled_from([999.0, -1.0, 0.0, 2.5, np.nan, None, "NA", ""]))


@settings(max_examples=300, deadline=None)
@given(numeric_factors(), st.lists(VALUES, min_size=1, max_size=40))
def test_merging_equal_bins_never_changes_a_score(factor, values):
    merged = merge_equal_bins(factor)
    assert len(merged.edges) <= len(factor.edges)
    assert all(a != b for a, b in zip(merged.bin_points, merged.bin_points[1:], strict=False))
    assert set(merged.edges) <= set(factor.edges)
    for value in [*values, *factor.edges]:  # values on the edges too
        assert factor_points(merged, value, ["NA"])[0] == factor_points(factor, value, ["NA"])[0]


def test_merge_leaves_categorical_factors_and_distinct_bins_alone():
    cat = FactorRules("c", "FIT", "categorical", levels={"a": 1, "b": 1})
    assert merge_equal_bins(cat) is cat
    distinct = FactorRules("x", "FIT", "numeric", edges=[1.0, 2.0], bin_points=[0, 1, 2])
    assert merge_equal_bins(distinct) is distinct
    equal = FactorRules("x", "FIT", "numeric", edges=[1.0, 2.0, 3.0], bin_points=[5, 5, 2, 2])
    assert merge_equal_bins(equal).edges == [2.0] and merge_equal_bins(equal).bin_points == [5, 2]


# ------------------------------------------------------------------------------ the CRM sheet


@st.composite
def tables(draw) -> PointsRules:
    levels = draw(st.dictionaries(st.sampled_from(["Web", "Ads", "=SUM(1)", "a;b", "Email"]),
                                  POINTS, max_size=5))
    cat = FactorRules("source", "FIT", "categorical", levels=levels, missing_points=draw(POINTS),
                      unseen_points=draw(POINTS))
    return PointsRules(factors=[cat, draw(numeric_factors())], missing_values=["NA"])


@settings(max_examples=200, deadline=None)
@given(tables(), st.lists(st.tuples(
    st.one_of(st.sampled_from(["Web", "Ads", "=SUM(1)", "a;b", "Email", "Other", "NA", ""]),
              st.none()),
    st.one_of(st.floats(-15, 15, allow_nan=False), st.integers(-12, 12).map(lambda x: x / 2),
              st.sampled_from([999.0, -1.0, 0.0, 2.5, None]))), min_size=1, max_size=20))
def test_crm_sheet_without_zero_rules_adds_up_to_the_reference_score(rules, leads):
    rows = sheet_rows(ex.export_crm_csv(rules))
    assert len(rows) == crm_rule_count(rules)
    for row in rows:  # a 0 rule stays only to keep a special value out of its bin
        assert int(row["points"]) != 0 or (row["operator"] == "equals" and "code" in row["notes"])
    for source, x in leads:
        lead = {"source": source, "x": x}
        assert sheet_total(rows, lead, ["NA"]) == score_record(rules, lead)["points"], lead


def test_crm_sheet_groups_levels_and_says_levels_not_listed_score_0():
    rules = PointsRules(factors=[FactorRules(
        "source", "FIT", "categorical", levels={"Web": 5, "Ads": 5, "Email": 0, "Chat": 3},
        missing_points=0, unseen_points=0)])
    text = ex.export_crm_csv(rules)
    rows = sheet_rows(text)
    assert [(r["operator"], r["value"], r["points"]) for r in rows] == [
        ("is any of", "Ads; Web", "5"), ("equals", "Chat", "3")]
    assert text.splitlines()[-1].startswith("# levels not listed score 0: 3 rules worth 0")
    assert crm_zero_count(rules) == 3


# ------------------------------------------------------------------------------ trust figures


def test_trust_figures():
    assert direction_changes([1, 3, 2, 5]) == 2
    assert direction_changes([1, 1, 2, 3]) == 0
    assert direction_changes([4]) == 0
    rules = PointsRules(factors=[
        FactorRules("x", "PAIN", "numeric", edges=[1.0, 2.25, 0.6394478731128349 + 3],
                    bin_points=[0, 4, 1, 6]),
        FactorRules("c", "FIT", "categorical", levels={"a": 2, "b": 0})])
    assert longest_threshold(rules)[0] == "x" and longest_threshold(rules)[2] == 16
    points_table = pd.DataFrame({"factor": ["x", "x", "c", "c"], "level": ["<= 1", "> 3.6",
                                                                        "a", "(unseen)"],
                                 "points": [0, 6, 2, 0], "leads": [100, 5, 50, 0]})
    assert largest_points_under(points_table, 30) == ("x", "> 3.6", 6, 5)
    lift = pd.DataFrame({"attribute": ["x"] * 5, "kind": ["numeric"] * 5,
                         "level": ["<= 1", "(1, 2.25]", "(2.25, 3.64]", "> 3.64", "(missing)"],
                         "shrunk_rate": [0.1, 0.2, 0.3, 0.4, 0.9]})
    table = trust_table(rules, lift=lift, points_table=points_table, min_leads=30)
    value = {(r.figure, r.factor): r.value for r in table.itertuples()}
    assert value[("rules_crm_sheet", "")] == 4  # x: 3 bins not worth 0; c: "a"
    assert value[("zero_rules_omitted", "")] == 5
    assert value[("direction_changes_points", "x")] == 2
    assert value[("direction_changes_lift", "x")] == 0
    assert value[("max_points_under_min_leads", "x")] == 6


# ------------------------------------------------------------------------------ on real tables


def test_demo_thresholds_are_human_and_the_merge_keeps_every_score(demo_features):
    cfg, features = demo_features
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SentinelWarning)
        result = train(features, cfg)
    numeric = [f for f in result.rules.factors if f.kind == "numeric"]
    assert numeric
    for f in numeric:
        assert_human(f.edges)
        if duration_unit(f.name) == "days":
            assert all(whole_minutes(e) for e in f.edges), (f.name, f.edges)
    # the registered (merged) table scores every lead as the encoder's slot points do
    X = features.frame[[f.name for f in result.rules.factors]]
    scorecard = result.scorecard
    slot_totals = np.zeros(len(X), dtype=np.int64)
    codes = scorecard.encoder_.codes(X)
    for j, factor in enumerate(result.rules.factors):
        slots = scorecard.slot_points_[scorecard.encoder_.offsets_[j]:
                                       scorecard.encoder_.offsets_[j + 1]]
        slot_totals += np.where(codes[:, j] >= 0, slots[np.maximum(codes[:, j], 0)],
                                factor.unseen_points)
    leads = X.head(300).to_dict("records")
    assert [score_record(result.rules, lead)["points"] for lead in leads] == \
        slot_totals[:300].tolist()
    # and the cut the lift table makes is the encoder's, snapped
    for f in numeric:
        values = pd.to_numeric(features.frame[f.name], errors="coerce").to_numpy(float)
        _, cut = numeric_cut(values, n_bins=cfg.analysis.n_bins, name=f.name, warn=False)
        assert set(f.edges) <= set(cut.edges)


@pytest.mark.slow
def test_x_education_crm_sheet_is_short_and_human(shared_data, make_config, tmp_path):
    config = make_config("x_education", leads=shared_data)
    invoke(["train", "--config", str(config), "--no-score", "--out", str(tmp_path / "out")])
    sheet = tmp_path / "crm.csv"
    invoke(["export", "--config", str(config), "--format", "crm-csv", "--output", str(sheet)])
    rows = sheet_rows(sheet.read_text(encoding="utf-8"))
    assert len(rows) <= 122  # 175 before: at least 30% fewer
    assert all(int(r["points"]) != 0 for r in rows)
    numbers = [float(r[c]) for r in rows for c in ("value", "value2")
               if r["operator"] in ("at most", "greater than", "between") and r[c]]
    assert numbers and all(significant_digits(x) <= MAX_DIGITS for x in numbers)
    # the training artifacts (logged to MLflow) hold the trust figures
    (path,) = (tmp_path / "artifacts").rglob("trust_rules.csv")
    trust = pd.read_csv(path)
    assert int(trust.loc[trust["figure"] == "rules_crm_sheet", "value"].iloc[0]) == len(rows)
