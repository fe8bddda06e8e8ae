"""A reference simulator of a CRM's rule-based scoring: it applies an exported HubSpot rule set
(:func:`pipeline.exports.hubspot.export_hubspot`) to leads the way HubSpot's lead scoring tool
does, so that an export can be checked lead by lead against ``lead-scoring score`` before
anyone types it into a CRM.

The semantics simulated (HubSpot's lead scoring tool, as its documentation describes it):

* a record's **properties** are what the CRM stores: text trimmed, a blank value is "unknown"
  (no value); the derived signals (``email_domain_type``, ``name_spam``, ``seniority``) and,
  until they are event criteria, the event features are properties synced from lead-scoring
  (:func:`crm_properties` makes them from raw leads and raw events as of a date);
* a **rule** matches when every one of its filters matches (AND); filters: ``HAS_PROPERTY``,
  ``NOT_HAS_PROPERTY`` (unknown), ``EQ`` / ``NEQ`` (text, or numbers when both sides are
  numbers), ``IN`` / ``NOT_IN``, ``GT`` / ``GTE`` / ``LT`` / ``LTE`` (numbers; an unknown or
  non-numeric value matches none of them, nor ``EQ``, ``IN``, ``NOT_IN``);
* a **group** adds the points of every matching rule, clipped to its ``minValue`` /
  ``maxValue``; the **score** adds the groups and is clipped to ``maxScore``;
* **SDR-ready** is the hand-off rule built beside the score: score at least
  ``lead_scoring.sdr_threshold`` and, with the spam gate, ``name_spam`` not ``yes``.

Extension point: a rule whose ``filters`` hold an event criterion (a filter with an
``"eventType"`` key) is evaluated by the ``event_criteria`` callable given to
:func:`simulate_hubspot` (events of one lead, the criterion, the as-of date -> bool); without
one such a rule is refused. The event-criteria representation (issue 23) plugs in there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline.model.rules import PointsRules

EventCriterion = Callable[[pd.DataFrame, Mapping[str, Any], pd.Timestamp | None], bool]
SIMULATED_COLUMNS = ["fit", "pain", "points", "sdr_ready"]
_GROUP_COLUMN = {"FIT": "fit", "ENGAGEMENT": "pain"}


def _unknown(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    try:
        x = float(str(value).strip())
    except ValueError:
        return None
    return None if math.isnan(x) else x


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    x = _number(value)
    if x is not None and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return str(value)


def _equal(value: Any, target: Any) -> bool:
    if _text(value) == _text(target):
        return True
    a, b = _number(value), _number(target)
    return a is not None and b is not None and a == b


def filter_matches(flt: Mapping[str, Any], value: Any) -> bool:
    """Whether one property filter matches a record whose property holds ``value``."""
    op = flt["operator"]
    if op == "HAS_PROPERTY":
        return not _unknown(value)
    if op == "NOT_HAS_PROPERTY":
        return _unknown(value)
    if _unknown(value):
        return False
    if op == "EQ":
        return _equal(value, flt["value"])
    if op == "NEQ":
        return not _equal(value, flt["value"])
    if op == "IN":
        return any(_equal(value, v) for v in flt["values"])
    if op == "NOT_IN":
        return not any(_equal(value, v) for v in flt["values"])
    x, bound = _number(value), _number(flt["value"])
    if x is None or bound is None:
        return False
    compare = {"GT": x > bound, "GTE": x >= bound, "LT": x < bound, "LTE": x <= bound}
    if op not in compare:
        raise ValueError(f"filter operator {op!r} is not one the simulator knows")
    return compare[op]


def _rule_matches(rule: Mapping[str, Any], record: Mapping[str, Any],
                  events: pd.DataFrame | None, as_of: pd.Timestamp | None,
                  event_criteria: EventCriterion | None) -> bool:
    for flt in rule.get("filters", []):
        if "eventType" in flt:
            if event_criteria is None:
                raise ValueError(f"rule {rule.get('name', '?')!r} has an event criterion: "
                                 "pass event_criteria to simulate it")
            if not event_criteria(events if events is not None else pd.DataFrame(), flt, as_of):
                return False
        elif not filter_matches(flt, record.get(flt["property"])):
            return False
    return True


def simulate_hubspot(body: Mapping[str, Any], properties: pd.DataFrame, *,
                     events: Mapping[Any, pd.DataFrame] | None = None,
                     as_of: pd.Timestamp | None = None,
                     event_criteria: EventCriterion | None = None) -> pd.DataFrame:
    """Score each record of ``properties`` (one row per lead, a column per CRM property) with
    the HubSpot rule set ``body``: ``fit`` and ``pain`` (the FIT and ENGAGEMENT groups, each
    clipped to its limits), ``points`` (clipped to ``maxScore``) and ``sdr_ready``, indexed
    like ``properties``. ``events`` maps a record's index label to its events (for event
    criteria, with ``as_of``)."""
    settings = body.get("lead_scoring", {})
    threshold = int(settings.get("sdr_threshold", 0))
    gate = bool(settings.get("spam_gate", False))
    limit = body.get("maxScore")
    rows = []
    for label, record in zip(properties.index, properties.to_dict("records"), strict=True):
        own = (events or {}).get(label)
        totals = {"fit": 0, "pain": 0}
        for group in body["groupConfigs"]:
            total = sum(int(r["configuration"]["calculation"]["value"])
                        for r in group["ruleConfigurations"]
                        if r.get("enabled", True)
                        and _rule_matches(r, record, own, as_of, event_criteria))
            total = min(max(total, group.get("minValue", total)), group.get("maxValue", total))
            totals[_GROUP_COLUMN[group["groupCategory"]]] += total
        points = totals["fit"] + totals["pain"]
        if limit is not None:
            points = min(points, int(limit))
        spam = gate and not _unknown(record.get("name_spam")) and \
            _text(record.get("name_spam")) == "yes"
        rows.append({**totals, "points": points, "sdr_ready": points >= threshold and not spam})
    out = pd.DataFrame(rows, columns=SIMULATED_COLUMNS, index=properties.index)
    return out.astype({"fit": "int64", "pain": "int64", "points": "int64", "sdr_ready": "bool"})


def crm_properties(raw: pd.DataFrame, rules: PointsRules, settings: Any, *,
                   events: pd.DataFrame | Any | None = None,
                   as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """What the CRM holds for raw leads on ``as_of``: the raw columns trimmed, plus the
    properties lead-scoring syncs (derived signals; event features at ``as_of`` from the raw
    ``events``). ``settings`` is a :class:`pipeline.inputs.features.FeatureSettings`."""
    from pipeline.inputs.features import scoring_features

    return scoring_features(raw, rules, settings, events=events, as_of=as_of)


def simulated_mismatches(simulated: pd.DataFrame, scored: pd.DataFrame, *,
                         max_score: int | None,
                         columns: Sequence[str] = ("fit", "pain", "points", "sdr_ready")) -> int:
    """How many leads the simulator scores differently from ``lead-scoring score`` output
    ``scored`` (same index), its points clipped at the HubSpot limit ``max_score``."""
    expected = scored.copy()
    if max_score is not None:
        expected["points"] = np.minimum(expected["points"].astype("int64"), int(max_score))
    bad = np.zeros(len(simulated), dtype=bool)
    for c in columns:
        bad |= simulated[c].to_numpy() != expected[c].to_numpy()
    return int(bad.sum())


__all__ = ["SIMULATED_COLUMNS", "EventCriterion", "crm_properties", "filter_matches",
           "simulate_hubspot", "simulated_mismatches"]
