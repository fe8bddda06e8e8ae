"""The CRM representation of behaviour: capped occurrence counts in a window.

* :func:`count_events` (one SQL statement run by DuckDB) against a slow, obvious Python count
  on random event logs, boundaries included (an event at ``as_of - W days`` counts, one at
  ``as_of`` does not; one before creation never counts; velocity counts ``ts < created + D``);
* the CV search finds the window and the cap a synthetic truth was made with;
* :class:`PointsRules` carries the event rules (JSON round trip, schema, the points per
  occurrence read off the factor's bins, rules of factors not in the table dropped);
* the scoring feature builder counts a table's rules from raw events as of a date.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import UserError
from pipeline.inputs.crm_events import (
    CountSpec,
    choose_crm_rules,
    count_events,
    counts_sql,
    one_hot_counts,
    recent_column,
    velocity_column,
)
from pipeline.inputs.features import FeatureSettings, scoring_features
from pipeline.model.reference import score_record
from pipeline.model.rules import EventRule, FactorRules, PointsRules

T0 = pd.Timestamp("2025-01-01")


def _slow_count(events: pd.DataFrame, lead: str, created: pd.Timestamp,
                snapshot: pd.Timestamp, spec: CountSpec) -> int:
    n = 0
    for row in events.itertuples(index=False):
        ts = pd.Timestamp(row.timestamp)
        if row.lead_id != lead or row.event not in spec.events:
            continue
        if not (created <= ts < snapshot):
            continue
        if spec.anchor == "as_of" and ts < snapshot - pd.Timedelta(days=spec.window_days):
            continue
        if spec.anchor == "created" and ts >= created + pd.Timedelta(days=spec.window_days):
            continue
        n += 1
    return n if spec.cap is None else min(n, spec.cap)


SPECS = [CountSpec("a_3d", ("a",), 3), CountSpec("ab_10d_cap2", ("a", "b"), 10, cap=2),
         CountSpec("b_first_2d", ("b",), 2, "created"), CountSpec("c_30d", ("c",), 30, cap=5)]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["L1", "L2", "L3", "L9"]),
                          st.sampled_from(["a", "b", "c", "d"]),
                          st.integers(-2 * 24, 20 * 24)), max_size=40))
def test_counts_match_a_slow_reference(rows):
    """Hours from T0, so many events fall exactly on a window edge."""
    events = pd.DataFrame({"lead_id": [r[0] for r in rows], "event": [r[1] for r in rows],
                           "timestamp": [(T0 + pd.Timedelta(hours=r[2])).isoformat()
                                         for r in rows]}, dtype=object)
    snaps = pd.DataFrame({"lead_id": ["L1", "L2", "L3"],
                          "created_at": [T0, T0 + pd.Timedelta(days=1), T0],
                          "snapshot_at": [T0 + pd.Timedelta(days=12),
                                          T0 + pd.Timedelta(days=5), T0 + pd.Timedelta(days=3)]})
    if events.empty:
        events = pd.DataFrame({"lead_id": ["L1"], "event": ["zzz"],
                               "timestamp": [T0.isoformat()]})
    got = count_events(events, snaps, SPECS)
    assert got["lead_id"].tolist() == ["L1", "L2", "L3"]
    for i, snap in snaps.iterrows():
        for spec in SPECS:
            want = _slow_count(events, snap.lead_id, snap.created_at, snap.snapshot_at, spec)
            assert got.loc[i, spec.column] == want, (snap.lead_id, spec)


def test_window_edges_are_exact(tmp_path):
    """At ``as_of - 3 days`` counts, a microsecond earlier does not; at ``as_of`` does not;
    before creation never; velocity: just before ``created + 2 days`` counts, at it not."""
    as_of = T0 + pd.Timedelta(days=10)
    stamps = [as_of - pd.Timedelta(days=3), as_of - pd.Timedelta(days=3, microseconds=1),
              as_of, T0 - pd.Timedelta(seconds=1),
              T0 + pd.Timedelta(days=2, microseconds=-1), T0 + pd.Timedelta(days=2)]
    events = pd.DataFrame({"lead_id": "L1", "event": ["a", "a", "a", "a", "b", "b"],
                           "timestamp": [s.isoformat() for s in stamps]})
    path = tmp_path / "events.csv"
    events.to_csv(path, index=False)
    snaps = pd.DataFrame({"lead_id": ["L1"], "created_at": [T0], "snapshot_at": [as_of]})
    got = count_events(path, snaps, SPECS[:3])
    assert got.loc[0, "a_3d"] == 1
    assert got.loc[0, "b_first_2d"] == 1
    assert got.loc[0, "ab_10d_cap2"] == 2  # 1 a + 2 b within 10 days, capped at 2


def test_counts_sql_is_plain_sql_for_other_engines():
    sql = counts_sql(SPECS, quote="`")
    assert "INTERVAL '3' DAY" in sql and "`a_3d`" in sql and "LEAST(" in sql
    assert "FILTER" not in sql and "date_diff" not in sql


def test_missing_event_columns_are_a_clear_error(tmp_path):
    path = tmp_path / "events.csv"
    pd.DataFrame({"lead_id": ["L1"], "name": ["a"], "timestamp": ["2025-01-01"]}).to_csv(
        path, index=False)
    snaps = pd.DataFrame({"lead_id": ["L1"], "created_at": [T0], "snapshot_at": [T0]})
    with pytest.raises(UserError, match=r"missing column\(s\) \['event'\]"):
        count_events(path, snaps, SPECS)


def test_one_hot_counts_caps():
    x = one_hot_counts(np.array([0, 1, 2, 7]), 2)
    assert x.tolist() == [[0, 0], [1, 0], [0, 1], [0, 1]]


def test_cv_search_recovers_the_window_and_cap_of_the_truth():
    """Conversion rises with the 'x' events of the last 7 days up to 2 of them; older 'x'
    events (8-30 days) and further ones are noise: the search picks 7 days and cap 2."""
    rng = np.random.default_rng(0)
    n = 6000
    recent = rng.poisson(1.2, n)
    older = rng.poisson(1.5, n)
    logit = -2.0 + 1.3 * np.minimum(recent, 2)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    counts = pd.DataFrame({recent_column("g", 7): recent, recent_column("g", 30): recent + older,
                           velocity_column("g", 3): rng.poisson(0.5, n)})
    choice = choose_crm_rules(counts, y, np.zeros((n, 1)), groups={"g": ["x"]},
                              windows=[7, 30], caps=[1, 2, 3, 4], velocity_days=[3],
                              key_group="g", folds=5, seed=0)
    rule = next(r for r in choice.rules if r.anchor == "as_of")
    assert (rule.factor, rule.window_days, rule.cap) == ("g_events_7d", 7, 2)
    assert rule.events == ["x"]
    assert 0.6 < choice.cv_auc < 0.8
    assert set(choice.table["rule"]) == {"g", "velocity"}


def _event_rules_table() -> PointsRules:
    factor = FactorRules(name="p_events_30d", group="PAIN", kind="numeric",
                         edges=[0.0, 1.0, 2.0], bin_points=[0, 5, 8, 20], missing_points=-3)
    fit = FactorRules(name="size", group="FIT", kind="categorical", levels={"big": 10})
    return PointsRules(factors=[fit, factor], sdr_threshold=15, event_rules=[
        EventRule("p_events_30d", ["login", "trial"], 30, 3),
        EventRule("gone_events_7d", ["x"], 7, 2)])


def test_points_table_holds_the_event_rules():
    rules = _event_rules_table()
    assert [r.factor for r in rules.event_rules] == ["p_events_30d"]  # a rule of no factor goes
    assert rules.occurrence_points(rules.event_rules[0]) == (0, [5, 3, 12])
    doc = json.loads(rules.to_json())
    assert doc["event_rules"] == [{"factor": "p_events_30d", "events": ["login", "trial"],
                                   "window_days": 30, "cap": 3, "anchor": "as_of",
                                   "base_points": 0, "points_per_occurrence": [5, 3, 12]}]
    again = PointsRules.from_json(rules.to_json())
    assert again == rules and again.to_json() == rules.to_json()
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(resources.files("pipeline.resources")
                        .joinpath("points_table.schema.json").read_text())
    jsonschema.validate(doc, schema)
    no_events = PointsRules(factors=rules.factors[:1])
    assert "event_rules" not in no_events.to_dict()


@pytest.mark.parametrize("bad", [{"window_days": 0}, {"cap": 1.5}, {"anchor": "later"},
                                 {"events": []}])
def test_bad_event_rules_are_refused(bad):
    with pytest.raises(ValueError):
        EventRule(**{"factor": "f", "events": ["a"], "window_days": 7, "cap": 2, **bad})


def test_scoring_counts_the_tables_rules_from_raw_events_as_of_a_date():
    rules = _event_rules_table()
    leads = pd.DataFrame({"lead_id": ["A", "B", "C"], "size": ["big", "small", "big"],
                          "created_at": ["2025-01-01", "2025-01-01", "2025-03-01"]})
    days = [1, 20, 35, 40, 45, 45]
    events = pd.DataFrame({"lead_id": ["A"] * 5 + ["B"], "event":
                           ["login", "trial", "login", "other", "login", "login"],
                           "timestamp": [str(T0 + pd.Timedelta(days=d)) for d in days]})
    settings = FeatureSettings(created_at_column="created_at")
    as_of = T0 + pd.Timedelta(days=46)
    frame = scoring_features(leads, rules, settings, events=events, as_of=as_of)
    # A: login@35, login@45 in [16, 46) -> plus trial@20 = 3; B: 1; C: created after as_of
    assert frame["p_events_30d"].tolist()[:2] == [3, 1] and pd.isna(frame["p_events_30d"][2])
    scores = [score_record(rules, row) for row in frame.to_dict("records")]
    assert [s["points"] for s in scores] == [10 + 8 + 12, 5, 10 - 3]
    earlier = scoring_features(leads, rules, settings, events=events,
                               as_of=T0 + pd.Timedelta(days=25))
    assert earlier["p_events_30d"].tolist()[:2] == [2, 0]  # login@1, trial@20


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-20, 20), min_size=5, max_size=5), st.integers(1, 4))
def test_event_criteria_sum_to_the_factor_points_of_each_count(points, cap):
    from pipeline.exports.event_criteria import event_criteria, per_occurrence

    factor = FactorRules(name="f", group="PAIN", kind="numeric", edges=[0.0, 1.0, 2.0, 3.0],
                         bin_points=points)
    rules = PointsRules(factors=[factor], event_rules=[EventRule("f", ["a"], 14, cap)])
    criteria = event_criteria(rules)
    for k in range(cap + 1):
        assert sum(c.points for c in criteria if c.at_least <= k) == points[k]
    assert all(c.points != 0 for c in criteria)
    p = per_occurrence(rules, rules.event_rules[0])
    linear = points[0] == 0 and len({points[i] - points[i - 1] for i in range(1, cap + 1)}) == 1
    assert (p is not None) == linear


def _random_case(seed: int) -> tuple[PointsRules, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    recent = FactorRules(name="p_events_14d", group="PAIN", kind="numeric",
                         edges=[0.0, 1.0, 2.0], bin_points=[0, 4, 4, 9], missing_points=-2)
    fast = FactorRules(name="p_events_first_3d", group="PAIN", kind="numeric",
                       edges=[0.0], bin_points=[-1, 6])
    rules = PointsRules(factors=[recent, fast], event_rules=[
        EventRule("p_events_14d", ["a", "b"], 14, 3),
        EventRule("p_events_first_3d", ["a"], 3, 1, "created")])
    n = 60
    created = [T0 + pd.Timedelta(hours=int(h)) for h in rng.integers(0, 40 * 24, n)]
    leads = pd.DataFrame({"lead_id": [f"L{i}" for i in range(n)],
                          "created_at": [c.isoformat() for c in created]})
    leads.loc[3, "created_at"] = ""
    m = 600
    events = pd.DataFrame({"lead_id": [f"L{i}" for i in rng.integers(0, n + 5, m)],
                           "event": rng.choice(["a", "b", "c"], m),
                           "timestamp": [(T0 + pd.Timedelta(hours=int(h))).isoformat()
                                         for h in rng.integers(-24, 60 * 24, m)]})
    return rules, leads, events


@pytest.mark.parametrize("seed", [0, 1])
def test_simulator_gives_the_points_of_the_scoring_builder(seed):
    """The CRM simulator (pandas, criteria) and the scoring path (SQL counts, factor bins)
    agree on every lead as of two dates; a lead with no creation time gets missing points."""
    from pipeline.exports.event_criteria import simulate_event_points

    rules, leads, events = _random_case(seed)
    settings_ = FeatureSettings(created_at_column="created_at")
    for as_of in (T0 + pd.Timedelta(days=20), T0 + pd.Timedelta(days=45, hours=7)):
        frame = scoring_features(leads, rules, settings_, events=events, as_of=as_of)
        want = [score_record(rules, row)["pain"] for row in frame.to_dict("records")]
        got = simulate_event_points(rules, leads, events, as_of=as_of).sum(axis=1)
        assert got.tolist() == want
        assert got[3] == -2 + 0  # no creation time: both factors' missing points


def test_exports_write_event_rules_as_event_criteria():
    from pipeline.exports.files import export

    rules, _, _ = _random_case(0)
    body = json.loads(export(rules, "hubspot"))
    engagement = next(g for g in body["groupConfigs"] if g["groupCategory"] == "ENGAGEMENT")
    configs = engagement["ruleConfigurations"]
    filters = [c["filters"][0] for c in configs]
    recent = [f for f in filters if "eventType" in f]
    assert recent == [{"eventType": "EVENT_OCCURRENCES", "events": ["a", "b"],
                       "timeframe": {"lastDays": 14}, "operator": "GTE", "value": i}
                      for i in (1, 3)]
    velocity = [f for f in filters if "property" in f]
    assert velocity == [{"property": "p_events_first_3d", "operator": "HAS_PROPERTY"},
                        {"property": "p_events_first_3d", "operator": "GTE", "value": "1"}]
    assert [c["configuration"]["calculation"]["value"] for c in configs] == [4, 5, -1, 7]
    sheet = export(rules, "crm-csv").splitlines()
    rows = [line for line in sheet if "occurred at least" in line]
    assert len(rows) == 4
    assert rows[0].startswith("R001,Behavior,events: a; b,occurred at least,1,14,4,")


@pytest.mark.parametrize("seed", [0, 1])
def test_hubspot_simulator_scores_the_event_criteria_like_the_scoring_path(seed):
    """The exported HubSpot body, applied by the reference simulator with the event-criteria
    callable, gives every lead the points of the scoring path, as of two dates."""
    from pipeline.exports.event_criteria import hubspot_event_filter, lead_events
    from pipeline.exports.files import export
    from pipeline.exports.simulator import crm_properties, simulate_hubspot

    rules, leads, events = _random_case(seed)
    leads = leads.drop(index=3)  # every CRM record has a create date
    body = json.loads(export(rules, "hubspot"))
    settings_ = FeatureSettings(created_at_column="created_at")
    own = lead_events(leads, events)
    for as_of in (T0 + pd.Timedelta(days=41), T0 + pd.Timedelta(days=50, hours=7)):
        frame = scoring_features(leads, rules, settings_, events=events, as_of=as_of)
        want = [score_record(rules, row)["pain"] for row in frame.to_dict("records")]
        props = crm_properties(leads, rules, settings_, events=events, as_of=as_of)
        got = simulate_hubspot(body, props, events=own, as_of=as_of,
                               event_criteria=hubspot_event_filter)
        assert got["pain"].tolist() == want


def test_rules_summary_says_each_rule_and_both_aucs():
    from pipeline.inputs.crm_events import rules_summary

    rules = [EventRule("product_events_30d", ["a"], 30, 4),
             EventRule("product_events_first_3d", ["a"], 3, 2, "created")]
    text = rules_summary(rules, {"cv_auc_crm": 0.849, "cv_auc_decayed": 0.8472})
    assert text == ("event rules: product 30 d cap 4, product first 3 d cap 2; "
                    "CV AUC crm 0.8490 vs decayed 0.8472")
