"""Export a points table to rule-based scorers: JSON, CSV, SQL, PMML, Python, HubSpot, CRM sheet.

Every format is a pure function ``PointsRules -> str`` that encodes the reference semantics of
:func:`pipeline.model.rules.score_record` (missing values first, exact level match, unseen levels,
right-closed numeric bins, FIT + PAIN, optional cap, probability, SDR-ready). The SQL, PMML and
Python exports are executable and checked lead by lead against the reference in
:mod:`pipeline.exports.verify`; the CSV, HubSpot and CRM sheets are instructions for people and say
where a builder cannot express the rule exactly.

Text is deterministic: the same rules give the same bytes (levels are emitted sorted, as
:meth:`PointsRules.to_json` sorts them), so exports diff cleanly in version control.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import pprint
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.model.rules import SCHEMA_VERSION, FactorRules, PointsRules

FORMATS = ("json", "csv", "sql", "pmml", "python", "hubspot", "crm-csv")
SQL_DIALECTS = ("duckdb", "postgres", "spark")
FILE_NAMES = {
    "json": "points_table.json",
    "csv": "points_table.csv",
    "sql": "score_leads.sql",
    "pmml": "points_table.pmml",
    "python": "score_leads.py",
    "hubspot": "hubspot_lead_score.json",
    "crm-csv": "crm_scoring_rules.csv",
}
SCHEMA_RESOURCE = "points_table.schema.json"
PMML_NAMESPACE = "http://www.dmg.org/PMML-4_4"


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
            return f"= {_quote(str(self.value))}"
        if self.op == "any_of":
            return "is any of " + ", ".join(_quote(str(v)) for v in self.value)
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


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _check_finite(rules: PointsRules) -> None:
    for f in rules.factors:
        for e in f.edges:
            if not math.isfinite(float(e)):
                raise ValueError(f"factor {f.name!r}: edges must be finite numbers, got {e!r}")
    for name in ("prob_intercept", "prob_slope"):
        value = getattr(rules, name)
        if not math.isfinite(float(value)):
            raise ValueError(f"{name} must be a finite number, got {value!r}")


def _missing_tokens(rules: PointsRules) -> list[str]:
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
    _check_finite(rules)
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


# --------------------------------------------------------------------------------------------
# sql
# --------------------------------------------------------------------------------------------

_SQL_TEXT = {"duckdb": "VARCHAR", "postgres": "TEXT", "spark": "STRING"}
_SQL_DOUBLE = {"duckdb": "DOUBLE", "postgres": "DOUBLE PRECISION", "spark": "DOUBLE"}
_SQL_RESERVED_OUTPUTS = ("fit", "pain", "points", "probability", "sdr_ready", "score_logit")


def sql_identifier(name: str, *, dialect: str) -> str:
    """Quote an identifier: ``"x"`` with ``""`` doubling (DuckDB, Postgres), backticks for Spark."""
    _check_dialect(dialect)
    if "\x00" in name:
        raise ValueError(f"identifier {name!r}: NUL characters cannot appear in SQL")
    if dialect == "spark":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def sql_string(value: str, *, dialect: str) -> str:
    """Quote a string literal so that any text is just a value.

    DuckDB: ``'...'`` with ``''``. Postgres: the same, or ``E'...'`` with backslashes doubled
    when the text has a backslash (correct whatever ``standard_conforming_strings`` is). Spark:
    backslash is an escape character and adjacent literals concatenate (``'a''b'`` is
    ``'ab'``), so both ``\\`` and ``'`` are backslash-escaped.
    """
    _check_dialect(dialect)
    if "\x00" in value:
        raise ValueError(f"string {value!r}: NUL characters cannot appear in SQL text")
    if dialect == "spark":
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if dialect == "postgres" and "\\" in value:
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    return "'" + value.replace("'", "''") + "'"


def _sql_double(x: float, dialect: str) -> str:
    # repr(float) is the shortest text that parses back to the same double; parsing a string
    # (not a DECIMAL literal) is correctly rounded in DuckDB, Postgres and Spark alike.
    return f"CAST('{float(x)!r}' AS {_SQL_DOUBLE[dialect]})"


def _check_dialect(dialect: str) -> None:
    if dialect not in SQL_DIALECTS:
        raise ValueError(f"dialect must be one of {SQL_DIALECTS}, got {dialect!r}")


def _sql_factor_case(factor: FactorRules, rules: PointsRules, dialect: str, indent: str,
                     column: str | None = None, double: bool = False) -> str:
    col = column or sql_identifier(factor.name, dialect=dialect)
    as_text = f"CAST({col} AS {_SQL_TEXT[dialect]})"
    as_double = col if double else f"CAST({col} AS {_SQL_DOUBLE[dialect]})"
    tokens = ", ".join(sql_string(t, dialect=dialect) for t in _missing_tokens(rules))
    missing = (_sql_double_missing(col, rules, dialect) if double
               else f"{col} IS NULL OR {as_text} IN ({tokens})")
    lines = [f"WHEN {missing} THEN {factor.missing_points}"]
    if factor.kind == "categorical":
        for level in sorted(factor.levels):
            lit = sql_string(level, dialect=dialect)
            lines.append(f"WHEN {as_text} = {lit} THEN {factor.levels[level]}")
        lines.append(f"ELSE {factor.unseen_points}")
    else:
        nan = f"CAST('NaN' AS {_SQL_DOUBLE[dialect]})"
        if not double:
            lines.append(f"WHEN {as_double} = {nan} THEN {factor.missing_points}")
        for value, pts, _ in factor.special_values():
            lines.append(f"WHEN {as_double} = {_sql_double(value, dialect)} THEN {pts}")
        edges = [float(e) for e in factor.edges]
        for i, pts in enumerate(factor.bin_points[:-1]):
            hi = f"{as_double} <= {_sql_double(edges[i], dialect)}"
            if i == 0 or double:  # double: the WHENs before already ruled out x <= edges[i - 1]
                # (the special values' WHENs rule out single values only: still exact)
                lines.append(f"WHEN {hi} THEN {pts}")
            else:
                lo = f"{as_double} > {_sql_double(edges[i - 1], dialect)}"
                lines.append(f"WHEN {lo} AND {hi} THEN {pts}")
        lines.append(f"ELSE {factor.bin_points[-1]}")
    body = "\n".join(f"{indent}  {line}" for line in lines)
    return f"(CASE\n{body}\n{indent}END)"


def _sql_double_missing(col: str, rules: PointsRules, dialect: str) -> str:
    """Whether a DOUBLE ``col`` is missing: NULL, NaN, or its text is a missing token.

    The same test as ``col IS NULL OR CAST(col AS text) IN (tokens)`` followed by the NaN
    test, without turning every value into text: a token can only be the text of the one
    number it parses to, so the text is compared only when the number matches first.
    """
    double, text = _SQL_DOUBLE[dialect], _SQL_TEXT[dialect]
    tests = [f"{col} IS NULL", f"{col} = CAST('NaN' AS {double})"]
    for token in _missing_tokens(rules):
        if token:
            lit = sql_string(token, dialect=dialect)
            tests.append(f"({col} = TRY_CAST({lit} AS {double}) AND CAST({col} AS {text}) = {lit})")
    return " OR ".join(tests)


def check_sql_rules(rules: PointsRules, *, dialect: str) -> None:
    """Raise ``ValueError`` for points tables the SQL cannot express: non-finite numbers, an
    id column named like an output column, factor names that differ only in case (DuckDB
    and Spark resolve names case-insensitively)."""
    _check_dialect(dialect)
    _check_finite(rules)
    if rules.id_column.lower() in _SQL_RESERVED_OUTPUTS:
        raise ValueError(
            f"id_column {rules.id_column!r} clashes with an output column {_SQL_RESERVED_OUTPUTS}"
        )
    if dialect in ("duckdb", "spark"):
        seen: dict[str, str] = {}
        for name in rules.factor_names():
            other = seen.setdefault(name.lower(), name)
            if other != name:
                raise ValueError(
                    f"factors {other!r} and {name!r} differ only in case: {dialect} resolves "
                    "column names case-insensitively"
                )


def sql_factor_points(factor: FactorRules, rules: PointsRules, *, dialect: str,
                      column: str | None = None, double: bool = False) -> str:
    """One factor's points as the CASE expression :func:`export_sql` sums, over ``column``.

    ``column`` is any SQL expression (default: the factor's quoted name). ``double=True``
    (DuckDB and Spark, numeric factors) says ``column`` already holds DOUBLE values: the
    missing-token test then compares numbers before text and each bin is one comparison,
    the same points for a fraction of the work (no per-row cast to text).
    """
    _check_dialect(dialect)
    if double and (factor.kind != "numeric" or dialect == "postgres"):
        raise ValueError("double=True is for numeric factors on duckdb or spark")
    return _sql_factor_case(factor, rules, dialect, "", column=column, double=double)


def sql_spam_expr(rules: PointsRules, *, dialect: str, column: str | None = None) -> str:
    """Whether a lead is spam for the spam gate, as SQL: its ``name_spam`` text is ``'yes'``
    and not a missing token (NULL counts as not spam), as :meth:`PointsRules.is_spam`."""
    from pipeline.model.rules import SPAM_COLUMN, SPAM_VALUE

    if SPAM_VALUE in _missing_tokens(rules):
        return "FALSE"
    col = column or sql_identifier(SPAM_COLUMN, dialect=dialect)
    literal = sql_string(SPAM_VALUE, dialect=dialect)
    return f"COALESCE(CAST({col} AS {_SQL_TEXT[dialect]}) = {literal}, FALSE)"


def sql_score_totals(rules: PointsRules, factor_points: str, *, dialect: str,
                     id_column: str | None = None, carry: Sequence[str] = (),
                     spam: str | None = None) -> str:
    """The SELECT that turns each lead's ``fit`` and ``pain`` into points, probability and
    sdr_ready (cap, logistic curve and threshold of ``rules``), as :func:`export_sql` ends.

    ``factor_points`` is the text of a query giving ``id_column`` (default
    ``rules.id_column``), ``fit``, ``pain`` and the ``carry`` columns (quoted SQL names,
    passed through after the id). ``spam`` names a boolean column of ``factor_points`` that
    takes SDR-ready away (the spam gate); it is not output. Checks ``rules`` as
    :func:`check_sql_rules` does.
    """
    check_sql_rules(rules, dialect=dialect)
    ident = sql_identifier(id_column or rules.id_column, dialect=dialect)
    keep = "".join(f", {c}" for c in carry)
    inner_keep = keep + (f", {spam}" if spam else "")
    ready = f"points >= {int(rules.sdr_threshold)}" + (f" AND NOT {spam}" if spam else "")
    total = "fit + pain"
    if rules.score_min is not None:
        total = f"GREATEST({total}, {int(rules.score_min)})"
    if rules.score_max is not None:
        total = f"LEAST({total}, {int(rules.score_max)})"
    intercept = _sql_double(rules.prob_intercept, dialect)
    slope = _sql_double(rules.prob_slope, dialect)
    return (
        f"SELECT {ident}{keep}, fit, pain, points,\n"
        f"  CASE WHEN score_logit > 700 THEN 1.0\n"
        f"    WHEN score_logit > -700 THEN 1.0 / (1.0 + EXP(-score_logit))\n"
        f"    ELSE 0.0 END AS probability,\n"
        f"  {ready} AS sdr_ready\n"
        f"FROM (\n"
        f"  SELECT {ident}{inner_keep}, fit, pain, {total} AS points,\n"
        f"    {intercept} + {slope} * ({total}) AS score_logit\n"
        f"  FROM (\n"
        f"{factor_points}"
        f"  ) AS factor_points\n"
        f") AS totals\n"
    )


def export_sql(rules: PointsRules, *, dialect: str = "duckdb", table: str = "leads") -> str:
    """A ``SELECT`` that scores every row of ``table``: id, fit, pain, points, probability,
    sdr_ready.

    Categorical columns are compared as text, numeric columns as doubles; a value is missing
    when NULL, NaN, ``''`` or its text is in ``missing_values`` (checked first, as in the
    reference). With ``spam_gate`` the query also reads ``name_spam``: a lead whose text is
    ``'yes'`` is never SDR-ready. ``table`` may be schema-qualified with dots; each part is
    quoted. Caveats:
    keep categorical columns as text (a DOUBLE 1.0 reads as ``'1.0'``, the reference reads
    ``"1"``), and a missing token that looks like a number (``"-1"``) also matches a numeric
    column whose text is that number.
    """
    _check_dialect(dialect)
    _check_finite(rules)
    if not table or any(not part for part in table.split(".")):
        raise ValueError(f"table must be a non-empty (optionally dotted) name, got {table!r}")
    check_sql_rules(rules, dialect=dialect)
    ident = sql_identifier(rules.id_column, dialect=dialect)
    from_table = ".".join(sql_identifier(p, dialect=dialect) for p in table.split("."))
    indent = "      "

    def group_sum(group: str) -> str:
        cases = [
            _sql_factor_case(f, rules, dialect, indent) for f in rules.factors if f.group == group
        ]
        return f"\n{indent}+ ".join(cases) if cases else "0"

    spam = "__spam" if rules.spam_gate else None
    gate = f"      {sql_spam_expr(rules, dialect=dialect)} AS {spam},\n" if spam else ""
    factor_points = (
        f"    SELECT {ident},\n"
        f"{gate}"
        f"      {group_sum('FIT')} AS fit,\n"
        f"      {group_sum('PAIN')} AS pain\n"
        f"    FROM {from_table}\n"
    )
    return sql_score_totals(rules, factor_points, dialect=dialect, spam=spam)


# --------------------------------------------------------------------------------------------
# pmml
# --------------------------------------------------------------------------------------------


def _xml_safe(text: str, what: str) -> str:
    for ch in text:
        o = ord(ch)
        ok = (
            o in (0x9, 0xA, 0xD)
            or 0x20 <= o <= 0xD7FF
            or 0xE000 <= o <= 0xFFFD
            or 0x10000 <= o <= 0x10FFFF
        )
        if not ok:
            raise ValueError(f"{what} {text!r}: character U+{o:04X} cannot appear in XML 1.0")
    return text


def _fresh_name(base: str, taken: set[str]) -> str:
    name = base
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def pmml_output_names(rules: PointsRules) -> dict[str, str]:
    """Names of the PMML output fields (suffixed with ``_`` if a factor has the same name).

    Keys: ``target``, ``points``, ``points_uncapped`` (only with a cap), ``probability``,
    ``sdr_ready``, ``reason_1``..``reason_k``.
    """
    taken = set(rules.factor_names())
    names = {"target": _fresh_name("lead_score", taken)}
    keys = ["points_uncapped"] if _has_cap(rules) else []
    keys += ["points", "probability", "sdr_ready"]
    keys += [f"reason_{i}" for i in range(1, _n_reasons(rules) + 1)]
    for key in keys:
        names[key] = _fresh_name(key, taken)
    return names


def _has_cap(rules: PointsRules) -> bool:
    return rules.score_min is not None or rules.score_max is not None


def _n_reasons(rules: PointsRules) -> int:
    return min(3, len(rules.factors))


def _sub(parent: ET.Element, tag: str, attrib: dict[str, str] | None = None) -> ET.Element:
    return ET.SubElement(parent, tag, attrib or {})


def _apply(parent: ET.Element, function: str) -> ET.Element:
    return _sub(parent, "Apply", {"function": function})


def _const(parent: ET.Element, value: float | int) -> None:
    _sub(parent, "Constant", {"dataType": "double"}).text = repr(float(value))


def _pmml_predicate(parent: ET.Element, rule: Rule) -> None:
    field = rule.factor
    if rule.op == "missing":
        _sub(parent, "SimplePredicate", {"field": field, "operator": "isMissing"})
    elif rule.op in ("other", "any"):
        _sub(parent, "True")
    elif rule.op == "equals":
        attrs = {"field": field, "operator": "equal", "value": str(rule.value)}
        _sub(parent, "SimplePredicate", attrs)
    elif rule.op == "special":
        attrs = {"field": field, "operator": "equal", "value": repr(float(rule.value))}
        _sub(parent, "SimplePredicate", attrs)
    elif rule.op == "at_most":
        attrs = {"field": field, "operator": "lessOrEqual", "value": repr(float(rule.value))}
        _sub(parent, "SimplePredicate", attrs)
    elif rule.op == "greater":
        attrs = {"field": field, "operator": "greaterThan", "value": repr(float(rule.value))}
        _sub(parent, "SimplePredicate", attrs)
    else:
        both = _sub(parent, "CompoundPredicate", {"booleanOperator": "and"})
        lo = {"field": field, "operator": "greaterThan", "value": repr(float(rule.value))}
        hi = {"field": field, "operator": "lessOrEqual", "value": repr(float(rule.value2))}
        _sub(both, "SimplePredicate", lo)
        _sub(both, "SimplePredicate", hi)


def _pmml_spam_gate(parent: ET.Element) -> ET.Element:
    """``if(name_spam == "yes", false, <test>)`` under ``parent``, the comparison mapping a
    missing ``name_spam`` (declared missing tokens too) to false; returns the ``if`` for the
    threshold test to be added as its last argument."""
    from pipeline.model.rules import SPAM_COLUMN, SPAM_VALUE

    choice = _apply(parent, "if")
    equal = _sub(choice, "Apply", {"function": "equal", "mapMissingTo": "false"})
    _sub(equal, "FieldRef", {"field": SPAM_COLUMN})
    _sub(equal, "Constant", {"dataType": "string"}).text = SPAM_VALUE
    _sub(choice, "Constant", {"dataType": "boolean"}).text = "false"
    return choice


def export_pmml(rules: PointsRules, *, reason_code_algorithm: str = "pointsBelow") -> str:
    """PMML 4.4 ``Scorecard`` whose predicted value is FIT + PAIN, with the cap, probability,
    SDR-ready flag and top reason codes as output fields.

    Each characteristic tests ``isMissing`` first (``missing_values``, ``""`` and NaN are
    declared missing in the DataDictionary), then the levels or bins, then a ``True``
    predicate for unseen levels. Baseline per characteristic = its best points
    (``pointsBelow``) or its worst (``pointsAbove``). FIT and PAIN subtotals are not
    output: a Scorecard has a single score (the SQL and Python exports give them). With
    ``spam_gate``, ``name_spam`` is an input (a supplementary field when not a factor) and
    SDR-ready also needs it not to be ``"yes"``.
    """
    if reason_code_algorithm not in ("pointsBelow", "pointsAbove"):
        raise ValueError(
            "reason_code_algorithm must be 'pointsBelow' or 'pointsAbove', "
            f"got {reason_code_algorithm!r}"
        )
    if not rules.factors:
        raise ValueError("pmml export needs at least one factor: a Scorecard has no empty form")
    _check_finite(rules)
    kinds: dict[str, str] = {}
    for f in rules.factors:
        if kinds.setdefault(f.name, f.kind) != f.kind:
            raise ValueError(f"column {f.name!r} is used both as categorical and as numeric")
    tokens = [_xml_safe(t, "missing value") for t in _missing_tokens(rules)]
    names = pmml_output_names(rules)
    gate_only = rules.gate_columns()
    fields = {**kinds, **dict.fromkeys(gate_only, "categorical")}

    root = ET.Element("PMML", {"xmlns": PMML_NAMESPACE, "version": "4.4"})
    title = " ".join(x for x in (rules.model_name, rules.model_version) if x) or "points table"
    header = _sub(root, "Header", {"description": _xml_safe(f"lead-scoring {title}", "model")})
    _sub(header, "Application", {"name": "lead-scoring"})
    if rules.data_hash:
        _sub(header, "Annotation").text = _xml_safe(f"data_hash={rules.data_hash}", "data_hash")

    dictionary = _sub(root, "DataDictionary")
    for name, kind in fields.items():
        _xml_safe(name, "factor")
        attrs = (
            {"name": name, "optype": "categorical", "dataType": "string"}
            if kind == "categorical"
            else {"name": name, "optype": "continuous", "dataType": "double"}
        )
        field = _sub(dictionary, "DataField", attrs)
        for token in tokens + (["NaN"] if kind == "numeric" else []):
            _sub(field, "Value", {"value": token, "property": "missing"})
    target = {"name": names["target"], "optype": "continuous", "dataType": "double"}
    _sub(dictionary, "DataField", target)
    dictionary.set("numberOfFields", str(len(fields) + 1))

    card = _sub(
        root,
        "Scorecard",
        {
            "modelName": _xml_safe(rules.model_name or "lead_scoring", "model_name"),
            "functionName": "regression",
            "useReasonCodes": "true",
            "reasonCodeAlgorithm": reason_code_algorithm,
            "initialScore": "0",
            "baselineMethod": "other",
        },
    )
    schema = _sub(card, "MiningSchema")
    _sub(schema, "MiningField", {"name": names["target"], "usageType": "target"})
    for name in fields:
        attrs = {"name": name, "missingValueTreatment": "asIs", "invalidValueTreatment": "asIs",
                 **({"usageType": "supplementary"} if name in gate_only else {})}
        _sub(schema, "MiningField", attrs)

    output = _sub(card, "Output")

    def out_field(key: str, feature: str, data_type: str = "double", **extra: str) -> ET.Element:
        optype = "categorical" if data_type in ("string", "boolean") else "continuous"
        attrs = {"name": names[key], "optype": optype, "dataType": data_type, "feature": feature}
        return _sub(output, "OutputField", {**attrs, **extra})

    if _has_cap(rules):
        out_field("points_uncapped", "predictedValue")
        expr: ET.Element = out_field("points", "transformedValue")
        ref = names["points_uncapped"]
        for function, bound in (("min", rules.score_max), ("max", rules.score_min)):
            if bound is not None:
                expr = _apply(expr, function)
                _const(expr, bound)
        # the innermost argument is the uncapped score
        _sub(expr, "FieldRef", {"field": ref})
    else:
        out_field("points", "predictedValue")
    # probability = 1 / (1 + exp(-z)) if z > -700 else 0, z = intercept + slope * points
    prob = _apply(out_field("probability", "transformedValue"), "if")

    def z_expr(parent: ET.Element) -> None:
        plus = _apply(parent, "+")
        _const(plus, rules.prob_intercept)
        times = _apply(plus, "*")
        _const(times, rules.prob_slope)
        _sub(times, "FieldRef", {"field": names["points"]})

    cond = _apply(prob, "greaterThan")
    z_expr(cond)
    _const(cond, -700)
    div = _apply(prob, "/")
    _const(div, 1)
    denom = _apply(div, "+")
    _const(denom, 1)
    neg = _apply(_apply(denom, "exp"), "*")
    _const(neg, -1)
    z_expr(neg)
    _const(prob, 0)
    ready = out_field("sdr_ready", "transformedValue", "boolean")
    if rules.spam_gate:
        ready = _pmml_spam_gate(ready)
    ready = _apply(ready, "greaterOrEqual")
    _sub(ready, "FieldRef", {"field": names["points"]})
    _const(ready, rules.sdr_threshold)
    for i in range(1, _n_reasons(rules) + 1):
        out_field(f"reason_{i}", "reasonCode", "string", rank=str(i))

    characteristics = _sub(card, "Characteristics")
    taken: set[str] = set()
    for f in rules.factors:
        rows = factor_rules(f)
        ordered = [r for r in rows if r.op == "missing"] + [r for r in rows if r.op != "missing"]
        points = [r.points for r in rows]
        baseline = max(points) if reason_code_algorithm == "pointsBelow" else min(points)
        char = _sub(
            characteristics,
            "Characteristic",
            {"name": _fresh_name(f.name, taken), "baselineScore": str(baseline)},
        )
        for r in ordered:
            if r.op == "equals":
                _xml_safe(str(r.value), f"factor {f.name!r} level")
            attribute = _sub(
                char,
                "Attribute",
                {"partialScore": str(r.points), "reasonCode": f"{f.name}: {r.condition}"},
            )
            _pmml_predicate(attribute, r)

    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --------------------------------------------------------------------------------------------
# python
# --------------------------------------------------------------------------------------------

_PYTHON_HEADER = '''\
"""Lead scoring points table as a self-contained scorer (Python standard library only).

Generated by lead-scoring; edit the points table, not this file. ``score(lead)`` takes a
mapping of column -> raw value and returns points, fit, pain, probability and sdr_ready with
the same semantics as ``pipeline.model.rules.score_record``. As a script it scores a CSV file:
``python score_leads.py leads.csv > scored.csv``.
"""

from __future__ import annotations

import csv
import math
import sys

'''

_PYTHON_BODY = '''

def is_missing(value, missing_values):
    """None, NaN, the empty string or a listed missing-value string."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str):
        return value == "" or value in missing_values
    return False


def _canonical_str(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def factor_points(factor, value, missing_values):
    """Points of one factor for one raw value."""
    if is_missing(value, missing_values):
        return factor["missing_points"]
    if factor["kind"] == "categorical":
        key = value if isinstance(value, str) else _canonical_str(value)
        if key in factor["levels"]:
            return factor["levels"][key]
        return factor["unseen_points"]
    x = float(value)
    if math.isnan(x):
        return factor["missing_points"]
    for key, points in factor.get("special_points", {}).items():
        if x == float(key):
            return points
    index = sum(1 for edge in factor["edges"] if edge < x)
    return factor["bin_points"][index]


def is_spam(value):
    """The spam gate's test: name_spam present, not missing, and exactly "yes"."""
    return (not is_missing(value, RULES["missing_values"]) and isinstance(value, str)
            and value == "yes")


def probability(points):
    """Probability of conversion for a total score."""
    z = RULES["prob_intercept"] + RULES["prob_slope"] * points
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


def score(lead):
    """Score one lead: a mapping of column -> raw value (absent columns count as missing)."""
    fit = pain = 0
    for factor in RULES["factors"]:
        pts = factor_points(factor, lead.get(factor["name"]), RULES["missing_values"])
        if factor["group"] == "FIT":
            fit += pts
        else:
            pain += pts
    total = fit + pain
    if RULES["score_min"] is not None:
        total = max(total, RULES["score_min"])
    if RULES["score_max"] is not None:
        total = min(total, RULES["score_max"])
    spam = RULES.get("spam_gate") and is_spam(lead.get("name_spam"))
    return {
        "points": total,
        "fit": fit,
        "pain": pain,
        "probability": probability(total),
        "sdr_ready": total >= RULES["sdr_threshold"] and not spam,
    }


def main(argv):
    """Score a CSV file (or standard input) and write id, points, fit, pain, ... as CSV."""
    source = open(argv[1], newline="", encoding="utf-8") if len(argv) > 1 else sys.stdin
    with source:
        reader = csv.DictReader(source)
        columns = [RULES["id_column"], "points", "fit", "pain", "probability", "sdr_ready"]
        writer = csv.writer(sys.stdout, lineterminator="\\n")
        writer.writerow(columns)
        for lead in reader:
            result = score(lead)
            writer.writerow([lead.get(RULES["id_column"], "")] + [result[c] for c in columns[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''


def export_python(rules: PointsRules) -> str:
    """One self-contained Python source file (stdlib only) with a ``RULES`` literal and
    ``score(lead) -> dict`` identical in semantics to :func:`pipeline.model.rules.score_record`."""
    _check_finite(rules)
    data = rules.to_dict()
    data["factors"] = [
        {**f, "levels": dict(sorted(f["levels"].items())), "edges": [float(e) for e in f["edges"]],
         **({"special_points": dict(sorted(f["special_points"].items(), key=lambda kv:
                                           float(kv[0])))} if "special_points" in f else {})}
        for f in data["factors"]
    ]
    literal = pprint.pformat(data, indent=1, width=100, sort_dicts=False)
    return _PYTHON_HEADER + f"RULES = {literal}\n" + _PYTHON_BODY


# --------------------------------------------------------------------------------------------
# hubspot
# --------------------------------------------------------------------------------------------

HUBSPOT_NOTES = """\
HubSpot lead scoring: what this export maps and what you still do by hand
========================================================================

The JSON follows the shape of HubSpot's Lead Scoring tool and of its (beta) score API:
one score with a FIT group and an ENGAGEMENT group (PAIN factors), each a list of rules
worth a CONSTANT number of points, plus score limits {"min", "max"}. Use it as the
specification to build the score in the UI, or as a starting body for the API after
checking it against the API version you call. What maps to what:

* FIT factors -> group "FIT"; PAIN factors -> group "ENGAGEMENT". PAIN factors here are
  property values (counts, flags), not HubSpot events: build them as property criteria,
  or re-express them as event criteria (e.g. "visited the pricing page") by hand.
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
* Score limits: HubSpot offers fixed ranges (-100..100 up to -10,000..10,000) and per-group
  limits. "scoreLimits" holds our cap (or the attainable range when no cap is set): pick
  the smallest HubSpot range that contains it; totals are clipped at the limits.
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
        values = sorted(factor.levels) + [t for t in _missing_tokens(rules) if t]
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


def export_hubspot(rules: PointsRules) -> str:
    """JSON body for HubSpot lead scoring (FIT and ENGAGEMENT groups, constant points, score
    limits). Read :data:`HUBSPOT_NOTES` for what maps to what and what stays manual."""
    _check_finite(rules)
    tokens = [t for t in _missing_tokens(rules) if t]
    groups = []
    for group, category, label in (("FIT", "FIT", "Fit"), ("PAIN", "ENGAGEMENT", "Engagement")):
        factors = [f for f in rules.factors if f.group == group]
        rule_configs: list[dict[str, Any]] = []
        for f in factors:
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
    lo, hi = _attainable_range(rules, rules.factors)
    body = {
        "name": rules.model_name or "lead-scoring",
        "objectTypeId": "0-1",
        "scoreLimits": {"min": lo, "max": hi},
        "groupConfigs": groups,
        "lead_scoring": {
            "model_version": rules.model_version,
            "data_hash": rules.data_hash,
            "sdr_threshold": rules.sdr_threshold,
            "grades": rules.grades,
            "decay_half_life_days": rules.decay_half_life_days,
            "spam_gate": rules.spam_gate,
            "derived": rules.to_dict()["derived"],
        },
    }
    return json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# --------------------------------------------------------------------------------------------
# crm-csv
# --------------------------------------------------------------------------------------------

CRM_COLUMNS = ("rule_id", "score_group", "field", "operator", "value", "value2", "points", "notes")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _sheet_text(text: str) -> tuple[str, str]:
    """Spreadsheet-safe text cell: a leading formula character is neutralised with ``'``."""
    if text.startswith(_FORMULA_START):
        return "'" + text, "text starts with a formula character: a leading ' was added; drop it"
    return text, ""


def _sheet_list(values: list[str], notes: list[str]) -> str:
    """A list of levels in one cell: separated by ``'; '``, or a JSON list when a level holds
    ``;`` (``notes`` says which)."""
    if any(";" in v for v in values):
        notes.append("value is a JSON list")
        return json.dumps(values, ensure_ascii=False)
    notes.append("values separated by '; '")
    return "; ".join(values)


def export_crm_csv(rules: PointsRules) -> str:
    """Rules sheet for Salesforce / Marketo / Mautic style builders: ``rule_id, score_group
    (Fit/Behavior), field, operator, value, value2, points, notes``.

    Operators: equals, is any of (the levels worth the same points), is empty, is not in,
    greater than, at most, between (lower end excluded, upper end included: see the notes
    column). A numeric special value (a sentinel
    such as 999) is an ``equals`` rule of its own, and the bin it falls in says in its notes
    that the value is not part of it. With the spam gate on, a ``GATE`` row (0 points) states
    it in its notes: a sheet of points cannot veto SDR-ready. Text cells that a spreadsheet
    would run as a formula get a leading ``'`` (noted). Rules worth 0 points are left out
    (:func:`crm_rules`): 0 is what a field matching no rule scores, and the last line, a ``#``
    comment, says so.
    """
    _check_finite(rules)
    tokens = [t for t in _missing_tokens(rules) if t]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CRM_COLUMNS)
    n = omitted = 0
    for f in rules.factors:
        group = "Fit" if f.group == "FIT" else "Behavior"
        omitted += crm_zero_rules(f)
        for r in crm_rules(f):
            value = value2 = ""
            notes: list[str] = []
            if r.op == "equals":
                operator = "equals"
                value, note = _sheet_text(str(r.value))
                notes.append(note)
            elif r.op == "any_of":
                operator = "is any of"
                value, note = _sheet_text(_sheet_list(list(r.value), notes))
                notes.append(note)
            elif r.op == "missing":
                operator = "is empty"
                if tokens:
                    notes.append("also counts as empty: " + "; ".join(_quote(t) for t in tokens))
            elif r.op == "other":
                operator = "is not in"
                value = _sheet_list(sorted(f.levels) + tokens, notes)
                notes.append("and is not empty")
            elif r.op == "special":
                operator, value = "equals", format_number(r.value)
                notes.append("a code with points of its own: checked before the ranges")
            elif r.op == "any":
                operator = "is not empty"
            elif r.op == "at_most":
                operator, value = "at most", format_number(r.value)
            elif r.op == "greater":
                operator, value = "greater than", format_number(r.value)
            else:
                operator = "between"
                value, value2 = format_number(r.value), format_number(r.value2)
                notes.append(
                    f"greater than {value} and at most {value2}: most builders' between includes "
                    f"{value} itself, which belongs to the rule before this one"
                )
            excluded = specials_in_bin(r, f) if f.kind == "numeric" else []
            if excluded:
                notes.append("and is not " + ", ".join(format_number(v) for v in excluded)
                             + " (its own rule)")
            n += 1
            field, field_note = _sheet_text(f.name)
            notes.append(field_note)
            writer.writerow(
                [f"R{n:03d}", group, field, operator, value, value2, r.points,
                 " ".join(x for x in notes if x)]
            )
    if rules.spam_gate:
        writer.writerow(["GATE", "SDR-ready", "name_spam", "equals", "yes", "", 0,
                         "spam gate: a lead with name_spam = yes is never SDR-ready, whatever "
                         f"its points (threshold {rules.sdr_threshold}); add this condition to "
                         "the hand-off rule, it adds no points"])
    buf.write(crm_zero_note(omitted) + "\n")
    return buf.getvalue()


def crm_zero_note(omitted: int) -> str:
    """The comment line that ends the crm-csv sheet: levels not listed score 0."""
    return (f"# levels not listed score 0: {omitted} rules worth 0 points are left out; "
            "a field that matches no rule adds 0 points")


def crm_rules(factor: FactorRules) -> list[Rule]:
    """The rules of ``factor`` a CRM sheet lists: :func:`factor_rules` without those worth 0
    points (0 is a builder's default), except a special value worth 0 whose bin is worth
    something else (read first-match-wins, that rule keeps the value out of its bin); the
    categorical levels worth the same points are one ``any_of`` rule (``value`` the tuple of
    levels, in sorted order), a level alone keeps its ``equals`` rule."""
    def needed(rule: Rule) -> bool:
        if rule.points != 0:
            return True
        if rule.op != "special":
            return False
        value = float(rule.value)
        return factor.bin_points[sum(1 for e in factor.edges if e < value)] != 0

    listed = [r for r in factor_rules(factor) if needed(r)]
    by_points: dict[int, list[Rule]] = {}
    for r in listed:
        if r.op == "equals":
            by_points.setdefault(r.points, []).append(r)
    out: list[Rule] = []
    for r in listed:
        if r.op != "equals":
            out.append(r)
        elif by_points[r.points][0] is r:
            same = by_points[r.points]
            out.append(r if len(same) == 1 else
                       replace(r, op="any_of", value=tuple(str(x.value) for x in same)))
    return out


def crm_zero_rules(factor: FactorRules) -> int:
    """How many rules of ``factor`` worth 0 points the CRM sheet leaves out."""
    listed = sum(r.points == 0 for r in crm_rules(factor))
    return sum(r.points == 0 for r in factor_rules(factor)) - listed


# --------------------------------------------------------------------------------------------
# dispatch and writing
# --------------------------------------------------------------------------------------------

_EXPORTERS: dict[str, Callable[[PointsRules], str]] = {
    "json": export_json,
    "csv": export_csv,
    "pmml": export_pmml,
    "python": export_python,
    "hubspot": export_hubspot,
    "crm-csv": export_crm_csv,
}


def export(rules: PointsRules, fmt: str, *, dialect: str | None = None) -> str:
    """Render ``rules`` in format ``fmt`` (one of :data:`FORMATS`); ``dialect`` is for ``sql``
    only (default ``duckdb``)."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if fmt == "sql":
        return export_sql(rules, dialect=dialect or "duckdb")
    if dialect is not None:
        raise ValueError(f"dialect applies to fmt='sql' only, got dialect={dialect!r} for {fmt!r}")
    return _EXPORTERS[fmt](rules)


def safe_output_path(out_dir: str | os.PathLike[str], name: str | os.PathLike[str]) -> Path:
    """``out_dir / name``, refusing names that leave ``out_dir`` (absolute paths, ``..``,
    symlinks pointing outside, NUL bytes)."""
    text = os.fspath(name)
    if not text or "\x00" in text:
        raise ValueError(f"output name must be a non-empty path without NUL bytes, got {text!r}")
    if os.path.isabs(text) or Path(text).drive:
        raise ValueError(f"output name {text!r} must be relative to {os.fspath(out_dir)!r}")
    base = Path(out_dir).resolve()
    target = (base / text).resolve()
    if target == base or base not in target.parents:
        raise ValueError(f"output name {text!r} escapes the output directory {str(base)!r}")
    return target


def write_export(
    rules: PointsRules,
    fmt: str,
    out_path: str | os.PathLike[str],
    *,
    dialect: str | None = None,
    within: str | os.PathLike[str] | None = None,
) -> Path:
    """Render and write atomically (temp file in the same directory + ``os.replace``).

    With ``within``, ``out_path`` is a name inside that directory and is checked with
    :func:`safe_output_path`. Returns the path written.
    """
    text = export(rules, fmt, dialect=dialect)
    path = safe_output_path(within, out_path) if within is not None else Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp makes the file 0600: keep the mode of the file replaced, else the usual 0644
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------------------------
# diff
# --------------------------------------------------------------------------------------------

DIFF_COLUMNS = ["factor", "group", "condition", "old_points", "new_points", "change"]
_SETTINGS = ("sdr_threshold", "score_min", "score_max")


def diff_rules(
    old: PointsRules, new: PointsRules, *, include_unchanged: bool = False
) -> pd.DataFrame:
    """What changed between two points tables, one row per rule.

    Columns: ``factor, group, condition, old_points, new_points, change`` where ``change`` is
    ``added``, ``removed``, ``changed``, ``regrouped`` (same points, factor moved between FIT
    and PAIN) or ``unchanged`` (only with ``include_unchanged``). Points are nullable ints
    (absent on the side that lacks the rule). Threshold and cap changes come as rows of
    factor ``(settings)``.
    """

    def keyed(rules: PointsRules) -> dict[tuple[str, str], tuple[str, int]]:
        return {
            (r.factor, r.condition): (r.group, r.points)
            for f in rules.factors
            for r in factor_rules(f)
        }

    old_rows, new_rows = keyed(old), keyed(new)
    order = list(dict.fromkeys([*new_rows, *old_rows]))
    factor_rank = {name: i for i, name in enumerate(dict.fromkeys(k[0] for k in order))}
    order.sort(key=lambda k: factor_rank[k[0]])  # stable: conditions keep their order
    rows: list[dict[str, Any]] = []
    for key in order:
        before, after = old_rows.get(key), new_rows.get(key)
        if before is None:
            change = "added"
        elif after is None:
            change = "removed"
        elif before[1] != after[1]:
            change = "changed"
        elif before[0] != after[0]:
            change = "regrouped"
        else:
            change = "unchanged"
        rows.append(
            {
                "factor": key[0],
                "group": (after or before)[0],
                "condition": key[1],
                "old_points": None if before is None else before[1],
                "new_points": None if after is None else after[1],
                "change": change,
            }
        )
    for name in _SETTINGS:
        a, b = getattr(old, name), getattr(new, name)
        if a == b:
            change = "unchanged"
        else:
            change = "added" if a is None else "removed" if b is None else "changed"
        rows.append(
            {"factor": "(settings)", "group": "", "condition": name, "old_points": a,
             "new_points": b, "change": change}
        )
    out = pd.DataFrame(rows, columns=DIFF_COLUMNS)
    out = out.astype({"old_points": "Int64", "new_points": "Int64"})
    if not include_unchanged:
        out = out[out["change"] != "unchanged"]
    return out.reset_index(drop=True)


def export_all(
    rules: PointsRules, formats: Iterable[str] = FORMATS, *, dialects: Sequence[str] = ("duckdb",)
) -> dict[str, str]:
    """Every requested format rendered, keyed by file name (``sql`` once per dialect)."""
    out: dict[str, str] = {}
    for fmt in formats:
        if fmt == "sql":
            for d in dialects:
                out[f"score_leads.{d}.sql"] = export(rules, "sql", dialect=d)
        else:
            out[FILE_NAMES[fmt]] = export(rules, fmt)
    return out


__all__ = [
    "CRM_COLUMNS",
    "DIFF_COLUMNS",
    "FILE_NAMES",
    "FORMATS",
    "HUBSPOT_NOTES",
    "SCHEMA_VERSION",
    "SQL_DIALECTS",
    "Rule",
    "check_sql_rules",
    "diff_rules",
    "export",
    "export_all",
    "crm_rules",
    "crm_zero_rules",
    "export_crm_csv",
    "export_csv",
    "export_hubspot",
    "export_json",
    "export_pmml",
    "export_python",
    "export_sql",
    "factor_rules",
    "format_number",
    "pmml_output_names",
    "points_table_schema",
    "rules_table",
    "safe_output_path",
    "sql_factor_points",
    "sql_identifier",
    "sql_score_totals",
    "sql_string",
    "write_export",
]
