"""The reference scorer: one lead at a time, slow and obviously right, the semantics every
vectorised engine and export of a :class:`pipeline.model.rules.PointsRules` is tested
against (what "missing" means, how a value matches a level or a bin)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipeline.model.rules import SPAM_COLUMN

if TYPE_CHECKING:
    from pipeline.model.rules import FactorRules, PointsRules


def is_missing(value: Any, missing_values: list[str] | tuple[str, ...]) -> bool:
    """The one definition of "missing" every scorer follows."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str):
        return value == "" or value in missing_values
    return False


def factor_points(factor: FactorRules, value: Any, missing_values: list[str]) -> tuple[int, str]:
    """Points of one factor for one raw value, and what matched (for reason codes).

    Reference implementation, one value at a time: slow and obviously right. The
    vectorised engines and every export are tested against it.
    """
    if is_missing(value, missing_values):
        return factor.missing_points, "(missing)"
    if factor.kind == "categorical":
        key = value if isinstance(value, str) else canonical_str(value)
        if key in factor.levels:
            return factor.levels[key], key
        return factor.unseen_points, "(unseen)"
    x = float(value)
    if math.isnan(x):
        return factor.missing_points, "(missing)"
    for special, points, label in factor.special_values():
        if x == special:
            return points, label
    index = sum(1 for edge in factor.edges if edge < x)
    return factor.bin_points[index], factor.bin_labels()[index]


def canonical_str(value: Any) -> str:
    """How a non-string value is matched against categorical levels (``1.0`` -> ``"1"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def score_record(rules: PointsRules, lead: Mapping[str, Any]) -> dict[str, Any]:
    """Score one lead (a mapping of column -> raw value) with the reference scorer."""
    fit = pain = 0
    for factor in rules.factors:
        pts, _ = factor_points(factor, lead.get(factor.name), rules.missing_values)
        if factor.group == "FIT":
            fit += pts
        else:
            pain += pts
    total = fit + pain
    if rules.score_min is not None:
        total = max(total, rules.score_min)
    if rules.score_max is not None:
        total = min(total, rules.score_max)
    return {
        "points": total,
        "fit": fit,
        "pain": pain,
        "probability": rules.probability(total),
        "sdr_ready": total >= rules.sdr_threshold
        and not (rules.spam_gate and rules.is_spam(lead.get(SPAM_COLUMN))),
    }
