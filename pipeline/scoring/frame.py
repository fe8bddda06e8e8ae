"""Vectorised scoring of a frame with a :class:`~pipeline.model.rules.PointsRules` table.

Each factor becomes a points table indexed per row (:mod:`pipeline.scoring.factor_lookup`:
category codes, integer values, or float values binned a cache-sized step at a time); the
points are summed per group and clipped, and the probability and grade of each possible total
are tabulated once. Rows are shared between two threads when there are many (numpy releases
the GIL in the lookups).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.model.rules import FactorRules, PointsRules
from pipeline.scoring.factor_lookup import (
    MISSING_LABEL,
    UNSEEN_LABEL,
    Scratch,
    categorical_lookup,
    check_columns,
    factor_outcome_labels,
    factor_outcome_points,
    factor_points,
    factor_slot_codes,
    float_bins,
    integer_values_lookup,
    numeric_lookup,
    numeric_values,
    points_matrix,
    spam_mask,
    unseen_counts,
)

# the lookups' public names are still importable from here (they were defined here)
__all__ = ["MISSING_LABEL", "UNSEEN_LABEL", "factor_outcome_labels", "factor_outcome_points",
           "factor_points", "factor_slot_codes", "points_matrix", "reason_codes",
           "reason_pieces", "score_frame", "spam_mask", "unseen_counts"]

_MIN_ROWS_PER_THREAD = 100_000  # below this, a second thread costs more than it saves
_ROWS_PER_STEP = 1 << 18  # rows scored at a time: the buffers of a step stay in cache
_MAX_TOTALS = 1 << 22  # widest range of totals whose probabilities are tabulated


def _accumulator_dtype(rules: PointsRules) -> type:
    """The narrowest integer type that holds any sum of points (less memory to stream)."""
    bound = sum(max(abs(f.min_points), abs(f.max_points)) for f in rules.factors)
    for dtype in (np.int16, np.int32):
        if bound < np.iinfo(dtype).max:
            return dtype
    return np.int64


@dataclass(frozen=True)
class _Plan:
    """One factor, ready to score any range of rows: a points table and what indexes it.

    Categorical codes and integer values index the table directly; float values are binned
    range by range, so the bins of one range stay in cache until the table lookup.
    """

    points: np.ndarray  # points per index value, in the accumulator dtype
    index: np.ndarray | None  # per row: category code or integer value
    values: np.ndarray | None  # per row: float value (when ``index`` is None)
    edges: np.ndarray
    is_fit: bool
    mode: str = "wrap"  # how ``index`` beyond the table is read (see Lookup)

    def points_into(self, start: int, stop: int, out: np.ndarray, scratch: Scratch) -> None:
        if self.index is not None:
            index = self.index[start:stop]
        else:
            index = float_bins(self.values[start:stop], self.edges, len(self.points) - 2,
                                scratch)
        np.take(self.points, index, out=out, mode=self.mode)


def _plan(factor: FactorRules, series: pd.Series, missing_values: list[str], acc: type
          ) -> _Plan:
    is_fit = factor.group == "FIT"
    outcome_points = factor_outcome_points(factor)
    if factor.kind == "numeric" and factor.special_points:
        lookup = numeric_lookup(factor, series, missing_values)
    elif factor.kind == "numeric":
        lookup = integer_values_lookup(factor, series)
        if lookup is None:
            values = numeric_values(series, missing_values)
            return _Plan(outcome_points.astype(acc), None, values,
                         np.asarray(factor.edges, dtype=np.float64), is_fit)
    else:
        lookup = categorical_lookup(factor, series, missing_values)
    return _Plan(outcome_points.take(lookup.slots).astype(acc), lookup.index, None,
                 np.empty(0), is_fit, lookup.mode)


class _PerTotal:
    """Probability and grade code of every possible total, looked up by ``total - lowest``.

    Totals are integers within the sum of the factors' point ranges (clipped to the score
    caps), so each is computed once instead of once per lead; a table whose range is too wide
    for that (huge hand-written points) computes them per lead instead.
    """

    def __init__(self, rules: PointsRules) -> None:
        lo = sum(f.min_points for f in rules.factors)
        hi = sum(f.max_points for f in rules.factors)
        self.rules = rules
        self.lowest, highest = (int(np.clip(x, rules.score_min, rules.score_max))
                                for x in (lo, hi))
        self.per_lead = highest - self.lowest >= _MAX_TOTALS
        totals = np.arange(self.lowest, self.lowest if self.per_lead else highest + 1)
        self.probability = _probabilities(rules, totals)
        self.grade_names, codes = _grade_codes(rules, totals)
        self.grade = codes.astype(np.int8 if len(self.grade_names) < 128 else np.int64)

    def fill(self, total: np.ndarray, probability: np.ndarray, grade: np.ndarray,
             scratch: np.ndarray) -> None:
        if self.per_lead:
            probability[:] = _probabilities(self.rules, total)
            grade[:] = _grade_codes(self.rules, total)[1]
            return
        offset = np.subtract(total, self.lowest, out=scratch)
        np.take(self.probability, offset, out=probability, mode="clip")  # clip never acts
        if self.grade_names:
            np.take(self.grade, offset, out=grade, mode="clip")


def _grade_codes(rules: PointsRules, totals: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Grade names from the lowest to the highest, and the grade code of each total."""
    cuts = sorted(rules.grades, key=lambda g: g["min_points"])
    mins = np.asarray([g["min_points"] for g in cuts], dtype=float)
    names = [str(g["grade"]) for g in cuts]
    if not names:
        return [], np.zeros(len(totals), dtype=np.int64)
    codes = np.clip(np.searchsorted(mins, totals, side="right") - 1, 0, len(names) - 1)
    return names, codes


@dataclass
class _Outputs:
    """The score columns being filled, each thread writing its own range of rows."""

    block: np.ndarray  # points, fit, pain as the rows of one int64 array
    probability: np.ndarray
    sdr_ready: np.ndarray
    grade: np.ndarray


def _score_rows(plans: list[_Plan], rules: PointsRules, per_total: _PerTotal, acc: type,
                start: int, stop: int, out: _Outputs) -> None:
    """Score rows ``start:stop``, a cache-sized step at a time: sum the factors' points, then
    everything that follows from the total."""
    size = max(1, min(stop - start, _ROWS_PER_STEP))
    fit, pain, points = (np.empty(size, dtype=acc) for _ in range(3))
    offsets = np.empty(size, dtype=np.int64)
    scratch = Scratch(size)
    for a in range(start, stop, size):
        b = min(a + size, stop)
        m = b - a
        started = {True: False, False: False}  # FIT, PAIN: has a factor written its sum yet?
        for plan in plans:
            target = fit[:m] if plan.is_fit else pain[:m]
            if started[plan.is_fit]:
                plan.points_into(a, b, points[:m], scratch)
                np.add(target, points[:m], out=target)
            else:  # the group's first factor writes the sum itself: no zeroing, no add
                plan.points_into(a, b, target, scratch)
                started[plan.is_fit] = True
        for is_fit, done in started.items():
            if not done:
                (fit if is_fit else pain)[:m] = 0
        total = out.block[0, a:b]
        np.add(fit[:m], pain[:m], out=total, dtype=np.int64)
        out.block[1, a:b] = fit[:m]
        out.block[2, a:b] = pain[:m]
        if rules.score_min is not None or rules.score_max is not None:
            np.clip(total, rules.score_min, rules.score_max, out=total)
        per_total.fill(total, out.probability[a:b], out.grade[a:b], offsets[:m])
        np.greater_equal(total, rules.sdr_threshold, out=out.sdr_ready[a:b])


def _scoring_threads(n_rows: int, threads: int | None) -> int:
    if threads is not None:
        return max(1, threads)
    return min(2, os.cpu_count() or 1) if n_rows >= _MIN_ROWS_PER_THREAD else 1


def _probabilities(rules: PointsRules, totals: np.ndarray) -> np.ndarray:
    z = rules.prob_intercept + rules.prob_slope * totals.astype(float)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def _grade_column(names: list[str], codes: np.ndarray) -> pd.Categorical:
    """Grade per lead, as a categorical ordered from the lowest grade to the highest."""
    if len(set(names)) != len(names):  # repeated names cannot be categories: plain text
        return pd.Categorical(np.asarray(names, dtype=object)[codes])
    return pd.Categorical.from_codes(codes, categories=names, ordered=True, validate=False)


def score_frame(rules: PointsRules, frame: pd.DataFrame, *, reasons: bool = False,
                threads: int | None = None) -> pd.DataFrame:
    """Score columns for every row: ``points, fit, pain, probability, sdr_ready`` (+ ``grade``).

    ``sdr_ready`` honours the points table's spam gate (``rules.spam_gate``: ``name_spam``).

    With ``reasons``, also ``reason_codes``: the three factors that added most and the three
    that took away most, in words (see :func:`reason_codes`). The rows are shared between up
    to ``threads`` threads (default: 2 when there are two cores and many rows); numpy
    releases the GIL in the lookups, so they run in parallel.
    """
    check_columns(rules, frame)
    gate = spam_mask(rules, frame)  # checked before the work: the gate's column is present
    n = len(frame)
    acc = _accumulator_dtype(rules)
    plans = [_plan(f, frame[f.name], rules.missing_values, acc) for f in rules.factors]
    per_total = _PerTotal(rules)
    out = _Outputs(np.empty((3, n), dtype=np.int64), np.empty(n), np.empty(n, dtype=bool),
                   np.empty(n, dtype=per_total.grade.dtype))
    parts = min(_scoring_threads(n, threads), max(n, 1))
    bounds = [n * k // parts for k in range(parts + 1)]
    ranges = list(zip(bounds[:-1], bounds[1:], strict=True))
    if len(ranges) > 1:
        with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
            list(pool.map(lambda r: _score_rows(plans, rules, per_total, acc, *r, out), ranges))
    else:
        _score_rows(plans, rules, per_total, acc, 0, n, out)
    out.sdr_ready &= ~gate
    columns = {"points": out.block[0], "fit": out.block[1], "pain": out.block[2],
               "probability": out.probability, "sdr_ready": out.sdr_ready}
    if per_total.grade_names:
        columns["grade"] = _grade_column(per_total.grade_names, out.grade)
    scores = pd.DataFrame(columns, index=frame.index, copy=False)  # adopts the arrays
    if reasons:
        scores["reason_codes"] = _reason_column(rules, frame)
    return scores


def reason_codes(rules: PointsRules, frame: pd.DataFrame, matrix: np.ndarray | None = None,
                 *, top: int = 3) -> list[str]:
    """Per lead: the ``top`` factors that added most and the ``top`` that took away most.

    Each part reads ``factor = level: +points``; positives first (most points first, ties in
    factor order), then negatives (most negative first, ties in reverse factor order), joined
    by ``"; "`` (see :mod:`pipeline.scoring.reasons`). ``matrix`` is accepted for
    compatibility and not needed: the points follow from the outcome slots.
    """
    check_columns(rules, frame)
    return list(_reason_column(rules, frame, top=top))


def _reason_inputs(rules: PointsRules, frame: pd.DataFrame) -> tuple[list, list, list]:
    slots = [factor_slot_codes(f, frame[f.name], rules.missing_values) for f in rules.factors]
    return (slots, [factor_outcome_points(f) for f in rules.factors],
            [factor_outcome_labels(f) for f in rules.factors])


def _reason_column(rules: PointsRules, frame: pd.DataFrame, *, top: int = 3) -> Any:
    from pipeline.scoring.reasons import reason_texts

    return reason_texts(rules, *_reason_inputs(rules, frame), top=top, n_rows=len(frame))


def reason_pieces(rules: PointsRules, frame: pd.DataFrame, *, top: int = 3) -> Any:
    """Reason codes per lead as a list of dictionary-encoded pieces (Arrow ``ListArray``; see
    :func:`pipeline.scoring.reasons.reason_pieces`): what the batch scorer writes to Parquet."""
    from pipeline.scoring.reasons import reason_pieces as pieces

    check_columns(rules, frame)
    return pieces(rules, *_reason_inputs(rules, frame), top=top, n_rows=len(frame))
