"""Trust figures of a points table: what a person reading its rules has to take in, and where
its points say something the data does not.

* how many rules each export lists (the full table, the HubSpot body, the CRM sheet) and how
  many rules worth 0 the CRM sheet leaves out;
* the longest threshold (most significant digits of a numeric edge or special value);
* direction changes per ordered (numeric) factor: how often the points of adjacent bins turn
  from rising to falling or back, against the same count for the lift table's shrunk rates
  (more turns in the points than in the data: the zig-zag is the fit's, not the leads');
* the largest points on a level with fewer than ``analysis.min_leads`` training leads.

All functions are pure: they read a :class:`pipeline.model.rules.PointsRules`, the lift table and
the points table and return numbers or frames; :func:`trust_table` gathers them in the
``trust_rules.csv`` artifact and the report's "Trust" section.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.analysis.levels import MISSING, OTHER, significant_digits
from pipeline.exports.crm_sheet import crm_rules, crm_zero_rules
from pipeline.exports.hubspot import export_hubspot
from pipeline.exports.table import factor_rules
from pipeline.model.rules import PointsRules

TRUST_COLUMNS = ["figure", "factor", "value", "detail"]


def crm_rule_count(rules: PointsRules) -> int:
    """Rows of the CRM sheet (``crm_scoring_rules.csv``): one per listed rule."""
    return sum(len(crm_rules(f)) for f in rules.factors)


def crm_zero_count(rules: PointsRules) -> int:
    """Rules worth 0 points the CRM sheet leaves out."""
    return sum(crm_zero_rules(f) for f in rules.factors)


def table_rule_count(rules: PointsRules) -> int:
    """Rules of the full table (the ``csv`` export: every level, bin, missing and other)."""
    return sum(len(factor_rules(f)) for f in rules.factors)


def hubspot_rule_count(rules: PointsRules) -> int:
    """Rule configurations of the HubSpot body (rules worth 0 are left out there too)."""
    body = json.loads(export_hubspot(rules))
    return sum(len(g["ruleConfigurations"]) for g in body["groupConfigs"])


def thresholds(rules: PointsRules) -> list[tuple[str, float]]:
    """``(factor, value)`` of every numeric threshold: bin edges and special values."""
    out = []
    for f in rules.factors:
        if f.kind == "numeric":
            out += [(f.name, float(e)) for e in f.edges]
            out += [(f.name, v) for v, _, _ in f.special_values()]
    return out


def longest_threshold(rules: PointsRules) -> tuple[str, float, int] | None:
    """``(factor, value, significant digits)`` of the threshold with the most significant
    digits (the first such in table order), or None without numeric thresholds."""
    found = None
    for name, value in thresholds(rules):
        digits = significant_digits(value)
        if found is None or digits > found[2]:
            found = (name, value, digits)
    return found


def direction_changes(values: Sequence[float]) -> int:
    """How often a sequence turns from rising to falling or back (flat steps skipped):
    ``[1, 3, 2, 5]`` turns twice, ``[1, 1, 2, 3]`` never."""
    steps = np.sign(np.diff(np.asarray(values, dtype=float)))
    steps = steps[steps != 0]
    return int(np.count_nonzero(steps[1:] != steps[:-1])) if steps.size > 1 else 0


def lift_bin_rates(lift: pd.DataFrame, factor: str) -> list[float]:
    """The shrunk conversion rates of a numeric factor's bins, in bin order (the lift table
    lists bins first; special values, ``(other)`` and ``(missing)`` are not bins)."""
    rows = lift[(lift["attribute"] == factor) & (lift["kind"] == "numeric")]
    bins = rows[~rows["level"].astype(str).str.startswith("= ")
                & ~rows["level"].isin([MISSING, OTHER])]
    return bins["shrunk_rate"].astype(float).tolist()


def direction_table(rules: PointsRules, lift: pd.DataFrame | None) -> pd.DataFrame:
    """Per numeric factor: bins in the table, direction changes of its bin points, and of
    its bins' shrunk rates in the lift table (NaN when the lift table does not have it)."""
    rows = []
    for f in rules.factors:
        if f.kind != "numeric":
            continue
        rates = lift_bin_rates(lift, f.name) if lift is not None and len(lift) else []
        rows.append({"factor": f.name, "bins": len(f.bin_points),
                     "points_changes": direction_changes(f.bin_points),
                     "lift_changes": direction_changes(rates) if rates else np.nan})
    return pd.DataFrame(rows, columns=["factor", "bins", "points_changes", "lift_changes"])


def largest_points_under(points_table: pd.DataFrame, min_leads: int
                         ) -> tuple[str, str, int, int] | None:
    """``(factor, level, points, leads)`` of the level with the most points (in absolute
    value) among the levels with at least one but fewer than ``min_leads`` training leads,
    or None when every level has enough leads (or the table is empty: no signal)."""
    if not {"leads", "points"} <= set(points_table.columns):
        return None
    table = points_table[(points_table["leads"] > 0) & (points_table["leads"] < min_leads)]
    if not len(table):
        return None
    row = table.loc[table["points"].abs().idxmax()]
    return str(row["factor"]), str(row["level"]), int(row["points"]), int(row["leads"])


def trust_table(rules: PointsRules, *, lift: pd.DataFrame | None = None,
                points_table: pd.DataFrame | None = None, min_leads: int = 30
                ) -> pd.DataFrame:
    """Every trust figure as a row ``figure, factor, value, detail`` (``factor`` empty for
    the figures of the whole table): rule counts, 0 rules left out, the longest threshold,
    direction changes per numeric factor (points and lift) and the largest points on a
    level under ``min_leads`` leads."""
    rows: list[dict] = [
        {"figure": "rules_table", "factor": "", "value": table_rule_count(rules),
         "detail": "rules of the full points table (csv / json export)"},
        {"figure": "rules_hubspot", "factor": "", "value": hubspot_rule_count(rules),
         "detail": "rule configurations of the HubSpot body"},
        {"figure": "rules_crm_sheet", "factor": "", "value": crm_rule_count(rules),
         "detail": "rows of crm_scoring_rules.csv"},
        {"figure": "zero_rules_omitted", "factor": "", "value": crm_zero_count(rules),
         "detail": "rules worth 0 points left out of the CRM sheet (0 is the default)"},
    ]
    longest = longest_threshold(rules)
    rows.append({"figure": "longest_threshold_digits",
                 "factor": longest[0] if longest else "",
                 "value": longest[2] if longest else 0,
                 "detail": f"significant digits of {longest[1]:g}" if longest
                 else "no numeric threshold"})
    for r in direction_table(rules, lift).itertuples():
        rows.append({"figure": "direction_changes_points", "factor": r.factor,
                     "value": r.points_changes, "detail": f"over {r.bins} bins"})
        if not np.isnan(r.lift_changes):
            rows.append({"figure": "direction_changes_lift", "factor": r.factor,
                         "value": int(r.lift_changes),
                         "detail": "shrunk conversion rates of the lift table's bins"})
    under = largest_points_under(points_table, min_leads) if points_table is not None else None
    rows.append({"figure": "max_points_under_min_leads", "factor": under[0] if under else "",
                 "value": under[2] if under else 0,
                 "detail": (f"level {under[1]!r} with {under[3]} leads (< {min_leads})" if under
                            else f"every level has at least {min_leads} leads")})
    return pd.DataFrame(rows, columns=TRUST_COLUMNS)
