"""The ``hubspot`` export: a JSON body for HubSpot lead scoring and the notes on what maps to
what (:data:`HUBSPOT_NOTES`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from pipeline.exports.event_criteria import hubspot_event_rules
from pipeline.exports.table import (
    Rule,
    check_finite,
    factor_rules,
    format_number,
    missing_tokens,
    specials_in_bin,
)
from pipeline.model.rules import FactorRules, PointsRules

HUBSPOT_MAX_SCORE = 100  # the default score limit (HubSpot's smallest total limit)

HUBSPOT_NOTES = """\
HubSpot lead scoring: what this export maps and what you still do by hand
========================================================================

The JSON follows the request body of HubSpot's Lead Scoring API (BETA, version 2026-09-beta:
POST /marketing/lead-scoring/2026-09-beta/scores): "name", "objectTypeId" ("0-1" =
contacts), "maxScore" (the score limit), "groupConfigs" (each "groupCategory",
"groupName", "minValue", "maxValue", "ruleConfigurations"; each rule "enabled" and
"configuration": {"calculation": {"type": "CONSTANT", "value": points}}). The rule
criteria are under each rule's "filters" (and a readable "name"): the documented body has
no criteria schema we could follow, so build the criteria in the tool (or check them against
the API version you call) and drop these two keys before sending. What maps to what:

* FIT factors -> group "FIT"; PAIN factors -> group "ENGAGEMENT". A PAIN factor with an
  event rule (events.representation: crm) becomes event criteria: a filter with
  "eventType": "EVENT_OCCURRENCES", the events, the time frame "lastDays": W and
  "operator": "GTE", "value": i ("did one of these events at least i times in the last W
  days"), worth its points once. When every occurrence is worth the same p points
  (points_per_occurrence in the points table) you may type it as "each occurrence p points"
  with the limit p * K instead: the same score. The time frame is the decay (a HubSpot group
  takes a time frame or decay, not both). The velocity rule (first D days after creation)
  has no HubSpot time frame: a number property of the factor's name, 0 at creation and +1 by
  a workflow on each such event in the first D days, makes it the property criterion
  "GTE i" given here. "lead_scoring.event_rules" lists every event rule (events, window,
  cap, anchor): what `lead-scoring audit` reads the criteria back with.
  Other PAIN factors are property values (counts, flags): build them as property criteria.
* "property" is our column name. Replace it with the HubSpot property's internal name
  (Settings > Properties > the property), e.g. "Original Source" -> "hs_analytics_source".
* A categorical level -> "is equal to" (EQ). Level text must match the HubSpot option's
  internal value, not its label.
* Missing -> "is unknown" (NOT_HAS_PROPERTY); strings listed as missing (e.g. "NA") get a
  second rule "is any of" (IN) with the same points.
* Any other value -> "is none of" (NOT_IN) the levels and missing strings, AND "is known".
* Numeric bins are right-closed: (lo, hi] -> "is greater than lo" AND "is less than or
  equal to hi". HubSpot's "is between" includes both ends, so a value exactly on an edge
  would score twice; keep the two-filter form (AND within one rule needs Enterprise; on
  Professional, nudge the lower bound up by the property's precision instead).
* A special value of a numeric factor (a sentinel such as 999 = "never contacted") is its
  own rule "is equal to" (EQ); the bin it falls in gets "is not equal to" (NEQ) it as an
  extra filter, so the two rules never both match.
* HubSpot adds the points of every rule that matches; our rules of one factor exclude each
  other, so the sum is the same. Rules worth 0 points are left out.
* Score limit: "maxScore" is set by default (the points table's cap, else the export's
  max_score, 100): HubSpot clips totals above it. Leads above the cap tie at it; the
  SDR-ready threshold is below it, so who is SDR-ready does not change (the README gives
  what clipping costs in ranking). Group "minValue" / "maxValue" are the lowest and highest
  totals each group can give (within the points table's own cap), so no group is clipped.
  A floor (the table's score_min) has no place in the body: HubSpot does not raise totals.
* The SDR-ready threshold, probability, grades and decay half-lives are not part of the
  score: set a threshold / decay in the tool by hand (values are under "lead_scoring").
* Spam gate: when "lead_scoring.spam_gate" is true, a lead whose name_spam property is
  "yes" is never SDR-ready, whatever its score. HubSpot scores cannot veto a threshold:
  add "name_spam is not yes" to the workflow or list that hands leads to sales.
* Derived signals (email_domain_type, name_spam, seniority) are computed by lead-scoring
  from the raw columns under "lead_scoring.derived"; sync them as properties first.
"""


def _attainable_range(rules: PointsRules, factors: Sequence[FactorRules]) -> tuple[int, int]:
    """Lowest and highest total the factors can give, clipped to the cap when one is set."""
    lo = sum(min(r.points for r in factor_rules(f)) for f in factors)
    hi = sum(max(r.points for r in factor_rules(f)) for f in factors)

    def clip(x: int) -> int:
        if rules.score_min is not None:
            x = max(x, rules.score_min)
        if rules.score_max is not None:
            x = min(x, rules.score_max)
        return int(x)

    return clip(lo), clip(hi)


def _hubspot_filters(rule: Rule, rules: PointsRules, factor: FactorRules) -> list[dict[str, Any]]:
    prop = rule.factor
    if rule.op == "equals":
        return [{"property": prop, "operator": "EQ", "value": rule.value}]
    if rule.op == "special":
        return [{"property": prop, "operator": "EQ", "value": format_number(rule.value)}]
    not_special = [{"property": prop, "operator": "NEQ", "value": format_number(v)}
                   for v in specials_in_bin(rule, factor)]
    return _hubspot_bin_filters(rule, rules, factor) + not_special


def _hubspot_bin_filters(rule: Rule, rules: PointsRules, factor: FactorRules
                         ) -> list[dict[str, Any]]:
    prop = rule.factor
    if rule.op == "other":
        values = sorted(factor.levels) + [t for t in missing_tokens(rules) if t]
        return [
            {"property": prop, "operator": "HAS_PROPERTY"},
            {"property": prop, "operator": "NOT_IN", "values": values},
        ]
    if rule.op == "any":
        return [{"property": prop, "operator": "HAS_PROPERTY"}]
    if rule.op == "at_most":
        return [{"property": prop, "operator": "LTE", "value": format_number(rule.value)}]
    if rule.op == "greater":
        return [{"property": prop, "operator": "GT", "value": format_number(rule.value)}]
    return [
        {"property": prop, "operator": "GT", "value": format_number(rule.value)},
        {"property": prop, "operator": "LTE", "value": format_number(rule.value2)},
    ]


def hubspot_max_score(rules: PointsRules, max_score: int | None = HUBSPOT_MAX_SCORE) -> int:
    """The score limit the HubSpot export sets: the points table's cap, else ``max_score``,
    never above the highest total the factors can give (nor below the threshold)."""
    highest = _attainable_range(rules, rules.factors)[1]
    cap = rules.score_max if rules.score_max is not None else max_score
    cap = highest if cap is None else min(int(cap), highest)
    return max(cap, int(rules.sdr_threshold))


def export_hubspot(rules: PointsRules, *, max_score: int | None = HUBSPOT_MAX_SCORE) -> str:
    """JSON body for HubSpot's Lead Scoring API (FIT and ENGAGEMENT groups, constant points,
    ``maxScore`` = :func:`hubspot_max_score`). Read :data:`HUBSPOT_NOTES` for what maps to
    what and what stays manual."""
    check_finite(rules)
    limit = hubspot_max_score(rules, max_score)
    tokens = [t for t in missing_tokens(rules) if t]
    groups = []
    for group, category, label in (("FIT", "FIT", "Fit"), ("PAIN", "ENGAGEMENT", "Engagement")):
        factors = [f for f in rules.factors if f.group == group]
        rule_configs: list[dict[str, Any]] = []
        for f in factors:
            event_rule = rules.event_rule(f.name)
            if event_rule is not None:  # a count of events: event criteria, not a property
                rule_configs += hubspot_event_rules(rules, event_rule)
                continue
            for r in factor_rules(f):
                if r.points == 0:
                    continue
                if r.op == "missing":
                    variants = [[{"property": f.name, "operator": "NOT_HAS_PROPERTY"}]]
                    if tokens:
                        variants.append([{"property": f.name, "operator": "IN", "values": tokens}])
                else:
                    variants = [_hubspot_filters(r, rules, f)]
                for filters in variants:
                    rule_configs.append(
                        {
                            "name": f"{f.name} {r.condition}",
                            "enabled": True,
                            "filters": filters,
                            "configuration": {
                                "calculation": {"type": "CONSTANT", "value": r.points}
                            },
                        }
                    )
        lo, hi = _attainable_range(rules, factors)
        groups.append(
            {
                "groupCategory": category,
                "groupName": label,
                "minValue": lo,
                "maxValue": hi,
                "ruleConfigurations": rule_configs,
            }
        )
    body = {
        "name": rules.model_name or "lead-scoring",
        "objectTypeId": "0-1",
        "maxScore": limit,
        "groupConfigs": groups,
        "lead_scoring": {
            "api": "HubSpot Lead Scoring API 2026-09-beta (POST /marketing/lead-scoring/"
                   "2026-09-beta/scores)",
            "score_min": rules.score_min,
            "model_version": rules.model_version,
            "data_hash": rules.data_hash,
            "sdr_threshold": rules.sdr_threshold,
            "grades": rules.grades,
            "decay_half_life_days": rules.decay_half_life_days,
            "spam_gate": rules.spam_gate,
            "derived": rules.to_dict()["derived"],
            "event_rules": [asdict(r) for r in rules.event_rules],
        },
    }
    return json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


__all__ = ["HUBSPOT_MAX_SCORE", "HUBSPOT_NOTES", "export_hubspot", "hubspot_max_score"]
