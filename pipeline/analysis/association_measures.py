"""Measures of association on one or two coded variables: rank AUC (a numeric value, or an
out-of-fold target-mean encoding of levels), Cramér's V, Pearson r, weight of evidence and
information value. :mod:`pipeline.analysis.associations` tabulates them per attribute."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.model_selection import StratifiedKFold

WOE_COLUMNS = [
    "level",
    "leads",
    "events",
    "non_events",
    "dist_events",
    "dist_non_events",
    "woe",
    "iv",
]

#: Folds and seed of the out-of-fold target-mean encoding behind a categorical AUC.
AUC_FOLDS = 5
AUC_SEED = 0


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank sum (ties count one half); 0.5 with one class."""
    s = np.asarray(scores, dtype=float)
    t = np.asarray(y, dtype=float)
    n_pos = float(t.sum())
    n_neg = float(t.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = _average_ranks(s)
    return float((ranks[t == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _average_ranks(s: np.ndarray) -> np.ndarray:
    """``scipy.stats.rankdata(s)`` (ties share their average rank). With few distinct values
    (a target-mean encoding, a count) by counting per value instead of sorting every row; the
    ranks are whole or half numbers, so both ways give the same floats."""
    if s.ndim != 1 or s.size < 4096 or np.unique(s[:4096]).size > 1024:  # many distinct
        return _sorted_ranks(s)
    codes, uniques = pd.factorize(s + 0.0)  # + 0.0: -0.0 ties with 0.0, as in a sort
    if (codes < 0).any() or len(uniques) > s.size // 8:  # NaN, or many distinct after all
        return _sorted_ranks(s)
    order = np.argsort(uniques, kind="stable")
    counts = np.bincount(codes, minlength=len(uniques))[order]
    first = np.cumsum(counts) - counts + 1  # ordinal rank of each value's first row
    ranks = np.empty(len(uniques))
    ranks[order] = first.astype(float) + (counts.astype(float) - 1) / 2
    return ranks.take(codes)


def cramers_v_from_codes(a: np.ndarray, b: np.ndarray) -> float:
    """Bias-uncorrected Cramér's V of two integer-coded variables (codes 0..k-1).

    NaN when either variable has a single observed level (V is undefined there).
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    n = a.size
    if n == 0:
        return float("nan")
    a = dense_codes(a)
    b = dense_codes(b)
    return cramers_v_dense(a, int(a.max()) + 1, b, int(b.max()) + 1)


def cramers_v_dense(a: np.ndarray, ka: int, b: np.ndarray, kb: int) -> float:
    """:func:`cramers_v_from_codes` of codes every value of which, 0..ka-1 and 0..kb-1, is
    observed (see :func:`dense_codes`)."""
    n = a.size
    if ka < 2 or kb < 2:
        return float("nan")
    table = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb).astype(float)
    rows = table.sum(axis=1)
    cols = table.sum(axis=0)
    chi2 = n * (float(np.sum(table * table / np.outer(rows, cols))) - 1.0)
    v2 = max(chi2, 0.0) / (n * (min(ka, kb) - 1))
    return float(np.sqrt(min(v2, 1.0)))


def dense_codes(codes: np.ndarray) -> np.ndarray:
    """``np.unique(codes, return_inverse=True)[1]``: observed codes renumbered 0..k-1 in
    order, by counting when the codes are small non-negative integers (no sort)."""
    if codes.size == 0:
        return np.zeros(0, dtype=np.intp)
    low, high = int(codes.min()), int(codes.max())
    if low < 0 or high > 4 * codes.size + 1024:
        return np.unique(codes, return_inverse=True)[1]
    rank = np.cumsum(np.bincount(codes, minlength=high + 1) > 0) - 1
    return rank.take(codes)


def pearson(x: np.ndarray, z: np.ndarray) -> float:
    """Pearson r on the rows where both are present; NaN when either is constant there."""
    x = np.asarray(x, dtype=float)
    z = np.asarray(z, dtype=float)
    ok = ~(np.isnan(x) | np.isnan(z))
    x, z = x[ok], z[ok]
    if x.size < 2:
        return float("nan")
    dx = x - x.mean()
    dz = z - z.mean()
    sxx = float(np.dot(dx, dx))
    szz = float(np.dot(dz, dz))
    if sxx <= 0 or szz <= 0:
        return float("nan")
    return float(np.clip(np.dot(dx, dz) / np.sqrt(sxx * szz), -1.0, 1.0))


def woe_table(levels: pd.Series, y: pd.Series, *, zero_cell: float = 0.5) -> pd.DataFrame:
    """Weight of evidence and information value per level.

    Columns: ``level, leads, events, non_events, dist_events, dist_non_events, woe, iv``
    where events are conversions, ``dist_* = count / class total`` (a zero count replaced
    by ``zero_cell`` so the log stays finite; class totals are the observed ones),
    ``woe = ln(dist_events / dist_non_events)`` (positive: converts better than average)
    and ``iv = (dist_events - dist_non_events) * woe``; the attribute's IV is the sum.
    Levels sorted by name. Needs both classes in ``y``.
    """
    t = np.asarray(y, dtype=float)
    total_events = float(t.sum())
    total_non = float(t.size - total_events)
    if total_events == 0 or total_non == 0:
        raise ValueError(
            f"woe_table needs both classes in y, got {int(total_events)} conversions "
            f"out of {t.size} leads"
        )
    codes, names = pd.factorize(pd.Series(levels).astype(object), sort=True)
    if (codes < 0).any():
        raise ValueError("woe_table: levels must not hold missing values (label them first)")
    return woe_from_codes(codes, names, t, zero_cell=zero_cell)


def woe_from_codes(
    codes: np.ndarray, names: Any, t: np.ndarray, *, zero_cell: float = 0.5
) -> pd.DataFrame:
    """:func:`woe_table` on levels already coded 0..k-1 in name order (both classes in ``t``)."""
    leads = np.bincount(codes, minlength=len(names)).astype(np.int64)
    events = np.bincount(codes, weights=t, minlength=len(names)).round().astype(np.int64)
    return woe_from_counts(names, leads, events, zero_cell=zero_cell)


def woe_from_counts(levels: Any, leads: Any, events: Any, *, zero_cell: float = 0.5
                    ) -> pd.DataFrame:
    """:func:`woe_table` from per-level counts (``leads`` and ``events`` = conversions, one
    entry per level; class totals are their sums): the same columns, levels in given order."""
    leads = np.asarray(leads, dtype=np.int64)
    events = np.asarray(events, dtype=np.int64)
    non_events = leads - events
    total_events = float(events.sum())
    total_non = float(non_events.sum())
    if total_events == 0 or total_non == 0:
        raise ValueError("woe needs both classes among the leads")
    e = np.where(events == 0, zero_cell, events) / total_events
    ne = np.where(non_events == 0, zero_cell, non_events) / total_non
    woe = np.log(e / ne)
    return pd.DataFrame(
        {
            "level": np.asarray(levels, dtype=object),
            "leads": leads,
            "events": events,
            "non_events": non_events,
            "dist_events": e,
            "dist_non_events": ne,
            "woe": woe,
            "iv": (e - ne) * woe,
        }
    )


def oof_target_mean_auc(
    levels: np.ndarray, y: np.ndarray, *, n_splits: int = AUC_FOLDS, seed: int = AUC_SEED
) -> float:
    """AUC of an out-of-fold target-mean encoding of a categorical (stratified folds).

    Each lead is encoded by the conversion rate of its level in the other folds (the
    other folds' overall rate for a level they never saw). 0.5 for a single level.
    """
    codes, names = pd.factorize(pd.Series(levels, dtype=object), sort=True)
    t = np.asarray(y, dtype=float)
    if len(names) < 2:
        return 0.5
    return oof_auc_from_codes(codes, len(names), t, oof_folds(t, n_splits=n_splits, seed=seed))


def oof_folds(
    t: np.ndarray, *, n_splits: int = AUC_FOLDS, seed: int = AUC_SEED
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The stratified ``(train, test)`` folds of the out-of-fold encoding (they depend on the
    target only, so one split serves every attribute); none when a class has one lead."""
    n_pos = int(t.sum())
    folds = min(n_splits, n_pos, t.size - n_pos)
    if folds < 2:
        return []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(t.size), t.astype(int)))


def oof_auc_from_codes(
    codes: np.ndarray, k: int, t: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
) -> float:
    """:func:`oof_target_mean_auc` on levels already coded 0..k-1, with :func:`oof_folds`."""
    if k < 2 or not folds:
        return 0.5
    encoded = np.empty(t.size)
    for train, test in folds:
        n = np.bincount(codes[train], minlength=k)
        s = np.bincount(codes[train], weights=t[train], minlength=k)
        fallback = t[train].mean()
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(n > 0, s / n, fallback)
        encoded[test] = rate[codes[test]]
    return auc(encoded, t)


def _sorted_ranks(s: np.ndarray) -> np.ndarray:
    """``scipy.stats.rankdata(s)`` by one unstable sort: the average rank of a run of ties
    does not depend on the order within it (twice as fast as rankdata's stable sort)."""
    if s.ndim != 1 or s.size == 0 or np.isnan(s).any():
        return stats.rankdata(s)
    order = np.argsort(s)
    ascending = s[order]
    starts = np.r_[True, ascending[1:] != ascending[:-1]]
    run = np.cumsum(starts)  # 1-based run of ties of each sorted value
    bounds = np.r_[np.flatnonzero(starts), s.size]  # where each run starts, then the end
    ranks = np.empty(s.size)
    ranks[order] = 0.5 * (bounds[run] + bounds[run - 1] + 1)
    return ranks


def numeric_auc(x: np.ndarray, y: np.ndarray) -> float:
    """max(AUC, 1 - AUC) of a raw numeric value, missing ranked as its own lowest value."""
    v = np.asarray(x, dtype=float)
    v = np.where(np.isnan(v), -np.inf, v)
    a = auc(v, y)
    return max(a, 1.0 - a)
