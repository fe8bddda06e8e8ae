"""``lead-scoring audit``: rule sets read from every format score like the table they came
from, and the audit's figures are those of a slow, obvious reference on synthetic data with
a known answer."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from test_export_properties import PROPERTY_SETTINGS, rules_and_leads

from pipeline.errors import UserError
from pipeline.exports.files import export
from pipeline.exports.hubspot import hubspot_max_score
from pipeline.exports.importers import detect_format, parse_rules
from pipeline.model import audit
from pipeline.model.reference import score_record
from pipeline.model.rules import FactorRules, PointsRules

FEW = settings(PROPERTY_SETTINGS, max_examples=20)


def _reference_points(rules: PointsRules, frame: pd.DataFrame) -> list[int]:
    return [score_record(rules, row)["points"] for row in frame.to_dict(orient="records")]


@FEW
@given(rules_and_leads())
def test_slot_totals_are_the_reference_points(case):
    rules, leads = case
    coded = audit.code_table(rules, leads)
    assert coded.totals().tolist() == _reference_points(rules, leads)
    ready = [score_record(rules, row)["sdr_ready"] for row in leads.to_dict(orient="records")]
    assert ((coded.totals() >= rules.sdr_threshold) & ~coded.spam).tolist() == ready


@FEW
@given(rules_and_leads())
def test_slot_points_write_back_into_the_factor(case):
    rules, _ = case
    for f in rules.factors:
        assert audit.with_slot_points(f, audit.slot_points(f)) == f
        bumped = audit.with_slot_points(f, audit.slot_points(f) + 1)
        assert audit.slot_points(bumped).tolist() == (audit.slot_points(f) + 1).tolist()


@pytest.mark.parametrize("fmt", ["json", "csv", "crm-csv", "hubspot"])
@FEW
@given(case=rules_and_leads())
def test_an_exported_table_reads_back_scoring_the_same(fmt, case):
    rules, leads = case
    text = export(rules, fmt)
    numeric = [f.name for f in rules.factors if f.kind == "numeric"]
    imported = parse_rules(text, f"rules.{fmt}", missing_values=rules.missing_values,
                           numeric=numeric)
    assert detect_format(text) == fmt and imported.format == fmt
    expected = {"json": rules, "hubspot": replace(rules, score_max=hubspot_max_score(rules))
                }.get(fmt, replace(rules, score_min=None, score_max=None))
    assert _reference_points(imported.rules, leads) == _reference_points(expected, leads)
    assert imported.has_threshold == (fmt in ("json", "hubspot"))
    if fmt != "csv":
        assert imported.rules.spam_gate == rules.spam_gate


def test_a_hand_typed_crm_sheet_reads_as_meant():
    sheet = ("score_group,field,operator,value,value2,points\n"
             "Fit,seniority,equals,c_level,,9\n"
             "Fit,seniority,is any of,vp; director,,6\n"
             "Fit,seniority,is empty,,,-2\n"
             "Behavior,visits,greater than,10,,8\n"
             "Behavior,visits,between,2,10,3\n"
             "Behavior,visits,equals,999,,-5\n")
    rules = parse_rules(sheet, "crm.csv", missing_values=["NA"]).rules
    by = {f.name: f for f in rules.factors}
    assert by["seniority"].kind == "categorical" and by["seniority"].group == "FIT"
    assert by["seniority"].levels == {"c_level": 9, "director": 6, "vp": 6}
    assert by["visits"].kind == "numeric" and by["visits"].group == "PAIN"
    assert by["visits"].edges == [2.0, 10.0] and by["visits"].bin_points == [0, 3, 8]
    lead = {"seniority": "NA", "visits": 999}
    assert score_record(rules, lead)["points"] == -2 - 5
    assert score_record(rules, {"seniority": "vp", "visits": 10})["points"] == 6 + 3


@pytest.mark.parametrize(("sheet", "message"), [
    ("score_group,field,operator,value,points\nFit,a,resembles,x,3\n", "row 2 column operator"),
    ("score_group,field,operator,value,points\nFit,a,equals,x,3.5\n", "whole numbers"),
    ("score_group,field,operator,value,points\nSales,a,equals,x,3\n", "group 'Sales'"),
    ("score_group,field,operator,points\nFit,a,equals,3\n", "missing column.*value"),
    ("score_group,field,operator,value,points\nFit,a,equals,x,3\nBehavior,a,equals,y,1\n",
     "in group PAIN here and FIT"),
    ("score_group,field,operator,value,points\nFit,a,greater than,ten,3\n", "'ten' is not a "
                                                                             "number"),
])
def test_a_bad_sheet_is_one_clear_error(sheet, message):
    with pytest.raises(UserError, match=message):
        parse_rules(sheet, "crm.csv")


# --------------------------------------------------------------------------- figures


def _reference_auc(y, score) -> float:
    pos = [s for s, t in zip(score, y, strict=True) if t]
    neg = [s for s, t in zip(score, y, strict=True) if not t]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def _reference_close_rate(total, y, volume, draws=20000, seed=0) -> float:
    """Average close rate of the top ``volume`` leads over random tie orders."""
    rng = np.random.default_rng(seed)
    rates = []
    for _ in range(draws // 100):
        order = np.lexsort((rng.random(len(total)), -np.asarray(total)))
        rates.append(np.mean(np.asarray(y)[order[:volume]]))
    return float(np.mean(rates))


def test_close_rate_at_volume_counts_ties_in_proportion():
    total = np.array([5, 5, 5, 5, 3, 3, 1])
    y = np.array([1, 1, 0, 0, 1, 0, 0])
    assert audit.close_rate_at_volume(total, y, 4) == pytest.approx(0.5)
    assert audit.close_rate_at_volume(total, y, 2) == pytest.approx(0.5)  # 2 of 4 tied: half
    assert audit.close_rate_at_volume(total, y, 5) == pytest.approx(2.5 / 5)
    rng = np.random.default_rng(3)
    total, y = rng.integers(0, 5, 60), rng.integers(0, 2, 60)
    assert audit.close_rate_at_volume(total, y, 17) == pytest.approx(
        _reference_close_rate(total, y, 17), abs=0.02)


def test_calibrate_is_the_maximum_likelihood_logistic_fit():
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    x = rng.integers(-20, 40, 4000).astype(float)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(-1.5 + 0.05 * x)))).astype(int)
    a, b = audit.calibrate(x, y)
    fit = sm.Logit(y, sm.add_constant(x)).fit(disp=0)
    assert (a, b) == pytest.approx(tuple(fit.params), rel=1e-6)
    assert audit.calibrate(np.zeros(10), np.r_[np.ones(3), np.zeros(7)]) == pytest.approx(
        (math.log(3 / 7), 0.0))


def _synthetic(n: int, seed: int) -> pd.DataFrame:
    """Leads whose conversion depends on ``tier`` (a > b > c) and ``visits`` (more is
    better); ``colour`` is noise."""
    rng = np.random.default_rng(seed)
    tier = rng.choice(["a", "b", "c"], n)
    visits = rng.poisson(3, n).astype(float)
    visits[rng.random(n) < 0.05] = np.nan
    logit = -2 + np.select([tier == "a", tier == "b"], [1.5, 0.5], -0.5) + 0.35 * \
        np.nan_to_num(visits, nan=1)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"tier": tier, "visits": visits,
                         "colour": rng.choice(["red", "blue", "green"], n), "converted": y})


TRUTH = PointsRules(factors=[
    FactorRules("tier", "FIT", "categorical", levels={"a": 15, "b": 5, "c": -5}),
    FactorRules("visits", "PAIN", "numeric", edges=[1, 3, 5], bin_points=[0, 5, 10, 18],
                missing_points=3)], sdr_threshold=20)
WRONG = PointsRules(factors=[
    FactorRules("tier", "FIT", "categorical", levels={"a": -5, "b": 5, "c": 15}),
    FactorRules("visits", "PAIN", "numeric", edges=[1, 3, 5], bin_points=[18, 10, 5, 0])],
    sdr_threshold=20)
NOISE = PointsRules(factors=[
    FactorRules("colour", "FIT", "categorical", levels={"red": 10, "blue": 0, "green": 5})],
    sdr_threshold=10)


def test_audit_ranks_the_truth_above_noise_and_wrong_rules():
    train, holdout = _synthetic(6000, 1), _synthetic(3000, 2)
    result = audit.audit_tables({"truth": TRUTH, "wrong": WRONG, "noise": NOISE}, train,
                                holdout, reference="truth")
    s = result.summary.set_index("table")
    assert s.loc["truth", "auc"] > 0.7 > 0.55 > s.loc["noise", "auc"] > 0.45 > \
        s.loc["wrong", "auc"]
    assert s.loc["truth", "brier_calibrated"] < s.loc["noise", "brier_calibrated"]
    assert s.loc["truth", "close_rate_at_volume"] > s.loc["noise", "close_rate_at_volume"] > \
        s.loc["wrong", "close_rate_at_volume"]
    assert s.loc["truth", "contradictions"] == 0 and s.loc["noise", "contradictions"] == 0
    bad = result.contradictions[result.contradictions["table"] == "wrong"]
    assert {"a", "c"} <= set(bad[bad["factor"] == "tier"]["level"])
    assert s.loc["wrong", "contradictions"] == len(bad) >= 4


def test_audit_figures_match_a_slow_reference():
    train, holdout = _synthetic(2000, 5), _synthetic(400, 6)
    result = audit.audit_tables({"truth": TRUTH, "noise": NOISE}, train, holdout,
                                reference="noise", weeks=4.0)
    y = holdout["converted"].tolist()
    for name, rules in (("truth", TRUTH), ("noise", NOISE)):
        row = result.summary.set_index("table").loc[name]
        points = _reference_points(rules, holdout.drop(columns="converted"))
        assert row["auc"] == pytest.approx(_reference_auc(y, points), abs=1e-12)
        ready = [p >= rules.sdr_threshold for p in points]
        assert row["sdr_ready"] == sum(ready)
        assert row["sdr_ready_per_week"] == pytest.approx(sum(ready) / 4.0)
        assert row["close_rate"] == pytest.approx(
            sum(t for t, r in zip(y, ready, strict=True) if r) / sum(ready))
        a, b = audit.calibrate(np.array(_reference_points(rules, train)), train["converted"])
        p = [1 / (1 + math.exp(-(a + b * x))) for x in points]
        assert row["brier_calibrated"] == pytest.approx(
            sum((pi - yi) ** 2 for pi, yi in zip(p, y, strict=True)) / len(y))
    assert result.volume == result.summary.set_index("table").loc["noise", "sdr_ready"]


def test_the_editor_page_embeds_the_payload_intact_whatever_the_level_names():
    import json
    import re

    from pipeline.reports.editor import editor_html, editor_payload

    nasty = "</script><script>alert(1)</script>"
    rules = PointsRules(factors=[
        FactorRules("tier", "FIT", "categorical", levels={nasty: 7, "b": 0}),
        FactorRules("visits", "PAIN", "numeric", edges=[1, 3], bin_points=[0, 4, 9],
                    special_points={"999": -3})], sdr_threshold=5)
    frame = pd.DataFrame({"tier": [nasty, "b", "zzz", None] * 5,
                          "visits": [0, 2, 999, np.nan] * 5, "converted": [1, 0, 0, 1] * 5})
    coded = audit.code_table(rules, frame)
    payload = editor_payload(coded, frame["converted"].to_numpy(), coded,
                             frame["converted"].to_numpy(), parent="m/1", weeks=2.0)
    page = editor_html(payload)
    scripts = re.findall(r"<script type='application/json' id='payload'>(.*?)</script>", page,
                         flags=re.S)
    assert len(scripts) == 1 and json.loads(scripts[0]) == payload
    tier, visits = payload["factors"]
    assert tier["labels"] == [nasty, "b", "(missing)", "(unseen)"]
    assert tier["points"] == [7, 0, 0, 0] and tier["leads"] == [5, 5, 5, 5]
    assert visits["labels"] == ["= 999", "<= 1", "(1, 3]", "> 3", "(missing)"]
    assert visits["paths"][0] == ["special_points", "999"]
    assert payload["holdout"]["codes"][0] == coded.codes[0].tolist()
