"""Conditions read from a rule sheet, built into points-table factors
(:mod:`pipeline.exports.importers`).

A CRM builder adds the points of every rule that holds and 0 when none does: each slot of a
built factor gets the sum of the rules covering it. A factor with a range rule is numeric
(its edges the union of the rule bounds; a value equal to an ``equals`` rule is a special
value, matched before the ranges), else categorical.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.errors import UserError
from pipeline.model.rules import FactorRules, PointsRules, special_key

if TYPE_CHECKING:
    from pipeline.exports.event_import import EventCollector

GROUPS = {"fit": "FIT", "pain": "PAIN", "engagement": "PAIN", "behavior": "PAIN",
           "behaviour": "PAIN"}


@dataclass
class FactorConditions:
    """The conditions read for one factor, before its kind is known."""

    name: str
    group: str
    levels: dict[str, int] = field(default_factory=dict)
    listed: list[str] = field(default_factory=list)  # levels named by an "other" rule
    missing: int = 0
    unseen: int = 0
    anything: int = 0  # a rule that holds for every present value
    specials: dict[float, int] = field(default_factory=dict)
    ranges: list[tuple[float, float, int]] = field(default_factory=list)  # (lo, hi] points
    overlaps: bool = False

    def add_level(self, level: str, points: int) -> None:
        self.overlaps |= level in self.levels
        self.levels[level] = self.levels.get(level, 0) + points


def bins_of(edges: list[float]) -> list[tuple[float, float]]:
    bounds = [-math.inf, *edges, math.inf]
    return list(zip(bounds, bounds[1:], strict=False))


def build_factor(f: FactorConditions, missing_values: list[str], where: str, numeric: bool
                 ) -> FactorRules:
    """The factor ``f`` describes (``numeric``: its column holds numbers, so a lone "is not
    empty" rule makes a one-bin numeric factor)."""
    if numeric and not f.ranges and not f.listed and not f.unseen and \
            all(is_number(k) for k in f.levels):
        f.ranges.append((-math.inf, math.inf, 0))  # "is not empty" of a numeric column
    if f.ranges:
        if f.levels and any(not is_number(k) for k in f.levels):
            bad = next(k for k in f.levels if not is_number(k))
            raise UserError(f"{where}: factor {f.name!r} has range rules and a text value "
                            f"{bad!r}", hint="a factor is either numeric (ranges, numbers) or "
                                             "categorical (text values)")
        specials = dict(f.specials)
        for k, v in f.levels.items():
            specials[float(k)] = specials.get(float(k), 0) + v
        edges = sorted({b for lo, hi, _ in f.ranges for b in (lo, hi) if math.isfinite(b)})
        points = []
        for lo, hi in bins_of(edges):
            covering = [p for a, b, p in f.ranges if a <= lo and hi <= b]
            points.append(sum(covering) + f.anything)
        return FactorRules(f.name, f.group, "numeric", edges=edges, bin_points=points,
                           missing_points=f.missing, unseen_points=0,
                           special_points={special_key(k): v
                                           for k, v in sorted(specials.items())})
    if f.specials:
        for k, v in f.specials.items():
            f.add_level(special_key(k), v)
    levels = {k: v + f.anything for k, v in f.levels.items()}
    for level in f.listed:
        if level not in levels and level not in missing_values and level != "":
            levels[level] = f.anything
    return FactorRules(f.name, f.group, "categorical", levels=dict(sorted(levels.items())),
                       missing_points=f.missing, unseen_points=f.unseen + f.anything)


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def number_cell(text: Any, where: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise UserError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UserError(f"{where}: {text!r} is not a finite number")
    return value


def points_cell(text: Any, where: str) -> int:
    value = number_cell(text, where)
    if not value.is_integer():
        raise UserError(f"{where}: points must be whole numbers, got {text!r}")
    return int(value)


def group_of(text: str, where: str) -> str:
    group = GROUPS.get(str(text).strip().casefold())
    if group is None:
        raise UserError(f"{where}: group {text!r} is not one of FIT, PAIN (Fit, Behavior, "
                        "Engagement)")
    return group


class RuleCollector:
    def __init__(self, source: str) -> None:
        self.source = source
        self.factors: dict[str, FactorConditions] = {}

    def factor(self, name: str, group: str, where: str) -> FactorConditions:
        if not name.strip():
            raise UserError(f"{where}: the rule names no field")
        f = self.factors.setdefault(name, FactorConditions(name, group))
        if f.group != group:
            raise UserError(f"{where}: field {name!r} is in group {group} here and {f.group} "
                            "in an earlier rule", hint="keep each field in one group")
        return f

    def rules(self, missing_values: list[str], numeric: Collection[str] = (), *,
              events: EventCollector | None = None,
              event_groups: Mapping[str, Sequence[str]] | None = None, **settings: Any
              ) -> tuple[PointsRules, list[str]]:
        """The points table of the conditions read, the factors counted from events
        (``events``, named with the config's ``event_groups``) after the others."""
        factors = [build_factor(f, missing_values, self.source, f.name in numeric)
                   for f in self.factors.values()]
        notes = [f"{f.name}: rules overlap; their points are added" for f in
                 self.factors.values() if f.overlaps]
        event_rules = []
        if events is not None and events.rules:
            counted, event_rules = events.build([f.name for f in factors], event_groups or {})
            factors += counted
            notes += [f"{r.factor}: counted from the event log ({r.describe()})"
                      for r in event_rules]
        return PointsRules(factors=factors, missing_values=list(missing_values),
                           event_rules=event_rules, **settings), notes
