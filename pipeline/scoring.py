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
    """A value -> bin lookup array for integer columns whose edges span a small range."""
    edges = factor.edges
    if not edges:
        return _Lookup(np.zeros(len(values), dtype=np.int8), np.zeros(1, dtype=np.int32))
    lo, hi = math.floor(edges[0]), math.floor(edges[-1]) + 1
    if hi - lo > _MAX_LOOKUP or values.dtype.kind == "u" and values.dtype.itemsize == 8:
        return None
    values = values.astype(np.int64, copy=False)
    grid = np.arange(lo, hi + 1, dtype=np.float64)
    slots = np.searchsorted(np.asarray(edges, dtype=np.float64), grid, side="left")
    index = np.clip(values, lo, hi)
    if lo:
        index -= lo
    return _Lookup(index, slots.astype(np.int32))


def _float_index(factor: FactorRules, values: np.ndarray) -> np.ndarray:
    """Bin index per value (the number of edges strictly below it); NaN -> the missing slot."""
    edges = np.asarray(factor.edges, dtype=np.float64)
    if len(edges) <= _MAX_COMPARE_EDGES:
        index = np.zeros(len(values), dtype=np.int8)
        for edge in edges:
            index += values > edge
    else:
        index = np.searchsorted(edges, values, side="left").astype(np.int16)
    nan = np.isnan(values)
    if nan.any():
        index[nan] = len(factor.bin_points)
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
    bound = sum(max(abs(f.min_points), abs(f.max_points)) for f in rules.factors)
    return np.int32 if bound < 2**31 - 1 else np.int64


def score_frame(rules: PointsRules, frame: pd.DataFrame, *, reasons: bool = False) -> pd.DataFrame:
    """Score columns for every row: ``points, fit, pain, probability, sdr_ready`` (+ ``grade``).

    With ``reasons``, also ``reason_codes``: the three factors that added most and the three
    that took away most, in words (see :func:`reason_codes`).
    """
    _check_columns(rules, frame)
    n = len(frame)
    acc = _accumulator_dtype(rules)
    fit = np.zeros(n, dtype=acc)
    pain = np.zeros(n, dtype=acc)
    slots = []
    for factor in rules.factors:
        lookup = _lookup(factor, frame[factor.name], rules.missing_values)
        table = factor_outcome_points(factor).take(lookup.slots).astype(acc)
        target = fit if factor.group == "FIT" else pain
        target += table.take(lookup.index)
        if reasons:
            slots.append(lookup.slots.take(lookup.index))
    fit = fit.astype(np.int64)
    pain = pain.astype(np.int64)
    total = fit + pain
    if rules.score_min is not None or rules.score_max is not None:
        total = np.clip(total, rules.score_min, rules.score_max)
    z = rules.prob_intercept + rules.prob_slope * total.astype(float)
    with np.errstate(over="ignore"):
        probability = 1.0 / (1.0 + np.exp(-z))
    out = pd.DataFrame(
        {
            "points": total,
            "fit": fit,
            "pain": pain,
            "probability": probability,
            "sdr_ready": total >= rules.sdr_threshold,
        },
        index=frame.index,
    )
    if rules.grades:
        cuts = sorted(rules.grades, key=lambda g: g["min_points"])
        mins = np.asarray([g["min_points"] for g in cuts], dtype=float)
        names = np.asarray([str(g["grade"]) for g in cuts], dtype=object)
        idx = np.searchsorted(mins, total, side="right") - 1
        out["grade"] = names[np.clip(idx, 0, len(names) - 1)]
    if reasons:
        out["reason_codes"] = _reason_texts(rules, slots, n)
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
