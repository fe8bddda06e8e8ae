"""Conversion-rate method, done properly: one tidy row per attribute level.

For every attribute (input column) and each of its levels: leads, conversions, the
conversion rate with a Wilson interval, lift over the overall rate, an empirical-Bayes
shrunk rate (so a 3-lead level cannot outrank a 500-lead one by luck, and levels that
differ no more than chance all shrink to the overall rate), a level-vs-rest
significance test with Benjamini-Hochberg adjustment, and the seed's points
(``round(rate - overall rate)`` in percentage points: 40 % against 15 % gives 25).
Per attribute, factor selection adds a chi-square test of independence of all its levels
vs conversion (:func:`pipeline.analysis.lift_stats.independence_test`), Holm-corrected across
attributes (:func:`pipeline.analysis.lift_stats.holm`).

The levels (and the checks of ``X`` and ``y``) are :mod:`pipeline.analysis.lift_levels`'s,
the statistics :mod:`pipeline.analysis.lift_stats`'.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipeline.analysis.lift_levels import check_target, coded_levels
from pipeline.analysis.lift_stats import (
    benjamini_hochberg,
    beta_prior,
    level_vs_rest_p_values,
    shrunk_rates,
    wilson_interval,
)
from pipeline.model.rules import GROUPS

LIFT_COLUMNS = [
    "attribute",
    "level",
    "group",
    "kind",
    "bin_lower",
    "bin_upper",
    "leads",
    "conversions",
    "conversion_rate",
    "ci_low",
    "ci_high",
    "lift",
    "diff_pp",
    "shrunk_rate",
    "shrunk_diff_pp",
    "p_value",
    "p_adjusted",
    "seed_points",
]


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def lift_table(
    X: pd.DataFrame,
    y: pd.Series,
    groups: Mapping[str, str],
    *,
    min_leads: int = 30,
    n_bins: int = 5,
    alpha: float = 0.05,
    levels: tuple[pd.DataFrame, dict[str, dict[str, Any]]] | None = None,
    special_values: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One row per attribute level with its conversion statistics.

    Columns (exactly): ``attribute, level, group, kind, bin_lower, bin_upper, leads,
    conversions, conversion_rate, ci_low, ci_high`` (Wilson, level ``1 - alpha``),
    ``lift`` (rate / overall rate), ``diff_pp`` (rate - overall, in percentage points),
    ``shrunk_rate`` (beta-binomial posterior mean, prior fitted on the attribute's levels
    by :func:`beta_prior`: the overall rate for every level of an attribute whose levels
    differ no more than chance), ``shrunk_diff_pp``, ``p_value`` (level vs rest),
    ``p_adjusted`` (Benjamini-Hochberg over the whole table) and ``seed_points``
    (``diff_pp`` rounded half away from zero). ``bin_lower``/``bin_upper`` bound the
    right-closed numeric bin (``-inf``/``inf`` at the ends; both the value for a special
    value's level such as ``= 999``; NaN for categorical levels and missing). Rows:
    attributes in column order, levels as in :func:`level_frame` (``special_values`` as
    there). ``levels`` may pass a precomputed ``level_frame(X, ...)`` result to avoid
    recomputing.
    """
    y_arr = check_target(X, y)
    _check_groups(X, groups)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    coded = coded_levels(X, levels, min_leads=min_leads, n_bins=n_bins,
                          special_values=special_values or {})
    total_leads = int(y_arr.size)
    total_conv = int(y_arr.sum())
    overall = total_conv / total_leads
    parts: list[pd.DataFrame] = []
    for column, (codes, info) in zip(X.columns, coded, strict=True):
        name = str(column)
        order = list(info["levels"])
        leads = np.bincount(codes, minlength=len(order)).astype(np.int64)
        conv = np.bincount(codes, weights=y_arr, minlength=len(order)).round().astype(np.int64)
        a, b, _ = beta_prior(conv, leads, overall_rate=overall)
        shrunk = shrunk_rates(conv, leads, a, b, prior_mean=overall)
        lower, upper = _bin_bounds(info, order)
        parts.append(
            pd.DataFrame(
                {
                    "attribute": name,
                    "level": order,
                    "group": groups[name],
                    "kind": info["kind"],
                    "bin_lower": lower,
                    "bin_upper": upper,
                    "leads": leads,
                    "conversions": conv,
                    "shrunk_rate": shrunk,
                }
            )
        )
    if not parts:
        return _empty_lift()
    table = pd.concat(parts, ignore_index=True)
    leads = table["leads"].to_numpy(dtype=float)
    conv = table["conversions"].to_numpy(dtype=float)
    rate = conv / leads
    ci_low, ci_high = wilson_interval(conv, leads, alpha=alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = rate / overall if overall > 0 else np.full(rate.shape, np.nan)
    diff_pp = 100.0 * (rate - overall)
    p_value = level_vs_rest_p_values(
        conv, leads, total_conversions=total_conv, total_leads=total_leads
    )
    table = table.assign(
        conversion_rate=rate,
        ci_low=ci_low,
        ci_high=ci_high,
        lift=lift,
        diff_pp=diff_pp,
        shrunk_diff_pp=100.0 * (table["shrunk_rate"].to_numpy() - overall),
        p_value=p_value,
        p_adjusted=benjamini_hochberg(p_value),
        seed_points=_round_half_away(diff_pp).astype(np.int64),
    )
    return table[LIFT_COLUMNS]


def overall_rate(y: pd.Series) -> float:
    """Share of converted leads."""
    return float(np.asarray(y, dtype=float).mean())


def _bin_bounds(info: dict[str, Any], order: list[str]) -> tuple[np.ndarray, np.ndarray]:
    lower = np.full(len(order), np.nan)
    upper = np.full(len(order), np.nan)
    n_bins = len(info.get("bins", ()))
    if info["kind"] != "numeric":
        return lower, upper
    if n_bins:
        bounds = np.array([-math.inf, *info["edges"], math.inf])
        lower[:n_bins] = bounds[:-1]
        upper[:n_bins] = bounds[1:]
    special = list(info.get("special", ()))
    lower[n_bins:n_bins + len(special)] = special
    upper[n_bins:n_bins + len(special)] = special
    return lower, upper


def _empty_lift() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in LIFT_COLUMNS})


def _check_groups(X: pd.DataFrame, groups: Mapping[str, str]) -> None:
    missing = [str(c) for c in X.columns if str(c) not in groups]
    if missing:
        raise ValueError(f"groups has no FIT/PAIN entry for columns {missing}")
    bad = {str(c): groups[str(c)] for c in X.columns if groups[str(c)] not in GROUPS}
    if bad:
        raise ValueError(f"groups must map each column to one of {GROUPS}, got {bad}")
