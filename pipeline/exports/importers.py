"""Read rule sets people already use into the points-table contract (``lead-scoring audit``).

Formats (:func:`parse_rules` tells them apart by content, :data:`IMPORT_FORMATS`):

* ``json``: this project's points table (``export --format json``, ``points_rules.json``);
* ``edited``: what the points editor saves: ``{"format": "lead-scoring-edited-rules",
  "parent": "NAME/VERSION", "locked": {"factor = level": points}, "rules": {...}}``;
* ``csv``: ``export --format csv`` (``factor, group, condition, points``; conditions as
  :attr:`pipeline.exports.table.Rule.condition` writes them);
* ``hubspot``: HubSpot's lead-scoring JSON (``export --format hubspot``, or a score built in
  HubSpot): ``maxScore`` (totals above it are clipped; older files: ``scoreLimits``), groups
  ``FIT`` / ``ENGAGEMENT`` of rules worth constant points, each rule a list
  of property filters that must all hold (``EQ``, ``NEQ``, ``IN``, ``NOT_IN``, ``GT``,
  ``GTE``, ``LT``, ``LTE``, ``HAS_PROPERTY``, ``NOT_HAS_PROPERTY``); a filter's property is
  ``propertyName`` (HubSpot's API name) or ``property``;
* ``crm-csv``: a CRM scoring sheet (``export --format crm-csv``, or typed by a person):
  ``score_group`` (Fit / Behavior), ``field``, ``operator`` (equals, is any of, is empty, is
  not in, is not empty, greater than, at most, between), ``value``, ``value2``, ``points``;
  event criteria rows (``events: a; b``, ``occurred at least`` [``after creation``], ``i``,
  days) and HubSpot's event filters become event rules (:mod:`pipeline.exports.event_import`).

A CRM builder adds the points of every rule that holds, and a field matching no rule adds 0:
an imported factor's slot gets the sum of the rules that cover it, 0 when none does (rules of
one factor that overlap are summed, and said in the notes). A factor with a range rule is
numeric (its edges the union of the rule bounds), else categorical; an ``equals`` rule of a
numeric factor is a special value, matched before the ranges. The sheets carry no
SDR-ready threshold: ``has_threshold`` says whether the file gave one.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.exports.event_criteria import EVENT_FIELD
from pipeline.exports.event_import import (
    SHEET_OPERATORS,
    EventCollector,
    hubspot_event_rule,
    hubspot_velocity_rule,
    velocity_properties,
)
from pipeline.exports.rule_builder import (
    RuleCollector,
    group_of,
    number_cell,
    points_cell,
)
from pipeline.model.rules import PointsRules

IMPORT_FORMATS = ("json", "edited", "csv", "hubspot", "crm-csv")
EDITED_FORMAT = "lead-scoring-edited-rules"


@dataclass(frozen=True)
class ImportedRules:
    """A rule set read into :class:`PointsRules`, with where it came from."""

    rules: PointsRules
    format: str
    has_threshold: bool
    parent: str | None = None
    locked: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- formats

def parse_json_rules(data: dict[str, Any], source: str) -> ImportedRules:
    """This project's points table, or the editor's saved document around one."""
    if data.get("format") == EDITED_FORMAT:
        inner = parse_json_rules(data.get("rules") or {}, source)
        locked = {str(k): int(v) for k, v in (data.get("locked") or {}).items()}
        return ImportedRules(inner.rules, "edited", True, parent=data.get("parent"),
                             locked=locked)
    try:
        rules = PointsRules.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{source}: not a lead-scoring points table: {exc}",
                        hint="export one with 'lead-scoring export --format json'") from None
    return ImportedRules(rules, "json", True)


def parse_csv_rules(text: str, source: str, *, missing_values: list[str]) -> ImportedRules:
    """``factor, group, condition, points`` (``export --format csv``)."""
    collected = RuleCollector(source)
    for i, row in enumerate(_csv_rows(text, source, ("factor", "group", "condition",
                                                     "points")), start=2):
        where = f"{source} row {i}"
        f = collected.factor(row["factor"], group_of(row["group"], where), where)
        pts = points_cell(row["points"], f"{where} column points")
        cond = row["condition"].strip()
        if cond == "is missing":
            f.missing += pts
        elif cond == "is any other value":
            f.unseen += pts
        elif cond == "is any number":
            f.anything += pts
            f.ranges.append((-math.inf, math.inf, 0))
        elif cond.startswith("= \""):
            f.add_level(_json_text(cond[2:], where), pts)
        elif cond.startswith("= "):
            value = number_cell(cond[2:], where)
            f.specials[value] = f.specials.get(value, 0) + pts
        elif cond.startswith("<= "):
            f.ranges.append((-math.inf, number_cell(cond[3:], where), pts))
        elif cond.startswith("> ") and " and <= " in cond:
            lo, hi = cond[2:].split(" and <= ", 1)
            f.ranges.append((number_cell(lo, where), number_cell(hi, where), pts))
        elif cond.startswith("> "):
            f.ranges.append((number_cell(cond[2:], where), math.inf, pts))
        else:
            raise UserError(f"{where} column condition: {cond!r} is not a condition this "
                            "sheet uses", hint='use = "text", = 3, <= 3, > 3, > 3 and <= 7, '
                                               "is missing, is any other value")
    rules, notes = collected.rules(missing_values)
    return ImportedRules(rules, "csv", False, notes=notes)


def _json_text(text: str, where: str) -> str:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise UserError(f"{where}: {text!r} is not a quoted text") from None
    return str(value)


def _csv_rows(text: str, source: str, required: tuple[str, ...]) -> list[dict[str, str]]:
    # a sheet saved on Windows ends lines with CRLF; a bare CR inside a cell is text (the
    # csv writer leaves such a cell unquoted) and is kept out of the reader's way
    text = text.replace("\r\n", "\n").replace("\r", "\x00")
    rows = [[cell.replace("\x00", "\r") for cell in row]
            for row in csv.reader(io.StringIO(text, newline=""))]
    header = [h.strip() for h in rows[0]] if rows else []
    absent = [c for c in required if c not in header]
    if absent:
        raise UserError(f"{source}: missing column(s) {', '.join(absent)}",
                        hint=f"the columns are {', '.join(required)}; found {', '.join(header)}")
    return [dict(zip(header, row + [""] * (len(header) - len(row)), strict=False))
            for row in rows[1:] if row and not row[0].startswith("#")]


_CRM_OPERATORS = {"equals": "equals", "=": "equals", "is": "equals", "is any of": "any_of",
                  "in": "any_of", "is empty": "missing", "is unknown": "missing",
                  "is not in": "other", "is not empty": "any", "is known": "any",
                  "greater than": "greater", ">": "greater", "at most": "at_most",
                  "<=": "at_most", "between": "between"}


def _sheet_values(text: str) -> list[str]:
    text = _unquote_cell(text)
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [v for v in text.split("; ") if v != ""]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _unquote_cell(text: str) -> str:
    """A cell as written: the ``'`` a sheet puts before a leading formula character removed."""
    return text[1:] if text.startswith("'") and text[1:2].startswith(_FORMULA_START) and \
        len(text) > 1 else text


def parse_crm_sheet(text: str, source: str, *, missing_values: list[str],
                    numeric: Collection[str] = (),
                    event_groups: Mapping[str, Sequence[str]] | None = None) -> ImportedRules:
    """A CRM scoring sheet (``export --format crm-csv`` or typed by a person); its event
    criteria rows (``occurred at least``) become event rules
    (:mod:`pipeline.exports.event_import`)."""
    collected = RuleCollector(source)
    events = EventCollector()
    spam_gate = False
    for i, row in enumerate(_csv_rows(text, source, ("score_group", "field", "operator",
                                                     "value", "points")), start=2):
        where = f"{source} row {i}"
        if row.get("rule_id", "").strip() == "GATE":
            spam_gate = True
            continue
        operator = row["operator"].strip().casefold()
        if operator in SHEET_OPERATORS:
            events.add_sheet_row(row, group_of(row["score_group"], f"{where} column "
                                               "score_group"),
                                 points_cell(row["points"], f"{where} column points"), where)
            continue
        op = _CRM_OPERATORS.get(operator)
        if op is None:
            names = sorted([*(k for k in _CRM_OPERATORS if len(k) > 2 and k != "is"),
                            *SHEET_OPERATORS])
            raise UserError(f"{where} column operator: {row['operator']!r} is not one of "
                            f"{', '.join(names)}")
        if row["field"].strip().casefold().startswith(EVENT_FIELD.strip()):
            raise UserError(f"{where} column operator: an '{EVENT_FIELD}...' field takes the "
                            f"operator {' or '.join(map(repr, SHEET_OPERATORS))}, not "
                            f"{row['operator']!r}")
        f = collected.factor(_unquote_cell(row["field"]), group_of(row["score_group"], where),
                             where)
        pts = points_cell(row["points"], f"{where} column points")
        value = row.get("value", "")
        if op == "equals":
            f.add_level(_unquote_cell(value), pts)
        elif op == "any_of":
            for level in _sheet_values(value):
                f.add_level(level, pts)
        elif op == "missing":
            f.missing += pts
        elif op == "other":
            f.unseen += pts
            f.listed += _sheet_values(value)
        elif op == "any":
            f.anything += pts
        elif op == "greater":
            f.ranges.append((number_cell(value, where), math.inf, pts))
        elif op == "at_most":
            f.ranges.append((-math.inf, number_cell(value, where), pts))
        else:
            f.ranges.append((number_cell(value, where), number_cell(row.get("value2", ""), where),
                             pts))
    for f in collected.factors.values():
        if f.ranges and f.anything:
            f.ranges.append((-math.inf, math.inf, 0))
    rules, notes = collected.rules(missing_values, numeric, events=events,
                                   event_groups=event_groups, spam_gate=spam_gate)
    return ImportedRules(rules, "crm-csv", False, notes=notes)


_HUBSPOT_PROPERTY = ("propertyName", "property")


def _hubspot_points(rule: dict[str, Any], where: str) -> int:
    calc = ((rule.get("configuration") or {}).get("calculation") or {})
    for value in (calc.get("value"), rule.get("points"), rule.get("scoreValue")):
        if value is not None:
            return points_cell(value, f"{where} points")
    raise UserError(f"{where}: no points (configuration.calculation.value)")


def parse_hubspot(data: dict[str, Any], source: str, *, missing_values: list[str],
                  numeric: Collection[str] = (),
                  event_groups: Mapping[str, Sequence[str]] | None = None) -> ImportedRules:
    """HubSpot's lead-scoring JSON (see the module docstring)."""
    collected = RuleCollector(source)
    events = EventCollector()
    meta = data.get("lead_scoring") or {}
    counted = velocity_properties(meta, source)  # every event rule the export describes
    tokens: list[str] = []
    for g, group in enumerate(data.get("groupConfigs") or []):
        category = group_of(group.get("groupCategory", ""), f"{source} groupConfigs[{g}]")
        for r, rule in enumerate(group.get("ruleConfigurations") or []):
            where = f"{source} groupConfigs[{g}].ruleConfigurations[{r}]"
            if rule.get("enabled") is False:
                continue
            filters = rule.get("filters") or []
            if any(isinstance(flt, dict) and "eventType" in flt for flt in filters):
                hubspot_event_rule(events, rule, category, counted, where,
                                   _hubspot_points(rule, where))
                continue
            names = {next((flt[k] for k in _HUBSPOT_PROPERTY if k in flt), None)
                     for flt in filters}
            if len(names) != 1 or None in names:
                raise UserError(f"{where}: a rule's filters must name one property",
                                hint="rules combining properties cannot be one points-table "
                                     "factor; split them")
            name = str(names.pop())
            pts = _hubspot_points(rule, where)
            velocity = counted.get(name)
            if velocity is not None and velocity.anchor == "created":
                hubspot_velocity_rule(events, filters, velocity, category, pts, where)
                continue
            f = collected.factor(name, category, where)
            ops = {flt.get("operator"): flt for flt in filters}
            for flt in filters:  # a value kept out of a range: a special value of its own
                if flt.get("operator") == "NEQ":
                    f.specials.setdefault(number_cell(flt.get("value"), where), 0)
            if "NOT_HAS_PROPERTY" in ops:
                f.missing += pts
            elif "IN" in ops and set(map(str, ops["IN"].get("values", []))) <= \
                    set(missing_values) | set(tokens) | {""}:
                # the missing strings: the same points as its "is unknown" rule, one slot
                tokens += [str(v) for v in ops["IN"]["values"]]
            elif "IN" in ops:
                for level in ops["IN"].get("values", []):
                    f.add_level(str(level), pts)
            elif "NOT_IN" in ops:
                f.unseen += pts
                f.listed += [str(v) for v in ops["NOT_IN"].get("values", [])]
            elif "EQ" in ops:
                f.add_level(str(ops["EQ"].get("value")), pts)
            elif ops.keys() & {"GT", "GTE", "LT", "LTE"}:
                lo = number_cell(ops["GT"]["value"], where) if "GT" in ops else -math.inf
                hi = number_cell(ops["LTE"]["value"], where) if "LTE" in ops else math.inf
                if "GTE" in ops or "LT" in ops:
                    raise UserError(f"{where}: GTE / LT bounds: the points table's bins are "
                                    "right-closed (GT lower, LTE upper)",
                                    hint="rewrite x >= a as x > a - step, x < b as x <= b - "
                                         "step")
                f.ranges.append((lo, hi, pts))
            elif "HAS_PROPERTY" in ops:
                f.anything += pts
            else:
                raise UserError(f"{where}: operators {sorted(ops)} are not ones this import "
                                "reads")
    for f in collected.factors.values():
        if f.ranges and f.anything:
            f.ranges.append((-math.inf, math.inf, 0))
    limits = data.get("scoreLimits") or {}
    settings: dict[str, Any] = {"model_name": str(data.get("name", "")),
                                "spam_gate": bool(meta.get("spam_gate", False))}
    if "min" in limits and "max" in limits:  # the body before the 2026-09-beta API
        settings.update(score_min=int(limits["min"]), score_max=int(limits["max"]))
    if data.get("maxScore") is not None:
        settings["score_max"] = int(data["maxScore"])
    if meta.get("score_min") is not None:
        settings["score_min"] = int(meta["score_min"])
    has_threshold = "sdr_threshold" in meta
    if has_threshold:
        settings["sdr_threshold"] = int(meta["sdr_threshold"])
    if meta.get("grades"):
        settings["grades"] = list(meta["grades"])
    if meta.get("decay_half_life_days"):
        settings["decay_half_life_days"] = dict(meta["decay_half_life_days"])
    missing = list(dict.fromkeys([*missing_values, *tokens]))
    rules, notes = collected.rules(missing, numeric, events=events, event_groups=event_groups,
                                   **settings)
    return ImportedRules(rules, "hubspot", has_threshold, notes=notes)



# --------------------------------------------------------------------------- dispatch


def detect_format(text: str) -> str:
    """The format of a rules file's text (see :data:`IMPORT_FORMATS`)."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return "json"
        if data.get("format") == EDITED_FORMAT:
            return "edited"
        return "hubspot" if "groupConfigs" in data else "json"
    header = stripped.splitlines()[0] if stripped else ""
    return "crm-csv" if "score_group" in header else "csv"


def parse_rules(text: str, source: str, *, missing_values: list[str] | tuple[str, ...] = (),
                numeric: Collection[str] = (), fmt: str | None = None,
                event_groups: Mapping[str, Sequence[str]] | None = None) -> ImportedRules:
    """Read a rule set (format ``fmt``, else detected); ``missing_values`` are the strings
    that mean "missing" in the leads (the config's ``data.missing_values``), ``numeric`` the
    columns known to hold numbers (a sheet's "is not empty" alone cannot tell),
    ``event_groups`` the config's ``events.groups`` (names of event criteria factors)."""
    fmt = fmt or detect_format(text)
    missing = list(missing_values)
    if fmt not in IMPORT_FORMATS:
        raise UserError(f"rules format {fmt!r} is not one of {', '.join(IMPORT_FORMATS)}")
    if fmt in ("json", "edited", "hubspot"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{source}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        if not isinstance(data, dict):
            raise UserError(f"{source}: expected a JSON object")
        if fmt == "hubspot":
            return parse_hubspot(data, source, missing_values=missing, numeric=numeric,
                                 event_groups=event_groups)
        imported = parse_json_rules(data, source)
        if not imported.rules.missing_values and missing:
            from dataclasses import replace

            imported = replace(imported, rules=replace(imported.rules, missing_values=missing))
        return imported
    if fmt == "csv":
        return parse_csv_rules(text, source, missing_values=missing)
    return parse_crm_sheet(text, source, missing_values=missing, numeric=numeric,
                           event_groups=event_groups)


def read_rules(path: Path, *, missing_values: list[str] | tuple[str, ...] = (),
               numeric: Collection[str] = (), fmt: str | None = None,
               event_groups: Mapping[str, Sequence[str]] | None = None) -> ImportedRules:
    """:func:`parse_rules` of the file at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: rules file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text", hint="save the sheet as CSV UTF-8") from None
    return parse_rules(text, str(path), missing_values=missing_values, numeric=numeric,
                       fmt=fmt, event_groups=event_groups)
