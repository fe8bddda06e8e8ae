"""The points table as a flat list of rules (one row per condition), shared by every
format, and the two data formats: ``json`` (the versioned points-table document) and ``csv``.

Every format in :mod:`pipeline.exports` is a pure function ``PointsRules -> str`` that encodes
the reference semantics of :func:`pipeline.model.reference.score_record` (missing values first,
exact level match, unseen levels, right-closed numeric bins, FIT + PAIN, optional cap,
probability, SDR-ready). The SQL, PMML and Python exports are executable and checked lead by
lead against the reference in :mod:`pipeline.exports.verify`; the CSV, HubSpot and CRM sheets
are instructions for people and say where a builder cannot express the rule exactly.

Text is deterministic: the same rules give the same bytes (levels are emitted sorted, as
:meth:`PointsRules.to_json` sorts them), so exports diff cleanly in version control.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import pandas as pd

from pipeline.model.rules import SCHEMA_VERSION, FactorRules, PointsRules

SCHEMA_RESOURCE = "points_table.schema.json"


# --------------------------------------------------------------------------------------------
# The rules as a flat list: one row per condition, shared by csv, crm-csv, hubspot, pmml, diff
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One condition of one factor and the points it gives.

    ``op`` is one of ``equals`` (``value`` is the level), ``any_of`` (``value`` is a tuple of
    levels; CRM sheets only, :func:`crm_rules`), ``missing``, ``other`` (categorical:
    any other non-missing value), ``special`` (numeric: ``x == value``, a sentinel such as
    999, matched before the bins), ``at_most`` (``x <= value``), ``between`` (``value < x <=
    value2``), ``greater`` (``x > value``) and ``any`` (a numeric factor without edges).
    """

    factor: str
    group: str
    kind: str
    op: str
    value: str | float | tuple[str, ...] | None
    value2: float | None
    points: int

    @property
    def condition(self) -> str:
        """Readable condition, e.g. ``= "Lead Add Form"``, ``is missing``, ``> 3 and <= 7``."""
        if self.op == "equals":
            return f"= {quote_text(str(self.value))}"
        if self.op == "any_of":
            return "is any of " + ", ".join(quote_text(str(v)) for v in self.value)
        if self.op == "missing":
            return "is missing"
        if self.op == "other":
            return "is any other value"
        if self.op == "any":
            return "is any number"
        if self.op == "special":
            return f"= {format_number(self.value)}"
        if self.op == "at_most":
            return f"<= {format_number(self.value)}"
        if self.op == "greater":
            return f"> {format_number(self.value)}"
        return f"> {format_number(self.value)} and <= {format_number(self.value2)}"


def factor_rules(factor: FactorRules) -> list[Rule]:
    """The conditions of one factor in reading order: levels (sorted), or special values
    (ascending) then bins, then missing, then (categorical only) any other value. A special
    value is matched before the bins: a reader applies the first condition that holds,
    after "is missing"."""

    def rule(op: str, points: int, value: Any = None, value2: float | None = None) -> Rule:
        return Rule(factor.name, factor.group, factor.kind, op, value, value2, int(points))

    out: list[Rule] = []
    if factor.kind == "categorical":
        out += [rule("equals", factor.levels[level], level) for level in sorted(factor.levels)]
        out.append(rule("missing", factor.missing_points))
        out.append(rule("other", factor.unseen_points))
        return out
    out += [rule("special", pts, value) for value, pts, _ in factor.special_values()]
    edges = [float(e) for e in factor.edges]
    if not edges:
        out.append(rule("any", factor.bin_points[0]))
    for i, pts in enumerate(factor.bin_points):
        if not edges:
            break
        if i == 0:
            out.append(rule("at_most", pts, edges[0]))
        elif i == len(edges):
            out.append(rule("greater", pts, edges[-1]))
        else:
            out.append(rule("between", pts, edges[i - 1], edges[i]))
    out.append(rule("missing", factor.missing_points))
    return out


def rules_table(rules: PointsRules) -> pd.DataFrame:
    """Tidy points table: one row per rule, columns ``factor, group, condition, points``."""
    rows = [
        {"factor": r.factor, "group": r.group, "condition": r.condition, "points": r.points}
        for f in rules.factors
        for r in factor_rules(f)
    ]
    return pd.DataFrame(rows, columns=["factor", "group", "condition", "points"]).astype(
        {"points": "int64"}
    )


def format_number(x: float | int | None) -> str:
    """Shortest exact text for a number: ``3`` for 3.0, else ``repr`` (round-trips exactly)."""
    if x is None:
        return ""
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def quote_text(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def check_finite(rules: PointsRules) -> None:
    for f in rules.factors:
        for e in f.edges:
            if not math.isfinite(float(e)):
                raise ValueError(f"factor {f.name!r}: edges must be finite numbers, got {e!r}")
    for name in ("prob_intercept", "prob_slope"):
        value = getattr(rules, name)
        if not math.isfinite(float(value)):
            raise ValueError(f"{name} must be a finite number, got {value!r}")


def factor_kinds(rules: PointsRules) -> dict[str, str]:
    """Each factor column's kind (``categorical`` / ``numeric``), in factor order; a column
    read both ways is refused (an export has one field type per column)."""
    kinds: dict[str, str] = {}
    for f in rules.factors:
        if kinds.setdefault(f.name, f.kind) != f.kind:
            raise ValueError(f"column {f.name!r} is used both as categorical and as numeric")
    return kinds


def missing_tokens(rules: PointsRules) -> list[str]:
    """``""`` plus the configured missing-value strings, deduplicated in order."""
    return list(dict.fromkeys(["", *rules.missing_values]))


# --------------------------------------------------------------------------------------------
# json
# --------------------------------------------------------------------------------------------


@cache
def _schema_text() -> str:
    return resources.files("pipeline").joinpath("resources", SCHEMA_RESOURCE).read_text("utf-8")


def points_table_schema() -> dict[str, Any]:
    """The JSON Schema (Draft 2020-12) of the ``json`` export, as shipped in the package."""
    return json.loads(_schema_text())


def export_json(rules: PointsRules) -> str:
    """``rules.to_json()``: the versioned points-table document described by the shipped schema.

    Refuses non-finite numbers (JSON has no NaN/Infinity), so the output always parses.
    """
    check_finite(rules)
    json.dumps(rules.to_dict(), allow_nan=False)  # raises ValueError on NaN/inf anywhere
    return rules.to_json()


# --------------------------------------------------------------------------------------------
# csv
# --------------------------------------------------------------------------------------------


def export_csv(rules: PointsRules) -> str:
    """One row per rule: ``factor, group, condition, points`` (RFC 4180 quoting).

    A data file: conditions start with ``=``, which spreadsheets read as formulas; for a
    sheet to open in Excel use ``crm-csv``.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["factor", "group", "condition", "points"])
    for f in rules.factors:
        for r in factor_rules(f):
            writer.writerow([r.factor, r.group, r.condition, r.points])
    return buf.getvalue()


def specials_in_bin(rule: Rule, factor: FactorRules) -> list[float]:
    """The special values of ``factor`` that lie in the bin of ``rule`` (a numeric bin rule):
    a builder that adds up every matching rule must exclude them from the bin."""
    def inside(x: float) -> bool:
        if rule.op == "at_most":
            return x <= float(rule.value)
        if rule.op == "greater":
            return x > float(rule.value)
        if rule.op == "between":
            return float(rule.value) < x <= float(rule.value2)
        return rule.op == "any"

    return [value for value, _, _ in factor.special_values() if inside(value)]


__all__ = [
    "SCHEMA_RESOURCE",
    "SCHEMA_VERSION",
    "Rule",
    "check_finite",
    "export_csv",
    "export_json",
    "factor_rules",
    "format_number",
    "missing_tokens",
    "points_table_schema",
    "quote_text",
    "rules_table",
    "specials_in_bin",
]
