"""The ``crm-csv`` export: a rules sheet for Salesforce / Marketo / Mautic style builders, one
row per rule worth points."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

from pipeline.exports.table import (
    Rule,
    check_finite,
    factor_rules,
    format_number,
    missing_tokens,
    quote_text,
    specials_in_bin,
)
from pipeline.model.rules import FactorRules, PointsRules

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
    check_finite(rules)
    tokens = [t for t in missing_tokens(rules) if t]
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
                    listed = "; ".join(quote_text(t) for t in tokens)
                    notes.append("also counts as empty: " + listed)
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


__all__ = ["CRM_COLUMNS", "crm_rules", "crm_zero_note", "crm_zero_rules", "export_crm_csv"]
