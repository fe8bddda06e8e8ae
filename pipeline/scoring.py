"""Vectorised scoring of a frame with a :class:`~pipeline.rules.PointsRules` table.

The same semantics as the row-by-row reference :func:`pipeline.rules.score_record`, with no
per-row Python. Every factor is scored as *index -> lookup table*:

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

Outcome slots of a factor are its levels (or bins) in order, then ``missing``, then
``unseen`` (see :func:`factor_outcome_points`).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.rules import FactorRules, PointsRules, _canonical_str

MISSING_LABEL = "(missing)"
UNSEEN_LABEL = "(unseen)"
_MAX_LOOKUP = 1 << 16  # largest value -> bin lookup array for integer columns
_MAX_COMPARE_EDGES = 24  # above this many edges a binary search is cheaper than comparisons
_MIN_ROWS_PER_THREAD = 100_000  # below this, a second thread costs more than it saves


@dataclass(frozen=True)
class _Lookup:
    """``slots[index]`` is the outcome slot of each row (``index`` may be -1: the last entry)."""

    index: np.ndarray
    slots: np.ndarray


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
        key = _canonical_str(value)
    return positions.get(key, len(positions) + 1)


def _codes_and_uniques(series: pd.Series) -> tuple[np.ndarray, list[object]]:
    """Integer codes per row (-1 for null) and the distinct values they index."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.cat.codes.to_numpy(), series.cat.categories.tolist()
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
    """A value -> bin lookup array for integer columns whose values span a small range.

    The array covers both the edges and the column's own range, so each value indexes it
    directly: no clipping, and no copy at all for non-negative counts.
    """
    edges = factor.edges
    if not edges:
        return _Lookup(np.zeros(len(values), dtype=np.int8), np.zeros(1, dtype=np.int32))
    if len(values) == 0 or values.dtype.kind == "u" and values.dtype.itemsize == 8:
        return None
    lo = min(math.floor(edges[0]), int(values.min()), 0)
    hi = max(math.floor(edges[-1]) + 1, int(values.max()))
    if hi - lo > _MAX_LOOKUP:
        return None
    grid = np.arange(lo, hi + 1, dtype=np.float64)
    slots = np.searchsorted(np.asarray(edges, dtype=np.float64), grid, side="left")
    index = values if lo == 0 else values.astype(np.int64) - lo
    return _Lookup(index, slots.astype(np.int32))


def _float_index(factor: FactorRules, values: np.ndarray) -> np.ndarray:
    """Bin index per value (the number of edges strictly below it); NaN -> the missing slot."""
    edges = np.asarray(factor.edges, dtype=np.float64)
    missing_slot = len(factor.bin_points)
    nan = np.isnan(values)
    if len(edges) <= _MAX_COMPARE_EDGES:
        index = np.zeros(len(values), dtype=np.int8)
        above = np.empty(len(values), dtype=bool)
        for edge in edges:
            np.greater(values, edge, out=above)
            np.add(index, above, out=index, casting="unsafe")
        index += nan.view(np.int8) * np.int8(missing_slot)  # NaN is above no edge: it was 0
    else:
        index = np.searchsorted(edges, values, side="left").astype(np.int16)
        index[nan] = missing_slot
    return index


def _numeric_lookup(factor: FactorRules, series: pd.Series, missing_values: list[str]
                    ) -> _Lookup:
    n_slots = len(factor.bin_points) + 2
    identity = np.arange(n_slots, dtype=np.int32)
    if (pd.api.types.is_integer_dtype(series.dtype) and isinstance(series.dtype, np.dtype)):
        lookup = _integer_lookup(factor, series.to_numpy())
        if lookup is not None:
            return lookup
    values = _numeric_values(series, missing_values)
    return _Lookup(_float_index(factor, values), identity)


def _lookup(factor: FactorRules, series: pd.Series, missing_values: list[str]) -> _Lookup:
    if factor.kind == "numeric":
        return _numeric_lookup(factor, series, missing_values)
    return _categorical_lookup(factor, series, missing_values)


def factor_outcome_points(factor: FactorRules) -> np.ndarray:
    """Points per outcome slot (levels/bins..., missing, unseen)."""
    base = list(factor.levels.values()) if factor.kind == "categorical" else list(factor.bin_points)
    return np.asarray([*base, factor.missing_points, factor.unseen_points], dtype=np.int64)


def factor_outcome_labels(factor: FactorRules) -> list[str]:
    """Words per outcome slot, as reason codes print them."""
    base = list(factor.levels) if factor.kind == "categorical" else factor.bin_labels()
    return [*base, MISSING_LABEL, UNSEEN_LABEL]


def factor_slot_codes(factor: FactorRules, series: pd.Series, missing_values: list[str]
                      ) -> np.ndarray:
    """Outcome slot per row: levels/bins, then missing, then unseen."""
    lookup = _lookup(factor, series, missing_values)
    return lookup.slots.take(lookup.index)


def factor_points(factor: FactorRules, series: pd.Series, missing_values: list[str], *,
                  dtype: type = np.int64) -> np.ndarray:
    """Points of one factor per row: one ``take`` from a small lookup table."""
    lookup = _lookup(factor, series, missing_values)
    table = factor_outcome_points(factor).take(lookup.slots).astype(dtype)
    return table.take(lookup.index)


def _check_columns(rules: PointsRules, frame: pd.DataFrame) -> None:
    absent = [f.name for f in rules.factors if f.name not in frame.columns]
    if absent:
        raise KeyError(f"columns {absent} needed by the points table are missing from the input")


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
        n = int(is_unseen.take(lookup.index).sum())
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


def _factor_cost(factor: FactorRules, series: pd.Series) -> int:
    """Rough relative cost of scoring a factor (float bins compare once per edge)."""
    if factor.kind == "categorical" or pd.api.types.is_integer_dtype(series.dtype):
        return 1
    return 1 + len(factor.edges) // 2


def _split_work(rules: PointsRules, frame: pd.DataFrame, parts: int) -> list[list[FactorRules]]:
    """Factors in ``parts`` lists of about equal cost (largest first onto the lightest)."""
    costed = sorted(((_factor_cost(f, frame[f.name]), i, f) for i, f in enumerate(rules.factors)),
                    key=lambda t: (-t[0], t[1]))
    bins: list[list[FactorRules]] = [[] for _ in range(parts)]
    loads = [0] * parts
    for cost, _, factor in costed:
        k = loads.index(min(loads))
        bins[k].append(factor)
        loads[k] += cost
    return [b for b in bins if b]


def _accumulate(factors: list[FactorRules], frame: pd.DataFrame, missing_values: list[str],
                acc: type, reasons: bool) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """FIT and PAIN sums of ``factors`` (and each factor's outcome slots when ``reasons``)."""
    n = len(frame)
    fit = np.zeros(n, dtype=acc)
    pain = np.zeros(n, dtype=acc)
    points = np.empty(n, dtype=acc)
    slots = {}
    for factor in factors:
        lookup = _lookup(factor, frame[factor.name], missing_values)
        table = factor_outcome_points(factor).take(lookup.slots).astype(acc)
        # "wrap" sends code -1 (null) to the table's last entry, and skips the bounds check
        np.take(table, lookup.index, out=points, mode="wrap")
        target = fit if factor.group == "FIT" else pain
        np.add(target, points, out=target)
        if reasons:
            slots[factor.name] = lookup.slots.take(lookup.index)
    return fit, pain, slots


def _scoring_threads(n_rows: int, threads: int | None) -> int:
    if threads is not None:
        return max(1, threads)
    return min(2, os.cpu_count() or 1) if n_rows >= _MIN_ROWS_PER_THREAD else 1


def _per_total(total: np.ndarray, values: Any) -> np.ndarray:
    """``values(totals)`` for every row, computed once per distinct total and looked up.

    Totals are integers in a small range, so this gives exactly what evaluating ``values`` on
    every row would, for the cost of one ``take``.
    """
    lo, hi = (int(total.min()), int(total.max())) if len(total) else (0, 0)
    if hi - lo > max(len(total), 1 << 16):
        return values(total)
    table = values(np.arange(lo, hi + 1))
    return table.take(total - lo if lo else total, mode="clip")  # in range: clip never acts


def _probabilities(rules: PointsRules, totals: np.ndarray) -> np.ndarray:
    z = rules.prob_intercept + rules.prob_slope * totals.astype(float)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def _grades(rules: PointsRules, total: np.ndarray) -> pd.Categorical:
    """Grade per lead, as a categorical ordered from the lowest grade to the highest."""
    cuts = sorted(rules.grades, key=lambda g: g["min_points"])
    mins = np.asarray([g["min_points"] for g in cuts], dtype=float)
    names = [str(g["grade"]) for g in cuts]

    def codes(totals: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(mins, totals, side="right") - 1, 0, len(names) - 1)

    idx = _per_total(total, codes)
    if len(set(names)) != len(names):  # repeated names cannot be categories: plain text
        return pd.Categorical(np.asarray(names, dtype=object)[idx])
    return pd.Categorical.from_codes(idx, categories=names, ordered=True)


def score_frame(rules: PointsRules, frame: pd.DataFrame, *, reasons: bool = False,
                threads: int | None = None) -> pd.DataFrame:
    """Score columns for every row: ``points, fit, pain, probability, sdr_ready`` (+ ``grade``).

    With ``reasons``, also ``reason_codes``: the three factors that added most and the three
    that took away most, in words (see :func:`reason_codes`). The factors are shared between
    up to ``threads`` threads (default: 2 when there are two cores and many rows); numpy
    releases the GIL in the lookups, so they run in parallel.
    """
    _check_columns(rules, frame)
    n = len(frame)
    acc = _accumulator_dtype(rules)
    parts = _split_work(rules, frame, _scoring_threads(n, threads))
    if len(parts) > 1:
        with ThreadPoolExecutor(max_workers=len(parts)) as pool:
            results = list(pool.map(
                lambda part: _accumulate(part, frame, rules.missing_values, acc, reasons), parts))
    else:
        results = [_accumulate(rules.factors, frame, rules.missing_values, acc, reasons)]
    fit, pain, slots = results[0]
    for more_fit, more_pain, more_slots in results[1:]:
        np.add(fit, more_fit, out=fit)
        np.add(pain, more_pain, out=pain)
        slots.update(more_slots)
    # points, fit and pain as the rows of one int64 block: pandas adopts it without a copy
    block = np.empty((3, n), dtype=np.int64)
    total, block[1], block[2] = block[0], fit, pain
    np.add(block[1], block[2], out=total)
    if rules.score_min is not None or rules.score_max is not None:
        np.clip(total, rules.score_min, rules.score_max, out=total)
    out = pd.DataFrame(block.T, columns=["points", "fit", "pain"], index=frame.index, copy=False)
    out["probability"] = _per_total(total, lambda t: _probabilities(rules, t))
    out["sdr_ready"] = total >= rules.sdr_threshold
    if rules.grades:
        out["grade"] = _grades(rules, total)
    if reasons:
        ordered = [slots[f.name] for f in rules.factors]
        out["reason_codes"] = _reason_texts(rules, ordered, n)
    return out


def reason_codes(rules: PointsRules, frame: pd.DataFrame, matrix: np.ndarray | None = None,
                 *, top: int = 3) -> list[str]:
    """Per lead: the ``top`` factors that added most and the ``top`` that took away most.

    Each part reads ``factor = level: +points``; positives first (most points first, ties in
    factor order), then negatives (most negative first, ties in reverse factor order), joined
    by ``"; "``. ``matrix`` is accepted for compatibility and not needed: the points follow
    from the outcome slots.
    """
    _check_columns(rules, frame)
    slots = [factor_slot_codes(f, frame[f.name], rules.missing_values) for f in rules.factors]
    return list(_reason_texts(rules, slots, len(frame), top=top))


def _pick(keys: np.ndarray, valid: np.ndarray, top: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``top`` smallest keys per row (keys distinct within a row): (column, is valid)."""
    keys = np.where(valid, keys, np.iinfo(np.int64).max)
    rows = np.arange(keys.shape[0])
    picks = []
    for _ in range(min(top, keys.shape[1])):
        j = keys.argmin(axis=1)
        picks.append((j, keys[rows, j] != np.iinfo(np.int64).max))
        keys[rows, j] = np.iinfo(np.int64).max
    return picks


def _reason_texts(rules: PointsRules, slots: list[np.ndarray], n: int, *, top: int = 3
                  ) -> Any:
    """Reason-code strings; the texts are joined by Arrow (no per-row Python)."""
    k = len(rules.factors)
    if k == 0 or n == 0:
        return pd.array([""] * n, dtype="str")
    tables = [factor_outcome_points(f) for f in rules.factors]
    points = np.column_stack([t.take(s) for t, s in zip(tables, slots, strict=True)])
    slot = np.column_stack(slots).astype(np.int64)
    col = np.arange(k, dtype=np.int64)
    # positives: most points first, ties by factor order; negatives: fewest first, ties reversed
    pos = _pick(-points * k + col, points > 0, top)
    neg = _pick(points * k + (k - 1 - col), points < 0, top)
    offsets = np.cumsum([0] + [len(t) for t in tables])
    pieces = pa.array([f"{f.name} = {label}: {int(p):+d}"
                       for f, t in zip(rules.factors, tables, strict=True)
                       for label, p in zip(factor_outcome_labels(f), t, strict=True)],
                      type=pa.string())
    rows = np.arange(n)
    columns = []  # the text of each position (null when the row has fewer reasons)
    for j, ok in pos + neg:
        piece = np.where(ok, offsets[j] + slot[rows, j], 0)
        columns.append(pieces.take(pa.array(piece, mask=~ok)))
    # a leading "" column: Arrow returns no rows when every input of a row is null
    lead = pa.array(np.full(n, "", dtype=object), type=pa.string())
    joined = pc.binary_join_element_wise(lead, *columns, "; ", null_handling="skip")
    return pc.utf8_slice_codeunits(joined, 2).to_pandas().array
