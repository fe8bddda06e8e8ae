"""Factor encoding: every factor becomes a small set of levels ("slots") and a one-hot design.

Categorical factors keep levels with at least ``min_leads`` leads; rarer ones pool into
``(other)``. Numeric factors are cut at quantile edges (right-closed bins, the same rule as
:mod:`pipeline.rules`); a numeric factor with few distinct values gets one bin per value.
A missing value is its own ``(missing)`` level (missingness is often informative).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import TransformerTags
from sklearn.utils.validation import check_is_fitted, validate_data

from pipeline.rules import _canonical_str, _interval_label

MISSING = "(missing)"
OTHER = "(other)"


@dataclass(frozen=True)
class FactorLevels:
    """What the encoder learned about one factor."""

    name: str
    kind: str  # "categorical" | "numeric"
    slots: list[str]  # level labels in design order
    counts: list[int]  # training leads per slot
    edges: list[float]  # numeric bin edges (right-closed)
    rare_levels: list[str]  # categorical levels pooled into OTHER

    def slot_index(self, label: str) -> int:
        return self.slots.index(label)


def as_frame(X: object) -> pd.DataFrame:
    """Accept a DataFrame or a 2-D array (columns named ``x0``, ``x1``, ...)."""
    if isinstance(X, pd.DataFrame):
        return X
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(f"expected 2-D input, got an array of shape {array.shape}")
    return pd.DataFrame(array, columns=positional_names(array.shape[1])).infer_objects()


def positional_names(n: int) -> list[str]:
    """Factor names for input without column names: ``x0``, ``x1``, ..."""
    return [f"x{i}" for i in range(n)]


def check_frame(estimator: BaseEstimator, X: object, *, reset: bool) -> pd.DataFrame:
    """Validate ``X`` the scikit-learn way and return it as a frame named by factor.

    Sparse input is refused (``TypeError``); complex numbers, 1-D input and empty input raise
    ``ValueError``. With ``reset`` (in ``fit``) ``n_features_in_`` is set, and
    ``feature_names_in_`` when ``X`` is a DataFrame with string column names; otherwise both
    are checked against the fitted values (a DataFrame with other columns, or columns in another
    order, fails with the list of unexpected and missing names). Input without column names
    gets the positional names ``x0``, ``x1``, ...; a bare array scored by an estimator fitted
    on a DataFrame takes the fitted names in order. ``X`` itself is never modified.
    """
    name = type(estimator).__name__
    if sp.issparse(X):
        raise TypeError(f"{name} does not support sparse input: pass a DataFrame or a dense "
                        "2-D array (a sparse matrix cannot hold text levels or missing values)")
    if isinstance(X, pd.DataFrame):
        array = None
        shape = X.shape
        if any(pd.api.types.is_complex_dtype(t) for t in X.dtypes):
            raise ValueError("Complex data not supported")
    else:
        array = np.asarray(X)
        shape = array.shape
        if np.iscomplexobj(array):
            raise ValueError("Complex data not supported")
        if array.ndim != 2:
            raise ValueError(
                f"{name} expected 2-D input, got an array of shape {array.shape}. Reshape your "
                "data either using array.reshape(-1, 1) if your data has a single feature or "
                "array.reshape(1, -1) if it contains a single sample.")
    if shape[0] == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={shape}) while a minimum of 1 "
                         f"is required by {name}.")
    if shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={shape}) while a minimum of 1 "
                         f"is required by {name}.")
    validate_data(estimator, X if array is None else array, reset=reset, skip_check_array=True)
    names = getattr(estimator, "feature_names_in_", None)
    columns = positional_names(shape[1]) if names is None else [str(c) for c in names]
    if array is None:
        if list(X.columns) == columns:
            return X
        return X.set_axis(columns, axis=1)
    return pd.DataFrame(array, columns=columns).infer_objects()


def is_numeric_column(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def categorical_text(series: pd.Series) -> pd.Series:
    """Values as the strings the points table matches on; missing stays None."""
    def canon(v: object) -> object:
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
            return None
        return v if isinstance(v, str) else _canonical_str(v)

    values = series.astype(object)
    try:
        uniques = pd.unique(values)
    except TypeError:  # unhashable cells (a dict, a list): match on their text
        values = values.map(lambda v: v if isinstance(v, Hashable) else str(v))
        uniques = pd.unique(values)
    mapping = {u: canon(u) for u in uniques}
    return values.map(lambda v: mapping.get(v) if v is not None else None).astype(object)


def quantile_edges(values: np.ndarray, n_bins: int) -> list[float]:
    """Right-closed bin edges at quantiles; few distinct values get one bin each."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    distinct = np.unique(finite)
    if distinct.size <= n_bins:
        return [float(v) for v in distinct[:-1]]
    qs = np.quantile(finite, np.linspace(0, 1, n_bins + 1)[1:-1], method="lower")
    edges = np.unique(qs)
    return [float(e) for e in edges if e < distinct[-1]]


class FactorEncoder(TransformerMixin, BaseEstimator):
    """Learn levels / bins per factor and produce slot codes or a one-hot design.

    Parameters
    ----------
    n_bins : quantile bins per numeric factor.
    min_leads : categorical levels with fewer training leads pool into ``(other)``.
    numeric : columns treated as numeric; ``None`` infers from the dtype.
    missing_values : text values that mean "missing" (as in the points table); the empty
        string always does.

    Attributes
    ----------
    factors_ : one :class:`FactorLevels` per input column, in input order.
    offsets_ : design column where each factor's slots start (``offsets_[-1]`` = width).
    n_features_in_ : number of input columns.
    feature_names_in_ : input column names (only when fitted on a DataFrame with string names).
    """

    def __init__(self, *, n_bins: int = 5, min_leads: int = 30, numeric: list[str] | None = None,
                 missing_values: tuple[str, ...] = ()):
        self.n_bins = n_bins
        self.min_leads = min_leads
        self.numeric = numeric
        self.missing_values = missing_values

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.transformer_tags = TransformerTags(preserves_dtype=[])
        return tags

    def fit(self, X: object, y: object = None) -> FactorEncoder:
        frame = check_frame(self, X, reset=True)
        self.factors_ = [self._fit_one(str(c), frame[c]) for c in frame.columns]
        self.offsets_ = np.cumsum([0] + [len(f.slots) for f in self.factors_])
        return self

    def _text(self, series: pd.Series) -> pd.Series:
        """Categorical values as strings; missing (null, empty, a missing token) is None."""
        text = categorical_text(series)
        tokens = {"", *self.missing_values}
        return text.where(~text.isin(tokens), None)

    def _fit_one(self, name: str, series: pd.Series) -> FactorLevels:
        forced = self.numeric is not None and name in self.numeric
        if forced or (self.numeric is None and is_numeric_column(series)):
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
            edges = quantile_edges(values, self.n_bins)
            present = ~np.isnan(values)
            bins = np.searchsorted(np.asarray(edges, dtype=float), values[present], side="left")
            counts = np.bincount(bins, minlength=len(edges) + 1).tolist()
            bounds = [-np.inf, *edges, np.inf]
            slots = [_interval_label(lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False)]
            n_missing = int((~present).sum())
            if n_missing:
                slots.append(MISSING)
                counts.append(n_missing)
            return FactorLevels(name, "numeric", slots, counts, edges, [])
        text = self._text(series)
        counts_by_level = text.value_counts(dropna=True)
        ordered = sorted(counts_by_level.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = [(lvl, int(n)) for lvl, n in ordered if n >= self.min_leads]
        rare = [(lvl, int(n)) for lvl, n in ordered if n < self.min_leads]
        slots = [lvl for lvl, _ in kept]
        counts = [n for _, n in kept]
        if rare:
            slots.append(OTHER)
            counts.append(sum(n for _, n in rare))
        n_missing = int(text.isna().sum())
        if n_missing:
            slots.append(MISSING)
            counts.append(n_missing)
        return FactorLevels(name, "categorical", slots, counts, [], sorted(lvl for lvl, _ in rare))

    def codes(self, X: object) -> np.ndarray:
        """Slot index per lead and factor (``-1`` = unseen level, or missing never seen in
        training)."""
        check_is_fitted(self, "factors_")
        frame = check_frame(self, X, reset=False)
        out = np.empty((len(frame), len(self.factors_)), dtype=np.int32)
        for j, factor in enumerate(self.factors_):
            out[:, j] = self._codes_one(factor, frame.iloc[:, j])
        return out

    def _codes_one(self, factor: FactorLevels, series: pd.Series) -> np.ndarray:
        missing_slot = factor.slots.index(MISSING) if MISSING in factor.slots else -1
        if factor.kind == "numeric":
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
            codes = np.searchsorted(np.asarray(factor.edges, dtype=float), values, side="left")
            return np.where(np.isnan(values), missing_slot, codes).astype(np.int32)
        text = self._text(series)
        lookup = {lvl: i for i, lvl in enumerate(factor.slots) if lvl not in (OTHER, MISSING)}
        if OTHER in factor.slots:
            other = factor.slots.index(OTHER)
            lookup.update({lvl: other for lvl in factor.rare_levels})
        codes = text.map(lookup).to_numpy(dtype=float, na_value=np.nan)
        codes = np.where(np.isnan(codes), -1, codes).astype(np.int32)
        return np.where(text.isna().to_numpy(), missing_slot, codes).astype(np.int32)

    def transform(self, X: object) -> sp.csr_matrix:
        """One-hot design (sparse): one column per slot; an unseen level is all zeros."""
        codes = self.codes(X)
        n = codes.shape[0]
        rows, cols = [], []
        for j in range(codes.shape[1]):
            ok = codes[:, j] >= 0
            rows.append(np.flatnonzero(ok))
            cols.append(codes[ok, j] + self.offsets_[j])
        row = np.concatenate(rows) if rows else np.empty(0, dtype=int)
        col = np.concatenate(cols) if cols else np.empty(0, dtype=int)
        data = np.ones(row.size, dtype=float)
        return sp.csr_matrix((data, (row, col)), shape=(n, int(self.offsets_[-1])))

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """``factor=level`` per design column."""
        check_is_fitted(self, "factors_")
        if input_features is not None:
            given = [str(c) for c in input_features]
            if given != [f.name for f in self.factors_]:
                raise ValueError(f"input_features {given} do not match the fitted factors "
                                 f"{[f.name for f in self.factors_]}")
        return np.asarray([f"{f.name}={s}" for f in self.factors_ for s in f.slots], dtype=object)
