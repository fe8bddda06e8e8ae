"""What changed between two points tables, rule by rule (``lead-scoring diff``)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from pipeline.exports.table import factor_rules
from pipeline.model.rules import PointsRules

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

__all__ = ["DIFF_COLUMNS", "diff_rules"]
