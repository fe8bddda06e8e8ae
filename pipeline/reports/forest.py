"""The coefficient forest plot: odds ratios with 95% intervals for every non-reference level,
on a clipped axis, and a sentence saying what it draws and what it leaves out."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.reports.page import figure_png


def _fig(width: float, height: float) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot(1, 1, 1)


FOREST_LIMIT = 100.0  # the forest plot's axis: odds ratios from 1/100 to 100


def forest_rows(coefficients: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(levels the forest plot draws, levels it leaves out): reference levels (odds ratio 1
    by definition) and levels without a finite interval are left out, every other level of
    every factor is drawn."""
    rows = coefficients[coefficients["factor"] != "(intercept)"]
    finite = np.isfinite(rows["ci_low"]) & np.isfinite(rows["ci_high"])
    drawn = rows[~rows["reference"] & finite]
    return drawn, rows[~rows["reference"] & ~finite]


def forest_plot(coefficients: pd.DataFrame) -> bytes:
    """Odds ratios with 95% intervals for every non-reference level, on an axis from
    1/:data:`FOREST_LIMIT` to :data:`FOREST_LIMIT`: an interval reaching past it (a level
    with few leads, or one where every lead won or lost) ends in an arrow at the edge."""
    rows, _ = forest_rows(coefficients)
    fig, ax = _fig(8.0, max(3.0, 0.2 * len(rows) + 1.2))
    y = np.arange(len(rows))
    lo_lim, hi_lim = np.log(1 / FOREST_LIMIT), np.log(FOREST_LIMIT)
    coef = rows["coef"].to_numpy(dtype=float).clip(lo_lim, hi_lim)
    low = rows["ci_low"].to_numpy(dtype=float).clip(lo_lim, hi_lim)
    high = rows["ci_high"].to_numpy(dtype=float).clip(lo_lim, hi_lim)
    ax.errorbar(np.exp(coef), y, xerr=[np.exp(coef) - np.exp(low), np.exp(high) - np.exp(coef)],
                fmt="o", color="#2f6fab", ecolor="#9fb3c8", capsize=2, markersize=4)
    past_low = rows["ci_low"].to_numpy(dtype=float) < lo_lim
    past_high = rows["ci_high"].to_numpy(dtype=float) > hi_lim
    ax.plot(np.full(past_low.sum(), 1 / FOREST_LIMIT), y[past_low], "<", color="#c0392b",
            markersize=5)
    ax.plot(np.full(past_high.sum(), FOREST_LIMIT), y[past_high], ">", color="#c0392b",
            markersize=5)
    ax.axvline(1.0, color="#c0392b", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlim(1 / FOREST_LIMIT / 1.3, FOREST_LIMIT * 1.3)
    ax.set_yticks(y, [f"{f} = {lvl}"[:60] for f, lvl in zip(rows["factor"], rows["level"],
                                                               strict=True)], fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("odds ratio vs the factor's most common level (95% CI, statsmodels); "
                  f"red arrows: the interval goes past 1/{FOREST_LIMIT:g} or {FOREST_LIMIT:g}",
                  fontsize=8)
    ax.set_title(f"Coefficient forest plot: all {len(rows)} non-reference levels")
    return figure_png(fig)


def forest_note(coefficients: pd.DataFrame) -> str:
    """What the forest plot shows and what it leaves out, in words."""
    drawn, left_out = forest_rows(coefficients)
    lo_lim, hi_lim = np.log(1 / FOREST_LIMIT), np.log(FOREST_LIMIT)
    wide = drawn[(drawn["ci_low"] < lo_lim) | (drawn["ci_high"] > hi_lim)]
    text = (f"The plot draws all {len(drawn)} non-reference levels of "
            f"{drawn['factor'].nunique()} factors; reference levels (odds ratio 1) are not "
            "drawn.")
    if len(wide):
        text += (f" {len(wide)} intervals reach past the axis (1/{FOREST_LIMIT:g} to "
                 f"{FOREST_LIMIT:g}) and end in an arrow: "
                 + ", ".join(f"{r.factor} = {r.level}" for r in wide.head(10).itertuples())
                 + (", ..." if len(wide) > 10 else "") + " (few leads, or all won or lost).")
    if len(left_out):
        text += (" Left out for want of a finite interval: "
                 + ", ".join(f"{r.factor} = {r.level}" for r in left_out.itertuples()) + ".")
    return text
