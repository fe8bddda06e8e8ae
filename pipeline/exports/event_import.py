"""Event criteria read back from a rule sheet into event rules (:mod:`pipeline.exports.importers`).

An event criterion is "the lead did one of these events at least ``i`` times in the window:
+``points``" (:class:`pipeline.exports.event_criteria.EventCriterion`). The criteria of one
(events, window, anchor) are one factor of the points table counted from the raw event log
(:class:`pipeline.model.rules.EventRule`): its bins give 0, 1, ..., ``cap`` occurrences
the sum of the criteria that hold (a criterion ``at least 0`` holds for every lead with a
window), and a lead without a window (no creation time) scores 0, what a CRM gives a record
no criterion matches. ``cap`` is the largest ``i`` of the criteria, or the ``counted up to
K`` the export's notes give when larger: past it no criterion adds points.

Where the criteria come from:

* the CRM sheet: field ``events: a; b``, operator ``occurred at least`` (in the last
  ``value2`` days) or ``occurred at least after creation`` (within ``value2`` days of the
  lead's creation: the velocity rule; a sheet written before that operator existed says it
  in the notes, "days of the lead's creation"), value ``i``;
* HubSpot: a filter ``{"eventType": "EVENT_OCCURRENCES", "events": [...], "timeframe":
  {"lastDays": W}, "operator": "GTE", "value": i}``; the velocity rule is a number property
  (``GTE i``, or ``HAS_PROPERTY`` for ``i = 0``) named in the body's
  ``lead_scoring.event_rules`` with ``anchor: created``.

The factor's name: ``<group>_events_<W>d`` / ``<group>_events_first_<D>d`` when the events
are exactly one of the config's ``events.groups`` (the learned table's names), else the
export's (the notes' or the HubSpot rule name's ``name:`` prefix, unless its days disagree
with the window), else made of the event names; a name another factor or rule of the file
already has gets a ``_2``, ``_3``, ... suffix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import UserError
from pipeline.exports.event_criteria import EVENT_FIELD, EVENT_OPERATORS
from pipeline.model.rules import ANCHORS, EventRule, FactorRules

SHEET_OPERATORS = {v: k for k, v in EVENT_OPERATORS.items()}
_NAME = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*:")
_CAP = re.compile(r"counted up to (\d+) occurrences")
_OLD_VELOCITY = "days of the lead's creation"


@dataclass
class EventConditions:
    """The criteria read for one (events, window, anchor)."""

    events: tuple[str, ...]
    window_days: int
    anchor: str
    group: str
    name_hint: str | None
    where: str
    criteria: dict[int, int] = field(default_factory=dict)  # at least i -> points
    cap_hint: int = 0


def whole_cell(text: object, where: str, *, least: int) -> int:
    """A whole number at least ``least`` (a count or a number of days)."""
    try:
        value = float(str(text).strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not value.is_integer() or value < least:
        raise UserError(f"{where}: {text!r} is not a whole number >= {least}")
    return int(value)


def sheet_events(field_text: str, where: str) -> tuple[str, ...]:
    """The events of a sheet field ``events: a; b``."""
    if not field_text.strip().casefold().startswith(EVENT_FIELD.strip()):
        raise UserError(f"{where} column field: {field_text!r}: an 'occurred at least' rule "
                        f"counts events, its field is '{EVENT_FIELD}a; b'")
    names = [e.strip() for e in field_text.strip()[len(EVENT_FIELD.strip()):].split(";")]
    names = [e for e in names if e]
    if not names:
        raise UserError(f"{where} column field: {field_text!r} names no event",
                        hint=f"write the events counted as '{EVENT_FIELD}a; b'")
    return tuple(names)


def name_hint(text: str) -> str | None:
    """The factor name a note or a rule name starts with (``product_events_30d: ...``)."""
    match = _NAME.match(text or "")
    return match.group(1) if match else None


class EventCollector:
    """The event criteria of one file, in the order first seen."""

    def __init__(self) -> None:
        self.rules: dict[tuple[tuple[str, ...], int, str], EventConditions] = {}

    def add(self, events: Sequence[str], window_days: int, anchor: str, at_least: int,
            points: int, *, group: str, where: str, note: str = "") -> None:
        if anchor not in ANCHORS:
            raise UserError(f"{where}: anchor {anchor!r} is not one of {', '.join(ANCHORS)}")
        key = (tuple(sorted(set(events))), int(window_days), anchor)
        rule = self.rules.setdefault(key, EventConditions(
            tuple(dict.fromkeys(events)), int(window_days), anchor, group, name_hint(note),
            where))
        if rule.group != group:
            raise UserError(f"{where}: these events are in group {group} here and "
                            f"{rule.group} in an earlier rule", hint="keep each rule in one "
                                                                     "group")
        if at_least in rule.criteria:
            raise UserError(f"{where}: a second 'at least {at_least}' rule for the same "
                            "events and window", hint="one rule per number of occurrences: "
                                                      "add their points")
        rule.criteria[at_least] = int(points)
        cap = _CAP.search(note or "")
        if cap:
            rule.cap_hint = max(rule.cap_hint, int(cap.group(1)))

    def add_sheet_row(self, row: Mapping[str, str], group: str, points: int, where: str
                      ) -> None:
        """One CRM sheet row whose operator is an event operator."""
        anchor = SHEET_OPERATORS[row["operator"].strip().casefold()]
        note = row.get("notes", "") or ""
        if anchor == "as_of" and _OLD_VELOCITY in note:
            anchor = "created"
        self.add(sheet_events(row["field"], where), whole_cell(
            row.get("value2", ""), f"{where} column value2", least=1), anchor,
            whole_cell(row.get("value", ""), f"{where} column value", least=0), points,
            group=group, where=where, note=note)

    def build(self, taken: Sequence[str], groups: Mapping[str, Sequence[str]]
              ) -> tuple[list[FactorRules], list[EventRule]]:
        """The factors and their event rules (names not in ``taken``)."""
        used = set(taken)
        factors, rules = [], []
        for (_, window, anchor), c in self.rules.items():
            name = _unique(_name(c, groups), used)
            used.add(name)
            cap = max(1, max(c.criteria), c.cap_hint)
            points = [sum(p for i, p in c.criteria.items() if i <= k) for k in range(cap + 1)]
            factors.append(FactorRules(name, c.group, "numeric",
                                       edges=[float(k) for k in range(cap)],
                                       bin_points=points, missing_points=0))
            rules.append(EventRule(name, list(c.events), window, cap, anchor))
        return factors, rules


def _name(c: EventConditions, groups: Mapping[str, Sequence[str]]) -> str:
    """The config group's name for these events, else the hint unless its days disagree
    with the window (a sheet whose window was edited, its notes not), else the events'."""
    from pipeline.inputs.crm_events import recent_column, velocity_column

    def named(label: str) -> str:
        return (velocity_column(label, c.window_days) if c.anchor == "created"
                else recent_column(label, c.window_days))

    label = next((g for g, names in sorted(groups.items()) if set(names) == set(c.events)),
                 None)
    if label is not None:
        return named(label)
    days = re.search(r"_(first_)?(\d+)d$", c.name_hint or "")
    if c.name_hint and (days is None or (int(days.group(2)) == c.window_days
                                         and bool(days.group(1)) == (c.anchor == "created"))):
        return c.name_hint
    return named("_".join(re.sub(r"\W+", "_", e).strip("_") or "event" for e in c.events))


def _unique(name: str, used: set[str]) -> str:
    out, k = name, 2
    while out in used:
        out, k = f"{name}_{k}", k + 1
    return out


def hubspot_event_filter(flt: Mapping[str, object], where: str) -> tuple[tuple[str, ...], int,
                                                                         int]:
    """``(events, lastDays, at least)`` of a HubSpot event filter."""
    from pipeline.exports.event_criteria import EVENT_TYPE

    if flt.get("eventType") != EVENT_TYPE:
        raise UserError(f"{where}: eventType {flt.get('eventType')!r} is not {EVENT_TYPE}")
    if flt.get("operator") != "GTE":
        raise UserError(f"{where}: an event filter's operator must be GTE (at least), got "
                        f"{flt.get('operator')!r}")
    frame = flt.get("timeframe") or {}
    if not isinstance(frame, Mapping) or "lastDays" not in frame:
        raise UserError(f"{where}: an event filter needs \"timeframe\": {{\"lastDays\": W}}")
    events = flt.get("events")
    if not isinstance(events, list) or not events:
        raise UserError(f"{where}: an event filter needs a non-empty \"events\" list")
    return (tuple(str(e) for e in events),
            whole_cell(frame["lastDays"], f"{where} timeframe.lastDays", least=1),
            whole_cell(flt.get("value"), f"{where} value", least=0))


def velocity_properties(meta: Mapping[str, object], where: str) -> dict[str, EventRule]:
    """The event rules a HubSpot body's ``lead_scoring.event_rules`` describes, by factor
    name: a velocity rule's factor is a number property, an as-of rule's gives its cap."""
    out = {}
    for i, data in enumerate(meta.get("event_rules") or []):
        try:
            rule = EventRule(**{k: v for k, v in dict(data).items()
                                if k in ("factor", "events", "window_days", "cap", "anchor")})
        except (TypeError, ValueError) as exc:
            raise UserError(f"{where} lead_scoring.event_rules[{i}]: {exc}") from None
        out[rule.factor] = rule
    return out


def hubspot_event_rule(events: EventCollector, rule: Mapping[str, Any], category: str,
                       counted: Mapping[str, EventRule], where: str, points: int) -> None:
    """A rule whose filter is an event criterion (one filter: the rule holds when it does)."""
    filters = rule.get("filters") or []
    if len(filters) != 1:
        raise UserError(f"{where}: an event criterion must be its rule's only filter",
                        hint="a rule combining events and properties cannot be one "
                             "points-table factor; split it")
    names, days, at_least = hubspot_event_filter(filters[0], f"{where}.filters[0]")
    label = str(rule.get("name", ""))
    known = counted.get(name_hint(label) or "")
    if known is not None and set(known.events) == set(names) and known.window_days == days:
        label += f"; counted up to {known.cap} occurrences"
    events.add(names, days, "as_of", at_least, points, group=category,
               where=where, note=label)


def hubspot_velocity_rule(events: EventCollector, filters: list[dict[str, Any]],
                          velocity: EventRule, category: str, points: int, where: str) -> None:
    """A rule on a velocity count property (``GTE i``, or ``HAS_PROPERTY`` for ``i = 0``)."""
    if len(filters) != 1 or filters[0].get("operator") not in ("GTE", "HAS_PROPERTY"):
        raise UserError(f"{where}: {velocity.factor} counts events within "
                        f"{velocity.window_days} days of creation: its rule is one filter, "
                        "GTE (at least) or HAS_PROPERTY")
    flt = filters[0]
    at_least = 0 if flt["operator"] == "HAS_PROPERTY" else \
        whole_cell(flt.get("value"), f"{where}.filters[0] value", least=0)
    events.add(velocity.events, velocity.window_days, "created", at_least, points,
               group=category, where=where,
               note=f"{velocity.factor}: counted up to {velocity.cap} occurrences")


__all__ = ["SHEET_OPERATORS", "EventCollector", "EventConditions", "hubspot_event_filter",
           "hubspot_event_rule", "hubspot_velocity_rule", "name_hint", "sheet_events",
           "velocity_properties", "whole_cell"]
