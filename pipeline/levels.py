"""The one place that decides the levels of a factor: what the lift table reports, what the
encoder fits and what the points table holds.

* categorical: each distinct text is a level; levels with fewer than ``min_leads`` leads pool
  into ``(other)``; levels are ordered by descending leads, then by text;
* numeric: right-closed quantile bins (``numpy.quantile(method="lower")`` at ``1/n, 2/n, ...``,
  duplicates dropped, the largest value never an edge, so no bin is empty); a column with at
  most ``n_bins`` distinct values gets one bin per value. Sentinel values ("999 = never
  contacted") get their own level ``= 999`` before any binning: those configured in
  ``columns.special_values``, and a single value holding more than half of the present
  values (found here, reported with a :class:`SentinelWarning`). Bins are labelled as
  :meth:`pipeline.rules.FactorRules.bin_labels` labels them;
* a missing value is its own last level, ``(missing)`` (missingness is often informative).

Level order is the design order of :class:`pipeline.encoding.FactorEncoder` and the row order
of :func:`pipeline.lift.lift_table`: bins, then special levels, then ``(other)``, then
``(missing)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from pipeline.rules import interval_labels, special_key, special_label

MISSING = "(missing)"
OTHER = "(other)"
#: a single value holding more than this share of a numeric column's present values is a
#: sentinel: it gets its own level instead of swallowing the quantile bins
DOMINANT_SHARE = 0.5


class SentinelWarning(UserWarning):
    """A numeric column's most common value was made a level of its own."""


@dataclass(frozen=True)
class Cut:
    """How one factor is cut into levels (learned on training data).

    ``labels`` are the levels in design / report order and ``counts`` their training leads;
    ``edges`` the right-closed numeric bin edges, ``special`` the numeric values with a level
    of their own (``auto_special`` those found by :func:`dominant_value` rather than
    configured); ``rare`` the categorical texts pooled into ``(other)``.
    """

    kind: str  # "categorical" | "numeric"
    labels: list[str]
    counts: list[int]
    edges: list[float] = field(default_factory=list)
    special: list[float] = field(default_factory=list)
    auto_special: list[float] = field(default_factory=list)
    rare: list[str] = field(default_factory=list)

    @property
    def n_bins(self) -> int:
        """Number of numeric bins (0 for a categorical factor, or numbers all missing)."""
        return len(self.labels) - len(self.special) - (MISSING in self.labels)


# ------------------------------------------------------------------------------ numeric


def quantile_edges(values: np.ndarray, n_bins: int) -> list[float]:
    """Right-closed bin edges at quantiles of the finite ``values``; few distinct values get
    one bin each. Edges are observed values (``method="lower"``), the largest value is never
    an edge, so no bin is empty."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    distinct = few_distinct(finite, n_bins)
    if distinct is not None:
        return [float(v) for v in distinct[:-1]]
    qs = np.quantile(finite, np.linspace(0, 1, n_bins + 1)[1:-1], method="lower")
    top = finite.max()
    return [float(e) for e in np.unique(qs) if e < top]


def few_distinct(values: np.ndarray, limit: int) -> np.ndarray | None:
    """``np.unique(values)`` when it has at most ``limit`` values, else None; a first few
    thousand values with more already rule the full sort out."""
    if np.unique(values[:4096]).size > limit:
        return None
    distinct = np.unique(values)
    return distinct if distinct.size <= limit else None


def dominant_value(values: np.ndarray, share: float = DOMINANT_SHARE
                   ) -> tuple[float, float] | None:
    """``(value, its share)`` when one value holds more than ``share`` of the present
    (non-NaN) ``values``, else None. Such a value is a code ("999 = never contacted"), not a
    magnitude: binned with the rest it fills every quantile and the column looks flat."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        return None
    uniques, counts = np.unique(present, return_counts=True)
    top = int(np.argmax(counts))
    top_share = float(counts[top]) / present.size
    return (float(uniques[top]), top_share) if top_share > share else None


def special_values_of(values: np.ndarray, configured: Iterable[float], n_bins: int, *,
                      name: str = "", warn: bool = True) -> tuple[list[float], list[float]]:
    """``(special, auto)``: the numeric values that get a level of their own, sorted.

    The configured values present in ``values``, plus a dominant value of the rest
    (:func:`dominant_value`) unless the rest has at most ``n_bins`` distinct values (each of
    them is already a level) or the dominant value is the smallest (the first bin, ``<= v``,
    already holds it alone: a count column that is mostly 0 keeps its bins as they were).
    ``warn`` reports an automatic one as a :class:`SentinelWarning` naming the column, the
    value and its share."""
    present = values[~np.isnan(values)]
    wanted = np.unique(np.asarray(list(configured), dtype=float))
    special = [float(v) for v in wanted if (present == v).any()]
    rest = present[~np.isin(present, special)] if special else present
    auto: list[float] = []
    finite = rest[np.isfinite(rest)]
    if finite.size and few_distinct(finite, n_bins) is None:
        found = dominant_value(rest)
        if found is not None and found[0] != finite.min():
            value, share = found
            auto = [value]
            if warn:
                warnings.warn(
                    f"column {name!r}: the value {special_key(value)} holds {share:.0%} of the "
                    f"present values; it gets its own level {special_label(value)!r} instead "
                    "of a bin (list it in columns.special_values to say so explicitly)",
                    SentinelWarning, stacklevel=3)
    return sorted(special + auto), auto


def numeric_cut(values: np.ndarray, *, n_bins: int, special_values: Iterable[float] = (),
                name: str = "", warn: bool = True) -> tuple[np.ndarray, Cut]:
    """Each value's level (an index into ``cut.labels``) and the :class:`Cut` of a numeric
    column: special values first taken out, the rest binned, missing last."""
    special, auto = special_values_of(values, special_values, n_bins, name=name, warn=warn)
    is_special = np.isin(values, special) if special else np.zeros(values.shape, dtype=bool)
    edges = quantile_edges(values[~is_special], n_bins)
    present = ~np.isnan(values)
    has_bins = bool((present & ~is_special).any())
    labels = interval_labels(edges) if has_bins else []
    labels += [special_label(v) for v in special]
    cut = Cut("numeric", labels, [], edges, special, auto)
    codes = numeric_codes(cut, values, missing=len(labels))
    n_levels = len(labels) + (not present.all())
    counts = np.bincount(codes, minlength=n_levels).tolist()
    if not present.all():
        labels.append(MISSING)
    return codes, Cut("numeric", labels, counts, edges, special, auto)


def numeric_codes(cut: Cut, values: np.ndarray, *, missing: int) -> np.ndarray:
    """Each value's level in ``cut``: a special value's own level, else its bin (the number
    of edges strictly below it); NaN gets ``missing``."""
    codes = np.searchsorted(np.asarray(cut.edges, dtype=float), values, side="left")
    for k, value in enumerate(cut.special):
        codes[values == value] = cut.n_bins + k
    codes[np.isnan(values)] = missing
    return codes.astype(np.intp, copy=False)


# -------------------------------------------------------------------------- categorical


def categorical_cut(codes: np.ndarray, names: np.ndarray, *, min_leads: int
                    ) -> tuple[np.ndarray, Cut]:
    """Each row's level and the :class:`Cut` of a categorical column, from its codes into the
    distinct texts ``names`` (``-1`` = missing): levels with at least ``min_leads`` leads by
    descending leads then text, the rarer ones pooled into ``(other)``, then ``(missing)``."""
    missing = codes < 0
    counts = np.bincount(codes[~missing], minlength=len(names))
    rare = counts < min_leads
    ordinary = sorted(np.flatnonzero(~rare).tolist(), key=lambda i: (-counts[i], names[i]))
    position = np.empty(len(names), dtype=np.intp)  # each distinct text's place in the order
    position[ordinary] = np.arange(len(ordinary))
    position[rare] = len(ordinary)
    labels = [str(names[i]) for i in ordinary]
    level_counts = [int(counts[i]) for i in ordinary]
    if rare.any():
        labels.append(OTHER)
        level_counts.append(int(counts[rare].sum()))
    if missing.any():
        labels.append(MISSING)
        level_counts.append(int(missing.sum()))
    fill = np.append(position, len(labels) - 1)  # code -1 (missing) takes the last level
    cut = Cut("categorical", labels, level_counts,
              rare=sorted(str(names[i]) for i in np.flatnonzero(rare)))
    return fill.take(codes), cut
