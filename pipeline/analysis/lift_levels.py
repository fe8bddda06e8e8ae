"""The lift table's view of the data: ``X`` and ``y`` checked, and every column as levels.

The levels are decided by :mod:`pipeline.analysis.levels`, the module the encoder (hence the
points table) uses too: a lift row maps one-to-one onto a points-table level. Numeric columns
are cut into right-closed bins labelled as :meth:`pipeline.model.rules.FactorRules.bin_labels`
labels them; a sentinel value (configured, or one value holding most of the column) is a level
of its own such as ``= 999``. :func:`level_frame` gives the levels as a frame (read by the
associations and the selection too); :func:`coded_levels` as codes per column, for
:func:`pipeline.analysis.lift.lift_table`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipeline.analysis.levels import MISSING, OTHER, categorical_cut, numeric_cut
from pipeline.model.encoding import canonical_codes, object_array, with_fill
from pipeline.model.reference import canonical_str

MISSING_LABEL = MISSING
OTHER_LABEL = OTHER


def is_numeric_column(series: pd.Series) -> bool:
    """A prepared column is numeric when its dtype is a number (booleans are categorical)."""
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
        series.dtype
    )


def level_frame(
    X: pd.DataFrame,
    *,
    min_leads: int = 30,
    n_bins: int = 5,
    missing_label: str = MISSING_LABEL,
    other_label: str = OTHER_LABEL,
    categorical: bool = False,
    special_values: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Every column as string levels, plus how each was cut.

    Categorical: missing -> ``missing_label``; levels with fewer than ``min_leads`` leads
    pool into ``other_label``. Numeric (:func:`pipeline.analysis.levels.numeric_cut`): right-closed
    quantile bins (edges are observed values, duplicates dropped, so no bin is empty)
    labelled like ``(3, 7]``; a column with at most ``n_bins`` distinct values gets one bin
    per value (edges = every value but the largest); the values of ``special_values``
    (``{column: [numbers]}``) and a value holding more than half of the column are levels of
    their own (``= 999``, reported by a :class:`pipeline.analysis.levels.SentinelWarning` when found
    automatically). Returns the level frame (same index and column order as ``X``, dtype
    ``object``) and ``{column: {"kind", "edges", "levels"}}`` where ``levels`` lists the
    labels in report order (bins, then special values, or levels by descending leads then
    other; then missing); numeric entries also hold ``bins``, the bin labels alone, and
    ``special``, the special values.
    ``categorical=True`` gives each column as a pandas Categorical over its ``levels`` (the
    same labels, but later stages read the codes instead of hashing every label again).
    """
    _check_level_args(X, min_leads=min_leads, n_bins=n_bins, missing_label=missing_label,
                      other_label=other_label)
    meta: dict[str, dict[str, Any]] = {}
    special_values = special_values or {}
    if categorical:
        columns = {}
        for column in X.columns:
            codes, info = _column_levels(X[column], column=str(column), min_leads=min_leads,
                                         n_bins=n_bins, missing_label=missing_label,
                                         other_label=other_label,
                                         special=special_values.get(str(column), ()))
            columns[column] = pd.Categorical.from_codes(
                codes, categories=pd.Index(object_array(info["levels"]), dtype=object))
            meta[str(column)] = info
        return pd.DataFrame(columns, index=X.index, columns=X.columns, copy=False), meta
    # one row of labels per column, handed to the frame as its single block (no copy)
    labels = np.empty((len(X.columns), len(X)), dtype=object)
    for j, column in enumerate(X.columns):
        codes, info = _column_levels(X[column], column=str(column), min_leads=min_leads,
                                     n_bins=n_bins, missing_label=missing_label,
                                     other_label=other_label,
                                     special=special_values.get(str(column), ()))
        labels[j] = object_array(info["levels"]).take(codes)
        meta[str(column)] = info
    frame = pd.DataFrame(labels.T, index=X.index, columns=X.columns, dtype=object, copy=False)
    return frame, meta


def _check_level_args(
    X: pd.DataFrame, *, min_leads: int, n_bins: int, missing_label: str, other_label: str
) -> None:
    check_frame(X)
    if min_leads < 1:
        raise ValueError(f"min_leads must be >= 1, got {min_leads!r}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins!r}")
    if missing_label == other_label:
        raise ValueError(f"missing_label and other_label must differ, both are {missing_label!r}")


def _column_levels(
    series: pd.Series,
    *,
    column: str,
    min_leads: int,
    n_bins: int,
    missing_label: str,
    other_label: str,
    special: Any = (),
) -> tuple[np.ndarray, dict[str, Any]]:
    """Each row's index into ``info["levels"]``, and the column's info (see level_frame)."""
    if is_numeric_column(series):
        return _numeric_levels(series, n_bins=n_bins, missing_label=missing_label,
                               special=special, column=column)
    return _categorical_levels(series, column=column, min_leads=min_leads,
                               missing_label=missing_label, other_label=other_label)


def _categorical_levels(
    series: pd.Series, *, column: str, min_leads: int, missing_label: str, other_label: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """Each row's level (rare levels pooled, missing labelled) as an index into the report
    order, and the column's info."""
    codes, names = _level_codes(series)
    for reserved in (missing_label, other_label):
        if reserved in names.tolist():
            raise ValueError(
                f"column {column!r}: the value {reserved!r} is reserved for pooled levels; "
                "rename it before the analysis"
            )
    levels, cut = categorical_cut(codes, names, min_leads=min_leads)
    order = _relabel(cut.labels, missing_label=missing_label, other_label=other_label)
    return levels, {"kind": "categorical", "edges": [], "levels": order}


def _relabel(labels: list[str], *, missing_label: str, other_label: str) -> list[str]:
    """``labels`` with the pooled levels named as the caller asked."""
    names = {MISSING: missing_label, OTHER: other_label}
    return [names.get(label, label) for label in labels]


#: ``infer_dtype`` kinds in which equal values always get the same level text, so the text is
#: worked out once per distinct value; mixed kinds (``1`` and ``True`` compare equal, yet read
#: "1" and "true") are canonicalised row by row.
_PER_VALUE_KINDS = frozenset(
    {"string", "empty", "boolean", "integer", "floating", "mixed-integer-float", "categorical"}
)


def _level_codes(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes into the distinct level strings of a categorical column (``-1`` = missing)."""
    if pd.api.types.infer_dtype(series, skipna=True) in _PER_VALUE_KINDS:
        return canonical_codes(series, _canonical_level)
    text = object_array(_canonical_level(v) for v in series.to_numpy(dtype=object))
    return pd.factorize(text)


def _codes_in(values: np.ndarray, order: list[str]) -> np.ndarray:
    """Position of each value in ``order`` (``-1`` if absent), hashing the rows once."""
    if len(set(order)) != len(order):
        raise ValueError(f"levels must be unique, got {order}")
    position = {lvl: i for i, lvl in enumerate(order)}
    codes, uniques = pd.factorize(values)
    return with_fill([position.get(u, -1) for u in uniques], -1, np.intp).take(codes)


def _canonical_level(value: Any) -> str | None:
    """The string a scorer matches a categorical value with; ``None`` when missing."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return canonical_str(value)


def _numeric_levels(
    series: pd.Series, *, n_bins: int, missing_label: str, special: Any = (), column: str = ""
) -> tuple[np.ndarray, dict[str, Any]]:
    """Each row's level (a bin, a special value or missing) as an index into the report
    order, and the column's info; the levels are :func:`pipeline.analysis.levels.numeric_cut`'s."""
    x = pd.to_numeric(series, errors="raise").to_numpy(dtype=float, na_value=np.nan)
    codes, cut = numeric_cut(x, n_bins=n_bins, special_values=special, name=column)
    order = _relabel(cut.labels, missing_label=missing_label, other_label=OTHER)
    info = {"kind": "numeric", "edges": list(cut.edges), "levels": order,
            "bins": list(cut.labels[:cut.n_bins]), "special": list(cut.special)}
    return codes, info


def coded_levels(
    X: pd.DataFrame,
    levels: tuple[pd.DataFrame, dict[str, dict[str, Any]]] | None,
    *,
    min_leads: int,
    n_bins: int,
    special_values: Mapping[str, Any],
) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """Per column of ``X``: each row's index into ``info["levels"]``, and ``info``. Computed
    straight from ``X`` (no label frame to build and hash again), or read off ``levels``."""
    if levels is None:
        _check_level_args(X, min_leads=min_leads, n_bins=n_bins, missing_label=MISSING_LABEL,
                          other_label=OTHER_LABEL)
        return (
            _column_levels(X[c], column=str(c), min_leads=min_leads, n_bins=n_bins,
                           missing_label=MISSING_LABEL, other_label=OTHER_LABEL,
                           special=special_values.get(str(c), ()))
            for c in X.columns
        )
    frame, meta = levels
    absent = [str(c) for c in X.columns if str(c) not in meta or c not in frame.columns]
    if absent:
        raise ValueError(f"levels (a level_frame result) lacks columns of X: {absent}")
    if not frame.index.equals(X.index):
        raise ValueError("levels: the level frame must have the same index as X")
    return (_frame_codes(frame[c], str(c), meta[str(c)]) for c in X.columns)


def _frame_codes(labels: pd.Series, name: str, info: dict[str, Any]
                 ) -> tuple[np.ndarray, dict[str, Any]]:
    """A level frame column as indices into its ``info["levels"]``."""
    if (isinstance(labels.dtype, pd.CategoricalDtype)
            and list(labels.cat.categories) == list(info["levels"])):
        codes = labels.cat.codes.to_numpy()  # a categorical level frame: nothing to look up
    else:
        codes = _codes_in(labels.to_numpy(dtype=object), list(info["levels"]))
    if (codes < 0).any():
        raise ValueError(f"column {name!r}: level frame holds levels missing from its metadata")
    return codes, info


def check_frame(X: pd.DataFrame) -> None:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    if X.columns.has_duplicates:
        dupes = sorted({str(c) for c in X.columns[X.columns.duplicated()]})
        raise ValueError(f"X has duplicate column names: {dupes}")


def check_target(X: pd.DataFrame, y: pd.Series) -> np.ndarray:
    """Validate ``y`` against ``X``; return it as a float array of 0/1."""
    check_frame(X)
    if len(X) == 0:
        raise ValueError("X has no rows: nothing to analyse")
    if not isinstance(y, pd.Series):
        raise TypeError(f"y must be a pandas Series, got {type(y).__name__}")
    if not X.index.equals(y.index):
        raise ValueError("y must have the same index as X (same labels in the same order)")
    if y.isna().any():
        raise ValueError(f"y must be 0/1 without missing values, found {int(y.isna().sum())} NaN")
    arr = y.to_numpy(dtype=float)
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        raise ValueError(f"y must hold only 0 and 1, got e.g. {float(arr[bad][0])!r}")
    return arr
