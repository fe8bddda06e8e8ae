"""How strongly each attribute goes with conversion, and with the other attributes.

Target associations (point-biserial r, Cramér's V, information value, single-attribute
AUC) rank factors and flag leaks; pairwise associations (Pearson r or Cramér's V) and
VIF find near-duplicates. Categorical statistics use the levels of
:func:`pipeline.analysis.lift_levels.level_frame`, so they see the same pooled levels as the
lift table. The measures themselves are :mod:`pipeline.analysis.association_measures`'.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline.analysis.association_measures import (
    cramers_v_dense,
    cramers_v_from_codes,
    dense_codes,
    numeric_auc,
    oof_auc_from_codes,
    oof_folds,
    pearson,
    woe_from_codes,
)
from pipeline.analysis.lift_levels import check_frame, check_target, is_numeric_column
from pipeline.analysis.lift_levels import level_frame as make_level_frame
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
    first result of :func:`pipeline.analysis.lift_levels.level_frame` (computed with
    ``min_leads`` and ``n_bins`` when not given).
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
                folds = oof_folds(t)
            single = oof_auc_from_codes(codes, n_levels, t, folds) if n_levels > 1 else 0.5
        rows.append(
            {
                "attribute": str(column),
                "kind": "numeric" if numeric else "categorical",
                "point_biserial": r,
                "cramers_v": cramers_v_from_codes(codes, t_codes),
                "information_value": float(woe_from_codes(codes, names, t)["iv"].sum()),
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
    codes = {c: dense_codes(sorted_level_codes(level_frame[c])[0]) for c in names}
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
                v = cramers_v_dense(codes[a], k[a], codes[b], k[b])
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
