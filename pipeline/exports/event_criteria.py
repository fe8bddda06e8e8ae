"""Behaviour rules as CRM event criteria, and how a CRM applies them (a reference simulator).

A points table of the CRM representation (``PointsRules.event_rules``) says, per behaviour
factor: which events count, in which window (the last ``W`` days before the as-of date, or the
first ``D`` days after creation), up to ``K`` occurrences, and the points of 0, 1, ..., K
occurrences. A CRM holds that as event criteria (:func:`event_criteria`), one per occurrence
whose points change the score: "the lead did one of these events at least ``i`` times in the
window: +``points``". Summed over ``i`` they give exactly the factor's points of the count.
When every occurrence adds the same ``p`` points the rule is the CRM's native "``p`` points
per occurrence, at most ``p * K`` points" (:func:`per_occurrence`).

Where each goes:

* HubSpot (Lead Scoring tool, engagement group): an event criterion with a time frame "in
  the last W days" and the frequency "at least i times", its points once; a rule with equal
  points per occurrence (:func:`per_occurrence`) may be typed instead as one criterion "each
  occurrence p points" with the limit ``p * K`` (the same score). Decay: the time frame is
  the decay (HubSpot lets a group use a time frame or decay, not both). The velocity rule
  (first D days after creation) has no HubSpot time frame: a number property of the
  factor's name, set to 0 at creation and raised by 1 by a workflow on each of these events
  while the lead is younger than D days, makes it a property criterion with a whole-number
  condition.
* Salesforce (Account Engagement / Pardot, or a formula over an activity roll-up): a
  roll-up summary "COUNT of these activities with date >= TODAY() - W" capped at K, and one
  scoring rule per occurrence threshold; the velocity count is a roll-up with date <
  created date + D.
* Marketo: one smart campaign per criterion: trigger "the lead did one of these activities",
  filter "did it at least i times in the past W days", flow "change score by +points"; and a
  daily batch campaign per criterion "did it at least i times in the past W days: no, and got
  the points: yes -> change score by -points" (the scheduled subtraction that is the window).

:func:`simulate_event_points` applies the criteria the way a CRM does, from raw leads
(``lead_id, created_at``) and raw events (``lead_id, event, timestamp``) as of a date, in
plain pandas (it shares no code with the SQL count of :mod:`pipeline.inputs.crm_events`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.errors import UserError
from pipeline.model.rules import EventRule, PointsRules


@dataclass(frozen=True)
class EventCriterion:
    """"Did one of ``events`` at least ``at_least`` times in the window: +``points``"
    (``at_least = 0``: every lead whose window exists gets the points)."""

    factor: str
    events: tuple[str, ...]
    window_days: int
    anchor: str
    at_least: int
    points: int

    def describe(self) -> str:
        names = " or ".join(self.events)
        when = (f"within {self.window_days} days of creation" if self.anchor == "created"
                else f"in the last {self.window_days} days")
        if self.at_least == 0:
            return f"{self.factor}: every lead (0 occurrences of {names} {when})"
        times = "once" if self.at_least == 1 else f"{self.at_least} times"
        return f"{self.factor}: {names} at least {times} {when}"


def event_criteria(rules: PointsRules) -> list[EventCriterion]:
    """The criteria of every event rule, in the table's order: the base (0 occurrences)
    when it is not 0 points, then one per occurrence that adds points."""
    out = []
    for rule in rules.event_rules:
        base, per = rules.occurrence_points(rule)
        steps = [(0, base)] + [(i, d) for i, d in enumerate(per, start=1)]
        out += [EventCriterion(rule.factor, tuple(rule.events), rule.window_days, rule.anchor,
                               i, int(d)) for i, d in steps if d != 0]
    return out


def per_occurrence(rules: PointsRules, rule: EventRule) -> int | None:
    """``p`` when the rule is "p points per occurrence, at most K occurrences" (base 0,
    every occurrence the same points), else None."""
    base, per = rules.occurrence_points(rule)
    return per[0] if base == 0 and per and len(set(per)) == 1 else None


def missing_points(rules: PointsRules, rule: EventRule) -> int:
    """The factor's points for a lead with no window (no creation time, or created after
    the as-of date)."""
    return rules.factor(rule.factor).missing_points


# --------------------------------------------------------------------------- renderers


EVENT_TYPE = "EVENT_OCCURRENCES"
EVENT_FIELD = "events: "  # the CRM sheet's field of an event criterion: "events: a; b"
EVENT_OPERATORS = {"as_of": "occurred at least", "created": "occurred at least after creation"}


def hubspot_event_rules(rules: PointsRules, rule: EventRule) -> list[dict]:
    """HubSpot engagement rule configurations of one event rule: one per criterion, its
    points once, with an event filter ``{"eventType": "EVENT_OCCURRENCES", "events": [...],
    "timeframe": {"lastDays": W}, "operator": "GTE", "value": i}`` ("did one of these events
    at least i times in the last W days"). The velocity rule (no HubSpot time frame after
    creation) is a number property of the factor's name (0 at creation, +1 by a workflow on
    each such event in the first D days) with the whole-number filter ``GTE i``."""
    out = []
    for c in (c for c in event_criteria(rules) if c.factor == rule.factor):
        if c.anchor == "created":
            filters = [{"property": c.factor, "operator": "GTE", "value": str(c.at_least)}
                       if c.at_least else {"property": c.factor, "operator": "HAS_PROPERTY"}]
        else:
            filters = [{"eventType": EVENT_TYPE, "events": list(c.events),
                        "timeframe": {"lastDays": c.window_days}, "operator": "GTE",
                        "value": c.at_least}]
        out.append({"name": c.describe(), "enabled": True, "filters": filters,
                    "configuration": {"calculation": {"type": "CONSTANT", "value": c.points}}})
    return out


def lead_events(leads: pd.DataFrame, events: pd.DataFrame, *, id_column: str = "lead_id",
                created_at_column: str = "created_at") -> dict:
    """Each lead's events as the CRM holds them (index label of ``leads`` -> frame with
    ``event, ts``): those at or after the lead's creation (a lead without a creation time
    has none), for :func:`hubspot_event_filter`."""
    ids = leads[id_column].astype(object).map(lambda v: None if pd.isna(v) else str(v).strip())
    created = _utc_naive(leads[created_at_column])
    ev = pd.DataFrame({"lead_id": events["lead_id"].astype(str).to_numpy(),
                       "event": events["event"].astype(str).to_numpy(),
                       "ts": _utc_naive(events["timestamp"]).to_numpy()}).dropna(subset=["ts"])
    by_lead = dict(tuple(ev.groupby("lead_id")))
    empty = ev.iloc[:0][["event", "ts"]]
    out = {}
    for label, lead, when in zip(leads.index, ids, created, strict=True):
        own = by_lead.get(lead)
        if own is None or pd.isna(when):
            out[label] = empty
        else:
            out[label] = own.loc[own["ts"] >= when, ["event", "ts"]]
    return out


def hubspot_event_filter(events: pd.DataFrame, flt: dict, as_of: pd.Timestamp | None) -> bool:
    """Whether one lead's ``events`` (from :func:`lead_events`) match an event filter of
    :func:`hubspot_event_rules` as of ``as_of``: the occurrences of the named events before
    ``as_of`` in the last ``lastDays`` days, compared to the whole-number ``value``
    (the ``event_criteria`` callable of :func:`pipeline.exports.simulator.simulate_hubspot`)."""
    if as_of is None:
        raise UserError("event criteria need the as-of date")
    as_of = pd.Timestamp(as_of)
    as_of = as_of.tz_convert("UTC").tz_localize(None) if as_of.tzinfo else as_of
    if flt.get("operator") != "GTE" or "lastDays" not in flt.get("timeframe", {}):
        raise ValueError(f"event filter not simulated: {flt}")
    if len(events) == 0:
        n = 0
    else:
        since = as_of - pd.Timedelta(days=int(flt["timeframe"]["lastDays"]))
        ts = events["ts"]
        n = int((events["event"].isin(flt["events"]) & (ts >= since) & (ts < as_of)).sum())
    return n >= int(flt["value"])


def crm_sheet_rows(rules: PointsRules, rule: EventRule) -> list[tuple[str, str, str, str, int,
                                                                      str]]:
    """Rows ``(field, operator, value, value2, points, notes)`` of one event rule for the
    Salesforce / Marketo rules sheet: field ``events: a; b``, operator ``occurred at least``
    (in the last ``value2`` days before the as-of date) or, for the velocity rule, ``occurred
    at least after creation`` (within ``value2`` days of the lead's creation), value the
    occurrences, value2 the window in days; the notes start with the factor's name
    (:mod:`pipeline.exports.event_import` reads every part back)."""
    rows = []
    for c in (c for c in event_criteria(rules) if c.factor == rule.factor):
        field = EVENT_FIELD + "; ".join(c.events)
        when = (f"within {c.window_days} days of the lead's creation (a count property: 0 at "
                f"creation, +1 by a workflow on each such event in the first {c.window_days} "
                "days)" if c.anchor == "created"
                else f"in the last {c.window_days} days (rolling: the points go when the "
                "occurrences age out; Marketo: a daily batch campaign subtracts them)")
        operator = EVENT_OPERATORS[c.anchor]
        rows.append((field, operator, str(c.at_least), str(c.window_days), c.points,
                     f"{c.factor}: {when}; counted up to {rule.cap} occurrences"))
    return rows


# --------------------------------------------------------------------------- simulator


def _utc_naive(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values.astype(object).where(values.notna(), None), errors="coerce",
                            utc=True, format="mixed")
    return stamps.dt.tz_localize(None)


def _as_of_per_lead(as_of: pd.Timestamp | pd.Series, index: pd.Index) -> pd.Series:
    if isinstance(as_of, pd.Series):
        return _utc_naive(as_of.reindex(index))
    stamp = pd.Timestamp(as_of)
    stamp = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
    return pd.Series(stamp, index=index)


def event_counts(rules: PointsRules, leads: pd.DataFrame, events: pd.DataFrame, *,
                 as_of: pd.Timestamp | pd.Series, id_column: str = "lead_id",
                 created_at_column: str = "created_at") -> pd.DataFrame:
    """The occurrences each event rule of ``rules`` counts for each lead, the way a CRM
    counts them: one column per rule's factor (at most the rule's ``cap``; NaN for a lead
    without a window: no id, no creation time, or created after its as-of date), index =
    ``leads``' index. ``as_of`` is one date, or a date per lead (a series indexed like
    ``leads``: the audit's holdout leads each as of their training snapshot). Only events at
    or after the lead's creation and before its as-of date exist for it."""
    for column in (id_column, created_at_column):
        if column not in leads.columns:
            raise UserError(f"leads: column {column!r} not found (needed for event criteria)")
    missing = [c for c in ("lead_id", "event", "timestamp") if c not in events.columns]
    if missing:
        raise UserError(f"events: missing column(s) {missing}; expected lead_id, event, "
                        "timestamp")
    ids = leads[id_column].astype(object).map(lambda v: None if pd.isna(v) else str(v).strip())
    created = _utc_naive(leads[created_at_column])
    stamps = _as_of_per_lead(as_of, leads.index)
    known = (created.notna() & stamps.notna() & (created <= stamps)).to_numpy() & \
        ids.notna().to_numpy()
    ev = pd.DataFrame({"lead_id": events["lead_id"].astype(str).to_numpy(),
                       "event": events["event"].astype(str).to_numpy(),
                       "ts": _utc_naive(events["timestamp"]).to_numpy()})
    ev = ev[ev["ts"].notna()]
    when = pd.DataFrame({"lead_id": ids[known].to_numpy(), "created": created[known].to_numpy(),
                         "as_of": stamps[known].to_numpy()}).drop_duplicates("lead_id")
    ev = ev.merge(when, on="lead_id", how="inner")
    ev = ev[(ev["ts"] >= ev["created"]) & (ev["ts"] < ev["as_of"])]
    out = pd.DataFrame(index=leads.index)
    for rule in rules.event_rules:
        days = pd.Timedelta(days=rule.window_days)
        inside = (ev["ts"] < ev["created"] + days) if rule.anchor == "created" \
            else (ev["ts"] >= ev["as_of"] - days)
        hits = ev[inside & ev["event"].isin(rule.events)].groupby("lead_id").size()
        n = np.minimum(ids.map(hits).fillna(0).to_numpy(dtype="float64"), rule.cap)
        out[rule.factor] = np.where(known, n, np.nan)
    return out


def simulate_event_points(rules: PointsRules, leads: pd.DataFrame, events: pd.DataFrame, *,
                          as_of: pd.Timestamp | pd.Series, id_column: str = "lead_id",
                          created_at_column: str = "created_at") -> pd.DataFrame:
    """The points each event criterion gives each lead as of ``as_of``, the way a CRM applies
    them: one column per event rule's factor (the criteria "at least i times" that hold,
    summed, on the counts of :func:`event_counts`; a lead without a window gets the
    factor's missing points), index = ``leads``' index."""
    counts = event_counts(rules, leads, events, as_of=as_of, id_column=id_column,
                          created_at_column=created_at_column)
    out = pd.DataFrame(index=leads.index)
    criteria = event_criteria(rules)
    for rule in rules.event_rules:
        n = counts[rule.factor].to_numpy()
        known = ~np.isnan(n)
        points = np.zeros(len(leads), dtype="int64")
        for c in (c for c in criteria if c.factor == rule.factor):
            points += np.where(known & (np.nan_to_num(n, nan=-1) >= c.at_least), c.points, 0)
        out[rule.factor] = np.where(known, points, missing_points(rules, rule))
    return out


__all__ = ["EVENT_FIELD", "EVENT_OPERATORS", "EVENT_TYPE", "EventCriterion", "crm_sheet_rows",
           "event_counts", "event_criteria",
           "hubspot_event_filter", "hubspot_event_rules", "lead_events", "missing_points",
           "per_occurrence", "simulate_event_points"]
