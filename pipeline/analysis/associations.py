"""How strongly each attribute goes with conversion, and with the other attributes.

Target associations (point-biserial r, Cramér's V, information value, single-attribute
AUC) rank factors and flag leaks; pairwise associations (Pearson r or Cramér's V) and
VIF find near-duplicates. Categorical statistics use the levels of
:func:`pipeline.analysis.lift.level_frame`, so they see the same pooled levels as the lift table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.model_selection import StratifiedKFold

from pipeline.analysis.lift import check_frame, check_target, is_numeric_column
from pipeline.analysis.lift import level_frame as make_level_frame
from pipeline.model.encoding import factorize_cells, with_fill

TARGET_COLUMNS = [
    "attribute",
    "kind",
    "point_biserial",
    "cramers_v",
    "information_value",
    "single_auc",
    "n_levels",
    "missing_share",
]
PAIRWISE_COLUMNS = ["attribute_a", "attribute_b", "measure", "value"]
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


# --------------------------------------------------------------------- primitives


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
    a = _dense_codes(a)
    b = _dense_codes(b)
    return _cramers_v_dense(a, int(a.max()) + 1, b, int(b.max()) + 1)


def _cramers_v_dense(a: np.ndarray, ka: int, b: np.ndarray, kb: int) -> float:
    """:func:`cramers_v_from_codes` of codes every value of which, 0..ka-1 and 0..kb-1, is
    observed (see :func:`_dense_codes`)."""
    n = a.size
    if ka < 2 or kb < 2:
        return float("nan")
    table = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb).astype(float)
    rows = table.sum(axis=1)
    cols = table.sum(axis=0)
    chi2 = n * (float(np.sum(table * table / np.outer(rows, cols))) - 1.0)
    v2 = max(chi2, 0.0) / (n * (min(ka, kb) - 1))
    return float(np.sqrt(min(v2, 1.0)))


def _dense_codes(codes: np.ndarray) -> np.ndarray:
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
    return _woe_from_codes(codes, names, t, zero_cell=zero_cell)


def _woe_from_codes(
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
    return _oof_auc_from_codes(codes, len(names), t, _oof_folds(t, n_splits=n_splits, seed=seed))


def _oof_folds(
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


def _oof_auc_from_codes(
    codes: np.ndarray, k: int, t: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
) -> float:
    """:func:`oof_target_mean_auc` on levels already coded 0..k-1, with :func:`_oof_folds`."""
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


# ------------------------------------------------------------------------- tables


def target_associations(
    X: pd.DataFrame,
    y: pd.Series,
    *,
    level_frame: pd.DataFrame | None = None,
    min_leads: int = 30,
    n_bins: int = 5,
) -> pd.DataFrame:
    """One row per column: how strongly it goes with conversion.

    Columns: ``attribute, kind, point_biserial`` (numeric only, rows with a missing value
    dropped; NaN for categorical or a constant value), ``cramers_v`` (levels vs y, NaN with
    a single level), ``information_value`` (see :func:`woe_table`), ``single_auc``
    (numeric: :func:`numeric_auc`; categorical: :func:`oof_target_mean_auc` on the levels;
    0.5 for a constant or all-missing column), ``n_levels`` (levels in the level frame,
    missing and pooled "other" included) and ``missing_share``. ``level_frame`` is the
    first result of :func:`pipeline.analysis.lift.level_frame` (computed with ``min_leads`` and
    ``n_bins`` when not given).
    """
    t = check_target(X, y)
    if t.min() == t.max():
        raise ValueError(
            f"y has a single class ({int(t[0])} for all {t.size} leads): "
            "associations with conversion are undefined"
        )
    levels = _resolve_levels(X, level_frame, min_leads=min_leads, n_bins=n_bins)
    t_codes = t.astype(np.int64)
    folds: list[tuple[np.ndarray, np.ndarray]] | None = None  # split once, when first needed
    rows: list[dict[str, Any]] = []
    for column in X.columns:
        series = X[column]
        numeric = is_numeric_column(series)
        # the levels are coded once and shared by V, IV and the AUC
        codes, names = sorted_level_codes(levels[column])
        if (codes < 0).any():
            raise ValueError("level_frame must label every value (missing is a level, not NaN)")
        n_levels = len(names)
        missing_share = float(missing_mask(series).mean())
        if numeric:
            x = pd.to_numeric(series).to_numpy(dtype=float, na_value=np.nan)
            r = pearson(x, t)
            single = numeric_auc(x, t)
        else:
            r = float("nan")
            if n_levels > 1 and folds is None:
                folds = _oof_folds(t)
            single = _oof_auc_from_codes(codes, n_levels, t, folds) if n_levels > 1 else 0.5
        rows.append(
            {
                "attribute": str(column),
                "kind": "numeric" if numeric else "categorical",
                "point_biserial": r,
                "cramers_v": cramers_v_from_codes(codes, t_codes),
                "information_value": float(_woe_from_codes(codes, names, t)["iv"].sum()),
                "single_auc": single,
                "n_levels": n_levels,
                "missing_share": missing_share,
            }
        )
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TARGET_COLUMNS})
    return pd.DataFrame(rows, columns=TARGET_COLUMNS)


def pairwise_associations(
    X: pd.DataFrame, *, level_frame: pd.DataFrame, columns: list[str] | None = None
) -> pd.DataFrame:
    """Association of every unordered pair of columns, as a long table.

    Columns: ``attribute_a, attribute_b, measure, value``; ``measure`` is ``"pearson"``
    (signed r, pairwise-complete rows) when both columns are numeric, else ``"cramers_v"``
    (bias-uncorrected, on the levels of ``level_frame``). NaN where undefined (a constant
    column). Pairs in column order (a before b); ``columns`` restricts to a subset.
    """
    check_frame(X)
    names = [str(c) for c in X.columns] if columns is None else list(columns)
    unknown = [c for c in names if c not in X.columns or c not in level_frame.columns]
    if unknown:
        raise ValueError(f"pairwise_associations: columns not in X/level_frame: {unknown}")
    if not level_frame.index.equals(X.index):
        raise ValueError("level_frame must have the same index as X")
    numeric = {c: is_numeric_column(X[c]) for c in names}
    # each column coded once, renumbered as Cramér's V does, and reused by all its pairs
    codes = {c: _dense_codes(sorted_level_codes(level_frame[c])[0]) for c in names}
    k = {c: int(codes[c].max(initial=-1)) + 1 for c in names}
    values = {
        c: pd.to_numeric(X[c]).to_numpy(dtype=float, na_value=np.nan) for c in names if numeric[c]
    }
    rows: list[tuple[str, str, str, float]] = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if numeric[a] and numeric[b]:
                rows.append((a, b, "pearson", pearson(values[a], values[b])))
            else:
                v = _cramers_v_dense(codes[a], k[a], codes[b], k[b])
                rows.append((a, b, "cramers_v", v))
    return pd.DataFrame(rows, columns=PAIRWISE_COLUMNS).astype({"value": float})


def vif_table(design: pd.DataFrame) -> pd.DataFrame:
    """Variance inflation factor of each column of an encoded numeric design.

    Each column is regressed on all the others plus an intercept: ``vif = 1 / (1 - R^2)``.
    Columns: ``feature, vif``. A constant column has no variance to inflate: NaN. A column
    that the others reproduce exactly (R^2 = 1) gets ``inf``.
    """
    check_frame(design)
    bad = [str(c) for c in design.columns if not is_numeric_column(design[c])]
    if bad:
        raise ValueError(f"vif_table needs numeric columns (encode first), got non-numeric {bad}")
    m = design.to_numpy(dtype=float, na_value=np.nan)
    if np.isnan(m).any():
        cols = [str(c) for c in design.columns[np.isnan(m).any(axis=0)]]
        raise ValueError(f"vif_table needs a design without missing values, NaN in {cols}")
    if m.shape[0] < 2:
        raise ValueError(f"vif_table needs at least 2 rows, got {m.shape[0]}")
    k = m.shape[1]
    out = np.full(k, np.nan)
    centred = m - m.mean(axis=0)  # centring = regressing with an intercept
    ss = (centred * centred).sum(axis=0)
    constant = np.ptp(m, axis=0) == 0
    for j in range(k):
        if constant[j]:
            continue  # no variance to inflate: VIF undefined
        others = np.delete(centred, j, axis=1)
        coef, *_ = np.linalg.lstsq(others, centred[:, j], rcond=None)
        resid = centred[:, j] - others @ coef
        r2 = 1.0 - float(resid @ resid) / float(ss[j])
        out[j] = np.inf if r2 >= 1.0 - 1e-10 else 1.0 / (1.0 - r2)
    return pd.DataFrame({"feature": [str(c) for c in design.columns], "vif": out})


# ------------------------------------------------------------------------ helpers


def missing_mask(series: pd.Series) -> np.ndarray:
    """Null cells, plus empty strings in a non-numeric column (checked per distinct value)."""
    if is_numeric_column(series):
        return series.isna().to_numpy()
    try:
        codes, uniques = factorize_cells(series)
    except TypeError:  # unhashable cells: row by row
        values = series.to_numpy(dtype=object)
        empty = np.array([isinstance(v, str) and v == "" for v in values], dtype=bool)
        return series.isna().to_numpy() | empty
    empty_value = [isinstance(u, str) and u == "" for u in uniques]
    return with_fill(empty_value, True, bool).take(codes)


def sorted_level_codes(levels: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(levels, sort=True)`` of a level-frame column (labels in sorted order,
    only those present). A categorical column is renumbered from its codes: no label is
    hashed again."""
    if not isinstance(levels.dtype, pd.CategoricalDtype):
        return pd.factorize(levels.to_numpy(dtype=object), sort=True)
    codes = levels.cat.codes.to_numpy()
    categories = levels.cat.categories.to_numpy(dtype=object)
    present = np.bincount(codes[codes >= 0], minlength=len(categories)) > 0
    names = np.array(sorted(categories[present]), dtype=object)
    position = {name: k for k, name in enumerate(names)}
    renumber = np.array([position.get(c, -1) for c in categories] + [-1], dtype=np.intp)
    return renumber.take(codes), names  # a missing cell (code -1) stays -1


def _resolve_levels(
    X: pd.DataFrame, level_frame: pd.DataFrame | None, *, min_leads: int, n_bins: int
) -> pd.DataFrame:
    if level_frame is None:
        return make_level_frame(X, min_leads=min_leads, n_bins=n_bins)[0]
    missing = [str(c) for c in X.columns if c not in level_frame.columns]
    if missing:
        raise ValueError(f"level_frame lacks columns of X: {missing}")
    if not level_frame.index.equals(X.index):
        raise ValueError("level_frame must have the same index as X")
    return level_frame  # NaN levels are refused where each column is coded
