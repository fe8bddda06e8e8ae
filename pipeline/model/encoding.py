"""Factor encoding: every factor becomes a small set of levels ("slots") and a one-hot design.

The levels themselves are decided by :mod:`pipeline.analysis.levels`, the same module the lift table
uses, so the points table has exactly the lift table's levels: categorical levels with at
least ``min_leads`` leads (rarer ones pool into ``(other)``), right-closed quantile bins for
numbers (one per value when few are distinct), sentinel values such as ``= 999`` as levels of
their own, and ``(missing)``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import TransformerTags
from sklearn.utils.validation import check_is_fitted, validate_data

from pipeline.analysis.levels import (
    MISSING,
    OTHER,
    Cut,
    categorical_cut,
    few_distinct,
    numeric_codes,
    numeric_cut,
    quantile_edges,
)
from pipeline.model.reference import canonical_str
from pipeline.model.rules import interval_labels

__all__ = ["MISSING", "OTHER", "FactorEncoder", "FactorLevels", "few_distinct", "quantile_edges"]


@dataclass(frozen=True)
class FactorLevels:
    """What the encoder learned about one factor."""

    name: str
    kind: str  # "categorical" | "numeric"
    slots: list[str]  # level labels in design order
    counts: list[int]  # training leads per slot
    edges: list[float]  # numeric bin edges (right-closed)
    rare_levels: list[str]  # categorical levels pooled into OTHER
    special: list[float] = ()  # numeric values with a slot of their own (after the bins)

    @property
    def n_bins(self) -> int:
        """Numeric bin slots (they come first; then the special values, then missing)."""
        return len(self.slots) - len(self.special) - (MISSING in self.slots)

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


def categorical_codes(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, labels)``: the distinct strings the points table matches on and each row's
    index into them (``-1`` where missing)."""
    return canonical_codes(series, _canonical_text)


def categorical_text(series: pd.Series) -> pd.Series:
    """Values as the strings the points table matches on; missing stays None (NaN once mixed
    with text, as ``Series.map`` infers it). Text is worked out once per distinct value."""
    codes, labels = categorical_codes(series)
    out = with_fill(labels, None).take(codes)
    return pd.Series(out, index=series.index, name=series.name).astype(object)


def _canonical_text(value: object) -> str | None:
    """The string a categorical value is matched on; ``None`` when missing."""
    if (value is None or value is pd.NA or value is pd.NaT
            or (isinstance(value, float) and np.isnan(value))):
        return None
    return value if isinstance(value, str) else canonical_str(value)


def object_array(items: Iterable[object]) -> np.ndarray:
    """A 1-D object array of ``items`` (a tuple stays one cell)."""
    return np.fromiter(items, dtype=object)


def with_fill(values: np.ndarray | list, fill: object, dtype: type = object) -> np.ndarray:
    """``values`` plus a last entry ``fill``, so ``take(codes)`` maps the code ``-1`` (missing)
    to ``fill``."""
    out = np.empty(len(values) + 1, dtype=dtype)
    out[:-1] = values
    out[-1] = fill
    return out


def factorize_cells(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)``: each row's index into the column's distinct values (``-1`` =
    null), so that per-value work runs once per distinct value. A Categorical reuses its codes;
    otherwise :func:`pandas.factorize` hashes the cells as objects (``TypeError`` when a cell
    is unhashable)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy().astype(np.intp)
        return codes, series.cat.categories.to_numpy(dtype=object)
    return pd.factorize(series.to_numpy(dtype=object))


def distinct_values(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`factorize_cells` plus the cells as objects (None for a Categorical, whose nulls
    are all NaN); unhashable cells (a dict, a list) are replaced by their text."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return *factorize_cells(series), None
    cells = series.to_numpy(dtype=object)
    try:
        codes, uniques = pd.factorize(cells)
    except TypeError:  # unhashable cells: match on their text
        cells = object_array(v if isinstance(v, Hashable) else str(v) for v in cells)
        codes, uniques = pd.factorize(cells)
    return codes, uniques, cells


def canonical_codes(series: pd.Series, canon: Callable[[object], str | None]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, labels)``: the distinct strings ``canon`` gives and each row's index into them
    (``-1`` where ``canon`` gives None). ``canon`` runs once per distinct value (pandas
    equality), and once per null cell only when a null kind has text of its own (``NaT``)."""
    codes, uniques, cells = distinct_values(series)
    text = [canon(u) for u in uniques]
    nulls = codes < 0
    if nulls.any():
        null_text = _null_text(cells[nulls] if cells is not None else None, canon)
        codes = codes.copy()  # plain missing shares one code; text of a null kind, one per cell
        codes[nulls] = len(text) + (np.arange(len(null_text)) if len(null_text) > 1 else 0)
        text.extend(null_text)
    label_codes, labels = pd.factorize(object_array(text))
    return label_codes.take(codes), labels


def _null_text(null_cells: np.ndarray | None, canon: Callable[[object], str | None]
               ) -> list[str | None]:
    """``[None]`` when every null cell means missing, else ``canon`` of each null cell."""
    if null_cells is None or all(canon(v) is None for v in pd.unique(null_cells)):
        return [None]
    return [canon(v) for v in null_cells]


def _with_a_bin(cut: Cut) -> Cut:
    """``cut`` with at least one bin: a numeric factor of the points table always has one
    (``bin_points`` has ``len(edges) + 1`` entries), even when training saw only special
    or missing values (the bin then has no leads)."""
    if cut.n_bins:
        return cut
    return Cut("numeric", [*interval_labels([]), *cut.labels], [0, *cut.counts], cut.edges,
               cut.special, cut.auto_special)


def _levels_of(name: str, cut: Cut) -> FactorLevels:
    return FactorLevels(name, cut.kind, list(cut.labels), list(cut.counts), list(cut.edges),
                        list(cut.rare), list(cut.special))


class FactorEncoder(TransformerMixin, BaseEstimator):
    """Learn levels / bins per factor and produce slot codes or a one-hot design.

    Parameters
    ----------
    n_bins : quantile bins per numeric factor.
    min_leads : categorical levels with fewer training leads pool into ``(other)``.
    numeric : columns treated as numeric; ``None`` infers from the dtype.
    missing_values : text values that mean "missing" (as in the points table); the empty
        string always does.
    special_values : ``{column: [numbers]}`` sentinel values of numeric columns that get a
        level of their own (``= 999``) instead of a bin; a value holding more than half of
        a numeric column's present values gets one too (see :mod:`pipeline.analysis.levels`).

    Attributes
    ----------
    factors_ : one :class:`FactorLevels` per input column, in input order.
    offsets_ : design column where each factor's slots start (``offsets_[-1]`` = width).
    n_features_in_ : number of input columns.
    feature_names_in_ : input column names (only when fitted on a DataFrame with string names).
    """

    def __init__(self, *, n_bins: int = 5, min_leads: int = 30, numeric: list[str] | None = None,
                 missing_values: tuple[str, ...] = (),
                 special_values: dict[str, list[float]] | None = None):
        self.n_bins = n_bins
        self.min_leads = min_leads
        self.numeric = numeric
        self.missing_values = missing_values
        self.special_values = special_values

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

    def _text_codes(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Codes into the distinct level strings; ``-1`` = missing (null, empty or a missing
        token)."""
        codes, labels = categorical_codes(series)
        tokens = {"", *self.missing_values}
        dropped = np.array([label in tokens for label in labels], dtype=bool)
        if not dropped.any():
            return codes, labels
        renumber = np.where(dropped, -1, np.cumsum(~dropped) - 1)
        return with_fill(renumber, -1, np.intp).take(codes), labels[~dropped]

    def _fit_one(self, name: str, series: pd.Series) -> FactorLevels:
        """The levels of one column, as :mod:`pipeline.analysis.levels` decides them."""
        forced = self.numeric is not None and name in self.numeric
        if forced or (self.numeric is None and is_numeric_column(series)):
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
            special = (self.special_values or {}).get(name, ())
            _, cut = numeric_cut(values, n_bins=self.n_bins, special_values=special, name=name,
                                 warn=False)  # the lift table has reported it
            return _levels_of(name, _with_a_bin(cut))
        codes, labels = self._text_codes(series)
        _, cut = categorical_cut(codes, labels, min_leads=self.min_leads)
        return _levels_of(name, cut)

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
            cut = Cut("numeric", factor.slots, factor.counts, factor.edges, list(factor.special))
            return numeric_codes(cut, values, missing=missing_slot).astype(np.int32)
        codes, labels = self._text_codes(series)
        lookup = {lvl: i for i, lvl in enumerate(factor.slots) if lvl not in (OTHER, MISSING)}
        if OTHER in factor.slots:
            other = factor.slots.index(OTHER)
            lookup.update({lvl: other for lvl in factor.rare_levels})
        slot_of_label = [lookup.get(label, -1) for label in labels]
        return with_fill(slot_of_label, missing_slot, np.int32).take(codes)

    def transform(self, X: object) -> sp.csr_matrix:
        """One-hot design (sparse): one column per slot; an unseen level is all zeros."""
        return self.design(self.codes(X))

    def design(self, codes: np.ndarray) -> sp.csr_matrix:
        """The one-hot design of slot codes from :meth:`codes`, built as CSR directly: a row's
        slots are already in column order, and with no unseen level every row has one per
        factor."""
        check_is_fitted(self, "factors_")
        n, k = codes.shape
        width = int(self.offsets_[-1])
        index = np.int32 if max(n * k, n, width) < np.iinfo(np.int32).max else np.int64
        columns = codes.astype(index, copy=False) + np.asarray(self.offsets_[:-1], dtype=index)
        ok = codes >= 0
        if k and ok.all():
            indices = columns.ravel()
            indptr = np.arange(0, n * k + 1, k, dtype=index)
        else:
            indices = columns[ok]
            indptr = np.zeros(n + 1, dtype=index)
            np.cumsum(ok.sum(axis=1), out=indptr[1:])
        data = np.ones(indices.size, dtype=float)
        return sp.csr_matrix((data, indices, indptr), shape=(n, width))

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """``factor=level`` per design column."""
        check_is_fitted(self, "factors_")
        if input_features is not None:
            given = [str(c) for c in input_features]
            if given != [f.name for f in self.factors_]:
                raise ValueError(f"input_features {given} do not match the fitted factors "
                                 f"{[f.name for f in self.factors_]}")
        return np.asarray([f"{f.name}={s}" for f in self.factors_ for s in f.slots], dtype=object)
