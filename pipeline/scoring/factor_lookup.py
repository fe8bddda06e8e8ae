"""Each factor of a points table as *index -> lookup table*: its outcome slot per row.

The same semantics as the row-by-row reference :func:`pipeline.model.reference.score_record`,
with no per-row Python (:mod:`pipeline.scoring.frame` sums the points and derives the rest):

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
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.model.reference import canonical_str
from pipeline.model.rules import FactorRules, PointsRules

MISSING_LABEL = "(missing)"
UNSEEN_LABEL = "(unseen)"
_MAX_LOOKUP = 1 << 16  # largest value -> bin lookup array for integer columns
_MAX_COMPARE_EDGES = 24  # above this many edges a binary search is cheaper than comparisons


@dataclass(frozen=True)
class Lookup:
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


def categorical_lookup(factor: FactorRules, series: pd.Series, missing_values: list[str]
                        ) -> Lookup:
    positions = {level: i for i, level in enumerate(factor.levels)}
    tokens = frozenset([*missing_values, ""])
    codes, uniques = _codes_and_uniques(series)
    slots = [_categorical_slot(factor, u, positions, tokens) for u in uniques]
    slots.append(len(positions))  # code -1 (null) takes the last entry: missing
    return Lookup(codes, np.asarray(slots, dtype=np.int32))


def numeric_values(series: pd.Series, missing_values: list[str]) -> np.ndarray:
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


def _integer_lookup(factor: FactorRules, values: np.ndarray) -> Lookup | None:
    """A value -> bin lookup array for integer columns, when the edges span a small range.

    The array covers ``[min(floor(edges[0]), 0), floor(edges[-1]) + 1]``: values beyond it
    clip to its end entries, which are the end bins. Non-negative counts index it as they are,
    with no copy.
    """
    edges = factor.edges
    if not edges:
        return Lookup(np.zeros(len(values), dtype=np.int8), np.zeros(1, dtype=np.int32))
    if values.dtype.kind == "u" and values.dtype.itemsize == 8:
        return None
    lo = min(math.floor(edges[0]), 0)
    hi = math.floor(edges[-1]) + 1
    if hi - lo > _MAX_LOOKUP:
        return None
    grid = np.arange(lo, hi + 1, dtype=np.float64)
    slots = np.searchsorted(np.asarray(edges, dtype=np.float64), grid, side="left")
    index = values if lo == 0 else values.astype(np.int64) - lo
    return Lookup(index, slots.astype(np.int32), mode="clip")


def float_bins(values: np.ndarray, edges: np.ndarray, missing_slot: int,
               scratch: Scratch | None = None) -> np.ndarray:
    """Bin index per value (the number of edges strictly below it); NaN -> the missing slot."""
    n = len(values)
    if len(edges) > _MAX_COMPARE_EDGES or len(edges) == 0:
        index = np.searchsorted(edges, values, side="left").astype(np.int16)
        index[np.isnan(values)] = missing_slot
        return index
    scratch = scratch or Scratch(n)
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


class Scratch:
    """Reusable buffers for binning floats (one set per thread)."""

    def __init__(self, n: int) -> None:
        self.index = np.empty(n, dtype=np.int8)
        self.flag = np.empty(n, dtype=bool)


def integer_values_lookup(factor: FactorRules, series: pd.Series) -> Lookup | None:
    if pd.api.types.is_integer_dtype(series.dtype) and isinstance(series.dtype, np.dtype):
        return _integer_lookup(factor, series.to_numpy())
    return None


def numeric_lookup(factor: FactorRules, series: pd.Series, missing_values: list[str]
                    ) -> Lookup:
    if factor.special_points:
        return _special_lookup(factor, numeric_values(series, missing_values))
    lookup = integer_values_lookup(factor, series)
    if lookup is not None:
        return lookup
    values = numeric_values(series, missing_values)
    index = float_bins(values, np.asarray(factor.edges, dtype=np.float64),
                        len(factor.bin_points))
    return Lookup(index, np.arange(len(factor.bin_points) + 2, dtype=np.int32))


def _special_lookup(factor: FactorRules, values: np.ndarray) -> Lookup:
    """Outcome slot per row of a numeric factor with special values: the bin (or missing),
    then each row equal to a special value moved to that value's slot, after ``unseen``.
    NaN equals nothing, so missing rows stay missing, as the reference checks them first."""
    n_bins = len(factor.bin_points)
    index = float_bins(values, np.asarray(factor.edges, dtype=np.float64), n_bins)
    index = index.astype(np.int32)
    for k, (value, _, _) in enumerate(factor.special_values()):
        index[values == value] = n_bins + 2 + k
    return Lookup(index, np.arange(n_bins + 2 + len(factor.special_points), dtype=np.int32))


def factor_lookup(factor: FactorRules, series: pd.Series, missing_values: list[str]) -> Lookup:
    if factor.kind == "numeric":
        return numeric_lookup(factor, series, missing_values)
    return categorical_lookup(factor, series, missing_values)


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
    lookup = factor_lookup(factor, series, missing_values)
    return lookup.slots_per_row()


def factor_points(factor: FactorRules, series: pd.Series, missing_values: list[str], *,
                  dtype: type = np.int64) -> np.ndarray:
    """Points of one factor per row: one ``take`` from a small lookup table."""
    lookup = factor_lookup(factor, series, missing_values)
    table = factor_outcome_points(factor).take(lookup.slots).astype(dtype)
    return table.take(lookup.index, mode=lookup.mode)


def check_columns(rules: PointsRules, frame: pd.DataFrame) -> None:
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
    check_columns(rules, frame)
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
        lookup = factor_lookup(factor, frame[factor.name], rules.missing_values)
        unseen_slot = len(factor.levels) + 1
        is_unseen = lookup.slots == unseen_slot
        if not is_unseen.any():
            continue
        n = int(is_unseen.take(lookup.index, mode=lookup.mode).sum())
        if n:
            counts[factor.name] = n
    return counts
