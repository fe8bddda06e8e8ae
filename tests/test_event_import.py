"""Event criteria read back: the CRM sheet's ``occurred at least`` rows and HubSpot's event
filters become event rules that a CRM applies (and the audit evaluates) exactly as the
exported table; a hand-typed sheet reads as meant; a bad row is one clear error naming the
file, row and column."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_crm_events import T0, _random_case, _slow_count

from pipeline.errors import UserError
from pipeline.exports.event_criteria import event_counts, simulate_event_points
from pipeline.exports.files import export
from pipeline.exports.importers import parse_rules
from pipeline.inputs.crm_events import CountSpec
from pipeline.model import audit
from pipeline.model.reference import score_record
from pipeline.model.rules import EventRule, FactorRules, PointsRules

HEADER = "score_group,field,operator,value,value2,points,notes\n"


def _known(leads: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    created = pd.to_datetime(leads["created_at"].replace("", None))
    return created.notna() & (created <= as_of)


@pytest.mark.parametrize("fmt", ["crm-csv", "hubspot"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exported_event_criteria_read_back_score_the_same(fmt, seed):
    """Exported, read back, applied the CRM way: every lead with a window gets the points of
    the original table, as of two dates; the rules are the original's (names, events,
    windows, anchors, caps)."""
    rules, leads, events = _random_case(seed)
    imported = parse_rules(export(rules, fmt), f"rules.{fmt}").rules
    assert imported.event_rules == rules.event_rules
    for as_of in (T0 + pd.Timedelta(days=20), T0 + pd.Timedelta(days=45, hours=7)):
        known = _known(leads, as_of)
        want = simulate_event_points(rules, leads, events, as_of=as_of)[known]
        got = simulate_event_points(imported, leads, events, as_of=as_of)[known]
        assert got.equals(want)
        # the audit's slots over the counts give the same points
        counts = event_counts(imported, leads, events, as_of=as_of)[known]
        coded = audit.code_table(imported, counts)
        assert coded.totals().tolist() == got.sum(axis=1).tolist()
        # and a lead without a window scores 0 (no criterion matches it)
        assert (simulate_event_points(imported, leads, events, as_of=as_of)[~known] == 0
                ).all().all()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["L1", "L2", "L3", "L9"]),
                          st.sampled_from(["a", "b", "c", "d"]),
                          st.integers(-2 * 24, 20 * 24)), max_size=40),
       st.lists(st.integers(0, 20 * 24), min_size=3, max_size=3))
def test_counts_as_of_a_date_per_lead_match_a_slow_reference(rows, hours):
    """Each lead counted as of its own date (the audit's snapshots) is the slow count."""
    events = pd.DataFrame(rows, columns=["lead_id", "event", "h"])
    events["timestamp"] = [str(T0 + pd.Timedelta(hours=h)) for h in events["h"]]
    leads = pd.DataFrame({"lead_id": ["L1", "L2", "L3"],
                          "created_at": [str(T0), str(T0 + pd.Timedelta(days=2)), str(T0)]})
    as_of = pd.Series([T0 + pd.Timedelta(hours=h) for h in hours], index=leads.index)
    specs = [CountSpec("a_3d", ("a",), 3, cap=9), CountSpec("ab_10d", ("a", "b"), 10, cap=2),
             CountSpec("b_first_2d", ("b",), 2, "created", cap=9)]
    factors = [FactorRules(s.column, "PAIN", "numeric", edges=[0.0], bin_points=[0, 1])
               for s in specs]
    rules = PointsRules(factors=factors, event_rules=[
        EventRule(s.column, list(s.events), s.window_days, s.cap, s.anchor) for s in specs])
    got = event_counts(rules, leads, events, as_of=as_of)
    for i, lead in enumerate(leads.itertuples()):
        created, snap = pd.Timestamp(lead.created_at), as_of[i]
        for s in specs:
            want = _slow_count(events, lead.lead_id, created, snap, s) if created <= snap \
                else None
            value = got.loc[i, s.column]
            assert (np.isnan(value) if want is None else value == want)


def test_a_hand_typed_sheet_with_event_rows_reads_as_meant():
    sheet = (HEADER +
             "Fit,seniority,equals,vp,,8,\n"
             "Behavior,events: login; trial,occurred at least,1,30,5,\n"
             "Behavior,events: trial; login,occurred at least,3,30,4,\n"
             "Behavior,events: login,occurred at least after creation,2,7,6,\n"
             "Behavior,events: webinar,occurred at least,0,14,-2,\n")
    imported = parse_rules(sheet, "crm.csv", event_groups={"product": ["trial", "login"]})
    rules = imported.rules
    assert rules.event_rules == [EventRule("product_events_30d", ["login", "trial"], 30, 3),
                                 EventRule("login_events_first_7d", ["login"], 7, 2, "created"),
                                 EventRule("webinar_events_14d", ["webinar"], 14, 1)]
    assert rules.count_points(rules.event_rules[0]) == [0, 5, 5, 9]
    assert rules.count_points(rules.event_rules[1]) == [0, 0, 6]
    assert rules.count_points(rules.event_rules[2]) == [-2, -2]
    assert all(rules.factor(r.factor).group == "PAIN" for r in rules.event_rules)
    lead = {"seniority": "vp", "product_events_30d": 7, "login_events_first_7d": 1,
            "webinar_events_14d": 0}
    assert score_record(rules, lead)["points"] == 8 + 9 + 0 - 2
    assert any("counted from the event log" in n for n in imported.notes)


def test_an_edited_window_does_not_keep_the_exported_name():
    note = "p_events_30d: in the last 30 days; counted up to 3 occurrences"
    sheet = (HEADER + f"Behavior,events: a,occurred at least,1,14,5,{note}\n"
                      f"Behavior,events: b,occurred at least,1,30,5,{note}\n")
    rules = parse_rules(sheet, "crm.csv").rules
    assert [(r.factor, r.window_days, r.cap) for r in rules.event_rules] == [
        ("a_events_14d", 14, 3), ("p_events_30d", 30, 3)]


def test_a_sheet_exported_before_the_velocity_operator_reads_its_notes():
    note = ("\"p_first_3d: within 3 days of the lead's creation (a count property); counted up "
            "to 2 occurrences\"")
    sheet = HEADER + f"Behavior,events: a,occurred at least,1,3,7,{note}\n"
    assert parse_rules(sheet, "crm.csv").rules.event_rules == [
        EventRule("p_first_3d", ["a"], 3, 2, "created")]


@pytest.mark.parametrize(("row", "message"), [
    ("Behavior,events: a,occurred at least,two,30,5", "row 2 column value: 'two' is not a "
                                                      "whole number >= 0"),
    ("Behavior,events: a,occurred at least,1.5,30,5", "row 2 column value: '1.5'"),
    ("Behavior,events: a,occurred at least,1,0,5", "row 2 column value2: '0' is not a whole "
                                                   "number >= 1"),
    ("Behavior,events: a,occurred at least,1,,5", "row 2 column value2: ''"),
    ("Behavior,login,occurred at least,1,30,5", "row 2 column field: 'login'.*'events: a; b'"),
    ("Behavior,events: ;,occurred at least,1,30,5", "row 2 column field: .* names no event"),
    ("Behavior,events: a,occurred at least,1,30,x", "row 2 column points: 'x' is not a number"),
    ("Behavior,events: a,equals,1,30,5", "row 2 column operator: an 'events: ...' field takes"),
    ("Behavior,events: a,occured at least,1,30,5", "row 2 column operator: 'occured at least'"),
    ("Sales,events: a,occurred at least,1,30,5", "row 2 column score_group: group 'Sales'"),
])
def test_a_bad_event_row_is_one_clear_error(row, message):
    with pytest.raises(UserError, match=message) as caught:
        parse_rules(HEADER + row + ",\n", "crm.csv")
    assert str(caught.value).startswith("crm.csv row 2")


def test_two_rows_of_one_criterion_are_refused():
    sheet = HEADER + ("Behavior,events: a,occurred at least,1,30,5,\n"
                      "Behavior,events: a,occurred at least,1,30,2,\n")
    with pytest.raises(UserError, match="crm.csv row 3: a second 'at least 1' rule"):
        parse_rules(sheet, "crm.csv")


def _hubspot_body(rules: PointsRules) -> dict:
    return json.loads(export(rules, "hubspot"))


@pytest.mark.parametrize(("change", "message"), [
    ({"operator": "LT"}, r"filters\[0\]: an event filter's operator must be GTE"),
    ({"timeframe": {}}, r"filters\[0\]: an event filter needs \"timeframe\""),
    ({"timeframe": {"lastDays": 0}}, r"filters\[0\] timeframe.lastDays: 0 is not a whole"),
    ({"events": []}, r"filters\[0\]: an event filter needs a non-empty \"events\""),
    ({"value": -1}, r"filters\[0\] value: -1 is not a whole number >= 0"),
    ({"eventType": "PAGE_VIEW"}, r"filters\[0\]: eventType 'PAGE_VIEW'"),
])
def test_a_bad_hubspot_event_filter_is_one_clear_error(change, message):
    rules, _, _ = _random_case(0)
    body = _hubspot_body(rules)
    group = next(g for g in body["groupConfigs"] if g["groupCategory"] == "ENGAGEMENT")
    group["ruleConfigurations"][0]["filters"][0].update(change)
    with pytest.raises(UserError, match=r"^rules.json groupConfigs\[1\]\.ruleConfigurations"
                                        r"\[0\]\." + message):
        parse_rules(json.dumps(body), "rules.json")


def test_a_hubspot_velocity_property_without_its_event_rule_is_a_property():
    """A body without ``lead_scoring.event_rules`` (typed in HubSpot): the count property is
    an ordinary property, and ``GTE`` on it is refused with the reason."""
    rules, _, _ = _random_case(0)
    body = _hubspot_body(rules)
    del body["lead_scoring"]["event_rules"]
    with pytest.raises(UserError, match="GTE / LT bounds"):
        parse_rules(json.dumps(body), "rules.json")
