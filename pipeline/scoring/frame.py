"""Vectorised scoring of a frame with a :class:`~pipeline.model.rules.PointsRules` table.

The same semantics as the row-by-row reference :func:`pipeline.model.reference.score_record`,
with no per-row Python. Every factor is scored as *index -> lookup table*:

* categorical: the column's distinct values are found once (the categories of a pandas
  ``Categorical``, e.g. a dictionary-encoded Parquet column, or ``pd.factorize`` otherwise);
  each distinct value is mapped to its outcome once, then rows take by their code. Hashing
  strings row by row is what makes a naive scorer slow, so keep categoricals
  dictionary-encoded from the file onward;
* numeric, integer dtype with a small span of edges: a value -> bin lookup array over
  ``[floor(edges[0]), floor(edges[-1]) + 1]`` (values outside clip to the end bins);
* numeric, float with few edges: the bin index is the number of edges below the value,
  counted with one vector comparison per edge (cheaper than a binary search for a handful of
  edges); many edges fall back to ``searchsorted``.

A numeric factor with special values (``special_points``, e.g. ``999``) bins as above, then
sends the rows equal to a special value to that value's slot: one vector comparison each.

Outcome slots of a factor are its levels (or bins) in order, then ``missing``, then
``unseen``, then (numeric) its special values in ascending order (see
:func:`factor_outcome_points`).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.model.reference import canonical_str
from pipeline.model.rules import FactorRules, PointsRules

MISSING_LABEL = "(missing)"
UNSEEN_LABEL = "(unseen)"
_MAX_LOOKUP = 1 << 16  # largest value -> bin lookup array for integer columns
_MAX_COMPARE_EDGES = 24  # above this many edges a binary search is cheaper than comparisons
_MIN_ROWS_PER_THREAD = 100_000  # below this, a second thread costs more than it saves
_ROWS_PER_STEP = 1 << 18  # rows scored at a time: the buffers of a step stay in cache
_MAX_TOTALS = 1 << 22  # widest range of totals whose probabilities are tabulated


@dataclass(frozen=True)
class _Lookup:
    """``slots.take(index, mode=mode)`` is the outcome slot of each row.

    Categorical codes may be -1 (null), which "wrap" sends to the last entry (missing);
    integer values beyond the lookup's range "clip" to its end bins.
    """

    index: np.ndarray
    slots: np.ndarray
    mode: str = "wrap"

    def slots_per_row(self) -> np.ndarray:
        return self.slots.take(self.index, mode=self.mode)


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series)


def _categorical_slot(factor: FactorRules, value: object, positions: dict[str, int],
                      tokens: frozenset[str]) -> int:
    """Outcome slot of one distinct non-null value (the reference rules, applied once)."""
    if isinstance(value, float) and math.isnan(value):
        return len(positions)
    if isinstance(value, str):
        if value in tokens:
            return len(positions)
        key = value
    else:
        key = canonical_str(value)
    return positions.get(key, len(positions) + 1)


def _codes_and_uniques(series: pd.Series) -> tuple[np.ndarray, list[object]]:
    """Integer codes per row (-1 for null) and the distinct values they index."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.array.codes, series.cat.categories.tolist()  # .array.codes: no copy
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return codes, list(uniques.tolist() if hasattr(uniques, "tolist") else uniques)


def _categorical_lookup(factor: FactorRules, series: pd.Series, missing_values: list[str]
                        ) -> _Lookup:
    positions = {level: i for i, level in enumerate(factor.levels)}
    tokens = frozenset([*missing_values, ""])
    codes, uniques = _codes_and_uniques(series)
    slots = [_categorical_slot(factor, u, positions, tokens) for u in uniques]
    slots.append(len(positions))  # code -1 (null) takes the last entry: missing
    return _Lookup(codes, np.asarray(slots, dtype=np.int32))


def _numeric_values(series: pd.Series, missing_values: list[str]) -> np.ndarray:
    """Float values with every missing token, null and unparseable text as NaN."""
    tokens = [*missing_values, ""]
    if isinstance(series.dtype, pd.CategoricalDtype):
        cats = pd.Series(series.cat.categories, dtype=object)
        numbers = pd.to_numeric(cats.where(~cats.isin(tokens)), errors="coerce")
        table = np.append(numbers.to_numpy(dtype=float, na_value=np.nan), np.nan)
        return table.take(series.cat.codes.to_numpy())
    if _is_text(series):
        series = series.where(~series.isin(tokens))
        return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return series.to_numpy(dtype=float, na_value=np.nan)


def _integer_lookup(factor: FactorRules, values: np.ndarray) -> _Lookup | None:
    """A value -> bin lookup array for integer columns, when the edges span a small range.

    The array covers ``[min(floor(edges[0]), 0), floor(edges[-1]) + 1]``: values beyond it
    clip to its end entries, which are the end bins. Non-negative counts index it as they are,
    with no copy.
    """
    edges = factor.edges
    if not edges:
        return _Lookup(np.zeros(len(values), dtype=np.int8), np.zeros(1, dtype=np.int32))
    if values.dtype.kind == "u" and values.dtype.itemsize == 8:
        return None
    lo = min(math.floor(edges[0]), 0)
    hi = math.floor(edges[-1]) + 1
    if hi - lo > _MAX_LOOKUP:
        return None
    grid = np.arange(lo, hi + 1, dtype=np.float64)
    slots = np.searchsorted(np.asarray(edges, dtype=np.float64), grid, side="left")
    index = values if lo == 0 else values.astype(np.int64) - lo
    return _Lookup(index, slots.astype(np.int32), mode="clip")


def _float_bins(values: np.ndarray, edges: np.ndarray, missing_slot: int,
               scratch: _Scratch | None = None) -> np.ndarray:
    """Bin index per value (the number of edges strictly below it); NaN -> the missing slot."""
    n = len(values)
    if len(edges) > _MAX_COMPARE_EDGES or len(edges) == 0:
        index = np.searchsorted(edges, values, side="left").astype(np.int16)
        index[np.isnan(values)] = missing_slot
        return index
    scratch = scratch or _Scratch(n)
    index, flag = scratch.index[:n], scratch.flag[:n]
    flag_as_int = flag.view(np.int8)
    np.greater(values, edges[0], out=index.view(bool))
    for edge in edges[1:]:
        np.greater(values, edge, out=flag)
        np.add(index, flag_as_int, out=index)
    np.isnan(values, out=flag)  # NaN is above no edge: its index is 0 so far
    np.multiply(flag_as_int, np.int8(missing_slot), out=flag_as_int)
    np.add(index, flag_as_int, out=index)
    return index


class _Scratch:
    """Reusable buffers for binning floats (one set per thread)."""

    def __init__(self, n: int) -> None:
        self.index = np.empty(n, dtype=np.int8)
        self.flag = np.empty(n, dtype=bool)


def _integer_values_lookup(factor: FactorRules, series: pd.Series) -> _Lookup | None:
    if pd.api.types.is_integer_dtype(series.dtype) and isinstance(series.dtype, np.dtype):
        return _integer_lookup(factor, series.to_numpy())
    return None


def _numeric_lookup(factor: FactorRules, series: pd.Series, missing_values: list[str]
                    ) -> _Lookup:
    if factor.special_points:
        return _special_lookup(factor, _numeric_values(series, missing_values))
    lookup = _integer_values_lookup(factor, series)
    if lookup is not None:
        return lookup
    values = _numeric_values(series, missing_values)
    index = _float_bins(values, np.asarray(factor.edges, dtype=np.float64),
                        len(factor.bin_points))
    return _Lookup(index, np.arange(len(factor.bin_points) + 2, dtype=np.int32))


def _special_lookup(factor: FactorRules, values: np.ndarray) -> _Lookup:
    """Outcome slot per row of a numeric factor with special values: the bin (or missing),
    then each row equal to a special value moved to that value's slot, after ``unseen``.
    NaN equals nothing, so missing rows stay missing, as the reference checks them first."""
    n_bins = len(factor.bin_points)
    index = _float_bins(values, np.asarray(factor.edges, dtype=np.float64), n_bins)
    index = index.astype(np.int32)
    for k, (value, _, _) in enumerate(factor.special_values()):
        index[values == value] = n_bins + 2 + k
    return _Lookup(index, np.arange(n_bins + 2 + len(factor.special_points), dtype=np.int32))


def _lookup(factor: FactorRules, series: pd.Series, missing_values: list[str]) -> _Lookup:
    if factor.kind == "numeric":
        return _numeric_lookup(factor, series, missing_values)
    return _categorical_lookup(factor, series, missing_values)


def factor_outcome_points(factor: FactorRules) -> np.ndarray:
    """Points per outcome slot (levels/bins..., missing, unseen, special values...)."""
    base = list(factor.levels.values()) if factor.kind == "categorical" else list(factor.bin_points)
    special = [points for _, points, _ in factor.special_values()]
    return np.asarray([*base, factor.missing_points, factor.unseen_points, *special],
                      dtype=np.int64)


def factor_outcome_labels(factor: FactorRules) -> list[str]:
    """Words per outcome slot, as reason codes print them."""
    base = list(factor.levels) if factor.kind == "categorical" else factor.bin_labels()
    special = [label for _, _, label in factor.special_values()]
    return [*base, MISSING_LABEL, UNSEEN_LABEL, *special]


def factor_slot_codes(factor: FactorRules, series: pd.Series, missing_values: list[str]
                      ) -> np.ndarray:
    """Outcome slot per row: levels/bins, then missing, then unseen."""
    lookup = _lookup(factor, series, missing_values)
    return lookup.slots_per_row()


def factor_points(factor: FactorRules, series: pd.Series, missing_values: list[str], *,
                  dtype: type = np.int64) -> np.ndarray:
    """Points of one factor per row: one ``take`` from a small lookup table."""
    lookup = _lookup(factor, series, missing_values)
    table = factor_outcome_points(factor).take(lookup.slots).astype(dtype)
    return table.take(lookup.index, mode=lookup.mode)


def _check_columns(rules: PointsRules, frame: pd.DataFrame) -> None:
    absent = [f.name for f in rules.factors if f.name not in frame.columns]
    if absent:
        raise KeyError(f"columns {absent} needed by the points table are missing from the input")


def spam_mask(rules: PointsRules, frame: pd.DataFrame) -> np.ndarray:
    """Per row: does the spam gate take SDR-ready away (gate on and ``name_spam`` is "yes",
    as :meth:`PointsRules.is_spam`)? Raises ``KeyError`` when the gate needs an absent column."""
    if not rules.spam_gate:
        return np.zeros(len(frame), dtype=bool)
    from pipeline.model.rules import SPAM_COLUMN, SPAM_VALUE

    if SPAM_COLUMN not in frame.columns:
        raise KeyError(f"column {SPAM_COLUMN!r} needed by the spam gate (spam_gate: true) is "
                       "missing from the input")
    if not rules.is_spam(SPAM_VALUE):  # "yes" is a missing token: no lead is spam
        return np.zeros(len(frame), dtype=bool)
    return frame[SPAM_COLUMN].astype(object).eq(SPAM_VALUE).to_numpy(dtype=bool)


def points_matrix(rules: PointsRules, frame: pd.DataFrame) -> np.ndarray:
    """Points per lead (rows) and factor (columns, in ``rules.factors`` order), int64."""
    _check_columns(rules, frame)
    out = np.zeros((len(frame), len(rules.factors)), dtype=np.int64, order="F")
    for j, factor in enumerate(rules.factors):
        out[:, j] = factor_points(factor, frame[factor.name], rules.missing_values)
    return out


def unseen_counts(rules: PointsRules, frame: pd.DataFrame) -> dict[str, int]:
    """How many leads had a level never seen in training, per categorical factor."""
    counts = {}
    for factor in rules.factors:
        if factor.kind != "categorical":
            continue
        lookup = _lookup(factor, frame[factor.name], rules.missing_values)
        unseen_slot = len(factor.levels) + 1
        is_unseen = lookup.slots == unseen_slot
        if not is_unseen.any():
            continue
        n = int(is_unseen.take(lookup.index, mode=lookup.mode).sum())
        if n:
            counts[factor.name] = n
    return counts


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
    mode: str = "wrap"  # how ``index`` beyond the table is read (see _Lookup)

    def points_into(self, start: int, stop: int, out: np.ndarray, scratch: _Scratch) -> None:
        if self.index is not None:
            index = self.index[start:stop]
        else:
            index = _float_bins(self.values[start:stop], self.edges, len(self.points) - 2,
                                scratch)
        np.take(self.points, index, out=out, mode=self.mode)


def _plan(factor: FactorRules, series: pd.Series, missing_values: list[str], acc: type
          ) -> _Plan:
    is_fit = factor.group == "FIT"
    outcome_points = factor_outcome_points(factor)
    if factor.kind == "numeric" and factor.special_points:
        lookup = _numeric_lookup(factor, series, missing_values)
    elif factor.kind == "numeric":
        lookup = _integer_values_lookup(factor, series)
        if lookup is None:
            values = _numeric_values(series, missing_values)
            return _Plan(outcome_points.astype(acc), None, values,
                         np.asarray(factor.edges, dtype=np.float64), is_fit)
    else:
        lookup = _categorical_lookup(factor, series, missing_values)
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
    scratch = _Scratch(size)
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
    _check_columns(rules, frame)
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
    _check_columns(rules, frame)
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

    _check_columns(rules, frame)
    return pieces(rules, *_reason_inputs(rules, frame), top=top, n_rows=len(frame))
