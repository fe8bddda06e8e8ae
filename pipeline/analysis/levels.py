"""The one place that decides the levels of a factor: what the lift table reports, what the
encoder fits and what the points table holds.

* categorical: each distinct text is a level; levels with fewer than ``min_leads`` leads pool
  into ``(other)``; levels are ordered by descending leads, then by text;
* numeric: right-closed quantile bins (``numpy.quantile(method="lower")`` at ``1/n, 2/n, ...``,
  duplicates dropped, the largest value never an edge, so no bin is empty); a column with at
  most ``n_bins`` distinct values gets one bin per value. The edges are then snapped to numbers
  people type (:func:`snap_edges`): integers for counts, 1-2-2.5-5 steps (x 10^k) for
  continuous values, whole days / hours / minutes for durations, never more than 3
  significant digits; an edge that would empty or merge a bin is dropped. Sentinel values
  ("999 = never contacted") get their own level ``= 999`` before any binning: those configured in
  ``columns.special_values``, and a single value holding more than half of the present
  values (found here, reported with a :class:`SentinelWarning`). Bins are labelled as
  :meth:`pipeline.model.rules.FactorRules.bin_labels` labels them;
* a missing value is its own last level, ``(missing)`` (missingness is often informative).

Level order is the design order of :class:`pipeline.model.encoding.FactorEncoder` and the row order
of :func:`pipeline.analysis.lift.lift_table`: bins, then special levels, then ``(other)``, then
``(missing)``.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from pipeline.model.rules import interval_labels, special_key, special_label

MISSING = "(missing)"
OTHER = "(other)"
#: a single value holding more than this share of a numeric column's present values is a
#: sentinel: it gets its own level instead of swallowing the quantile bins
DOMINANT_SHARE = 0.5
#: a 99 / 999 / 9999 code as the largest value gets its own level from this share of the values
NINES_CODE_SHARE = 0.05
#: a snapped edge may move at most this share of the leads of the smaller bin beside it
#: across the edge (a nicer number further away is refused, a less nice one nearer tried)
SNAP_TOLERANCE = 0.2
#: the most significant digits a snapped edge has
MAX_DIGITS = 3
#: seconds per duration unit (a column's unit: :func:`duration_unit`)
UNIT_SECONDS = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "days": 86400.0,
                "weeks": 604800.0}
#: human duration steps in seconds, coarsest first: months, weeks, days, hours, minutes,
#: seconds
DURATION_STEPS = (30 * 86400.0, 7 * 86400.0, 86400.0, 12 * 3600.0, 6 * 3600.0, 3 * 3600.0,
                  3600.0, 1800.0, 900.0, 600.0, 300.0, 60.0, 30.0, 15.0, 10.0, 5.0, 1.0)
#: decimal step mantissas, coarsest first
NICE_MANTISSAS = (5.0, 2.5, 2.0, 1.0)
_UNITS = "seconds|minutes|hours|days|weeks"
_UNIT_NAME = re.compile(rf"^({_UNITS})_|_({_UNITS})$")


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


def nines_code(values: np.ndarray, share: float = NINES_CODE_SHARE) -> tuple[float, float] | None:
    """``(value, its share)`` when the largest present value is written as a code (99, 999,
    9999 ...) and holds at least ``share`` of the present ``values``, else None. Such a code
    ("999 = not contacted" on 30% of leads) is below :data:`DOMINANT_SHARE` yet sits in the top
    quantile bin with the real large values, which then score as the code does."""
    present = values[~np.isnan(values)]
    finite = present[np.isfinite(present)]
    if finite.size == 0:
        return None
    top = float(finite.max())
    if top < 99 or top != int(top) or set(str(int(top))) != {"9"}:
        return None
    top_share = float((present == top).sum()) / present.size
    return (top, top_share) if top_share >= share else None


def special_values_of(values: np.ndarray, configured: Iterable[float], n_bins: int, *,
                      name: str = "", warn: bool = True) -> tuple[list[float], list[float]]:
    """``(special, auto)``: the numeric values that get a level of their own, sorted.

    The configured values present in ``values``, plus a dominant value of the rest
    (:func:`dominant_value`), else a nines code at the top (:func:`nines_code`), unless the
    rest has at most ``n_bins`` distinct values (each of them is already a level) or the
    dominant value is the smallest (the first bin, ``<= v``, already holds it alone: a count
    column that is mostly 0 keeps its bins as they were).
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
        if found is None or found[0] == finite.min():
            found = nines_code(rest)
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


# ------------------------------------------------------------------- human thresholds


def significant_digits(x: float) -> int:
    """Significant digits of ``x`` as its shortest round-tripping text writes it: ``0.0417``
    has 3, ``1230`` 3, ``0`` 1, ``0.6394478731128349`` 16."""
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return 1
    return len(Decimal(repr(x)).normalize().as_tuple().digits)


def duration_unit(name: str, configured: str | None = None) -> str | None:
    """The time unit of a column: ``configured`` when given, else the unit its name says
    (``days_to_first_product``, ``age_days``, ``hours_since_visit`` ...), else None."""
    if configured is not None:
        if configured not in UNIT_SECONDS:
            raise ValueError(f"column {name!r}: unit must be one of {sorted(UNIT_SECONDS)}, "
                             f"got {configured!r}")
        return configured
    found = _UNIT_NAME.search(str(name).lower())
    return None if found is None else (found.group(1) or found.group(2))


def _clean(x: float) -> float:
    """``x`` without binary noise (``0.30000000000000004`` -> ``0.3``)."""
    return float(f"{x:.12g}") + 0.0


def round_significant(x: float, digits: int = MAX_DIGITS, *, up: bool = False) -> float:
    """``x`` rounded to ``digits`` significant digits (``up``: the smallest such number at
    or above ``x``, so a duration edge of exactly 1 hour still holds 1 hour)."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    step = 10.0 ** (math.floor(math.log10(abs(x))) - digits + 1)
    q = x / step
    n = math.ceil(q - 1e-9) if up else round(q)
    return _clean(n * step)


def _multiples(x: float, step: float) -> list[float]:
    """The multiples of ``step`` just below and above ``x``, the nearer first."""
    below = math.floor(x / step + 1e-12) * step
    above = below + step
    pair = [_clean(below), _clean(above)]
    return pair if x - below <= above - x else pair[::-1]


def edge_candidates(edge: float, *, integer: bool = False, unit: str | None = None
                    ) -> Iterator[float]:
    """Human thresholds near ``edge``, nicest (coarsest step) first, none with more than
    :data:`MAX_DIGITS` significant digits; the last ones are ``edge`` to 3 significant
    digits.

    ``unit`` (a duration column): multiples of months, weeks, days, hours, minutes, seconds,
    each written to 3 significant digits rounding up (1 hour in days: ``0.0417``); else
    multiples of 5, 2.5, 2 and 1 x 10^k for the three decimal places below the edge's first
    digit and one above; ``integer`` (a count): whole steps."""
    seen: set[float] = set()

    def fresh(values: Iterable[float]) -> Iterator[float]:
        for c in values:
            if c not in seen and significant_digits(c) <= MAX_DIGITS:
                seen.add(c)
                yield c

    if edge == 0:
        yield 0.0
        return
    if unit is not None:
        per_unit = UNIT_SECONDS[unit]
        for step in DURATION_STEPS:
            if integer and step < per_unit:
                break
            yield from fresh(round_significant(m / per_unit, up=True)
                             for m in _multiples(edge * per_unit, step))
    magnitude = math.floor(math.log10(abs(edge)))
    for k in range(magnitude + 1, magnitude - MAX_DIGITS, -1):
        for mantissa in NICE_MANTISSAS:
            step = mantissa * 10.0 ** k
            if integer and (step < 1 or not step.is_integer()):
                continue
            yield from fresh(_multiples(edge, step))
    yield from fresh([round_significant(edge), round_significant(edge, up=True)])


def snap_edges(values: np.ndarray, edges: list[float], *, unit: str | None = None,
               tolerance: float = SNAP_TOLERANCE) -> list[float]:
    """Right-closed bin ``edges`` of ``values`` snapped to human thresholds
    (:func:`edge_candidates`; integers when every value is an integer).

    Left to right, each edge takes its first candidate that moves at most ``tolerance`` of
    the leads of the smaller bin beside it across the edge, stays above the previous
    snapped edge with a lead between them, and leaves a lead above it; when no candidate
    is within the tolerance, the nearest 3-significant-digit one that keeps the bins
    non-empty; when none does, the edge is dropped (two bins become one). A candidate
    between an edge and the next observed value moves no lead at all: the training bins stay
    exactly as the quantiles cut them."""
    finite = np.sort(values[np.isfinite(values)])
    if finite.size == 0 or not edges:
        return list(edges)
    integer = bool(np.all(finite == np.round(finite)))
    bounds = [-math.inf, *edges, math.inf]

    def leads(lo: float, hi: float) -> int:
        """Values in ``(lo, hi]``."""
        return int(np.searchsorted(finite, hi, side="right")
                   - np.searchsorted(finite, lo, side="right"))

    out: list[float] = []
    for i, edge in enumerate(edges):
        below = out[-1] if out else -math.inf
        allowed = tolerance * min(leads(bounds[i], edge), leads(edge, bounds[i + 2]))

        def keeps_bins(c: float, below: float = below) -> bool:
            return c > below and leads(below, c) > 0 and leads(c, math.inf) > 0

        chosen = None
        for c in edge_candidates(edge, integer=integer, unit=unit):
            moved = leads(min(c, edge), max(c, edge))
            if moved <= allowed and keeps_bins(c):
                chosen = c
                break
        if chosen is None:
            fallback = sorted({round_significant(edge), round_significant(edge, up=True)},
                              key=lambda c: abs(c - edge))
            chosen = next((c for c in fallback if keeps_bins(c)), None)
        if chosen is not None:
            out.append(chosen)
    return out


def numeric_cut(values: np.ndarray, *, n_bins: int, special_values: Iterable[float] = (),
                name: str = "", warn: bool = True, unit: str | None = None
                ) -> tuple[np.ndarray, Cut]:
    """Each value's level (an index into ``cut.labels``) and the :class:`Cut` of a numeric
    column: special values first taken out, the rest binned at human thresholds
    (:func:`snap_edges`; ``unit`` or the column's ``name`` tells a duration), missing last."""
    special, auto = special_values_of(values, special_values, n_bins, name=name, warn=warn)
    is_special = np.isin(values, special) if special else np.zeros(values.shape, dtype=bool)
    rest = values[~is_special]
    edges = snap_edges(rest, quantile_edges(rest, n_bins), unit=duration_unit(name, unit))
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
