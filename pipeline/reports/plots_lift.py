"""Lift charts: conversion rate per level with Wilson intervals against the overall rate.

Figures are built with the object-oriented API (``matplotlib.figure.Figure`` drawn on an
Agg canvas), never through ``pyplot``: nothing is registered globally, so there is no
figure to leak, no backend switch at import and no display needed.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.inputs.reader import write_bytes_atomic

_NEEDED = ["attribute", "level", "leads", "conversion_rate", "ci_low", "ci_high"]
_SLUG_MAX = 60
MAX_CHART_LEVELS = 30  # a chart shows at most this many levels: those with the most leads

matplotlib.rcParams["text.parse_math"] = False  # level names are data, not TeX: "$$ budget"


def lift_chart(lift_rows_for_one_attribute: pd.DataFrame, overall_rate: float) -> Figure:
    """Horizontal bars of the conversion rate per level (table order, top down).

    Error bars are the Wilson interval (``ci_low``/``ci_high``); a dashed vertical line
    marks ``overall_rate``; the title is the attribute; rates are shown in percent. An
    attribute with more than :data:`MAX_CHART_LEVELS` levels shows the levels with the most
    leads, and its title says how many of how many (the lift table has them all).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    rows = lift_rows_for_one_attribute
    absent = [c for c in _NEEDED if c not in rows.columns]
    if absent:
        raise ValueError(f"lift_chart: lift rows lack columns {absent}")
    attributes = rows["attribute"].astype(str).unique()
    if len(attributes) != 1:
        raise ValueError(
            f"lift_chart draws one attribute at a time, got {len(attributes)}: "
            f"{list(attributes)[:5]}"
        )
    if not 0.0 <= overall_rate <= 1.0:
        raise ValueError(f"overall_rate must be a share in [0, 1], got {overall_rate!r}")
    title = str(attributes[0])
    if len(rows) > MAX_CHART_LEVELS:
        title += f" ({MAX_CHART_LEVELS} of {len(rows)} levels: those with the most leads)"
        biggest = np.argsort(-rows["leads"].to_numpy(dtype=float), kind="stable")
        rows = rows.iloc[np.sort(biggest[:MAX_CHART_LEVELS])]
    rate = 100.0 * rows["conversion_rate"].to_numpy(dtype=float)
    low = 100.0 * rows["ci_low"].to_numpy(dtype=float)
    high = 100.0 * rows["ci_high"].to_numpy(dtype=float)
    xerr = np.vstack([np.clip(rate - low, 0, None), np.clip(high - rate, 0, None)])
    labels = [
        f"{level} (n={int(n):,})"
        for level, n in zip(rows["level"].astype(str), rows["leads"], strict=True)
    ]
    positions = np.arange(len(rows))

    fig = Figure(figsize=(8.0, 1.2 + 0.4 * max(len(rows), 1)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh(positions, rate, xerr=xerr, color="#4C72B0", ecolor="#333333", capsize=3)
    ax.axvline(
        100.0 * overall_rate,
        color="#C44E52",
        linestyle="--",
        linewidth=1.5,
        label=f"overall {100.0 * overall_rate:.1f} %",
    )
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("conversion rate (%), 95 % Wilson interval")
    ax.set_ylabel("level")
    ax.set_title(title)
    ax.legend(loc="best")
    return fig


def chart_file_name(attribute: str) -> str:
    """A filesystem-safe, collision-free PNG name: readable slug + short hash of the name."""
    slug = re.sub(r"[^a-z0-9]+", "-", attribute.lower()).strip("-")[:_SLUG_MAX].strip("-")
    digest = hashlib.sha256(attribute.encode("utf-8")).hexdigest()[:8]
    return f"{slug or 'attribute'}-{digest}.png"


def save_lift_charts(lift: pd.DataFrame, overall_rate: float, out_dir: Path) -> list[Path]:
    """Write one PNG per attribute of ``lift`` into ``out_dir`` (created if needed).

    Returns the paths in attribute order. File names come from :func:`chart_file_name`,
    so a crafted attribute name (``../../etc``, ``a/b``) cannot leave ``out_dir``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()
    paths: list[Path] = []
    for attribute in pd.unique(lift["attribute"].astype(str)):
        path = out / chart_file_name(attribute)
        if path.resolve().parent != root:  # defence in depth: the slug has no separators
            raise ValueError(f"chart path for attribute {attribute!r} escapes {out}")
        fig = lift_chart(lift[lift["attribute"].astype(str) == attribute], overall_rate)
        buffer = io.BytesIO()
        try:
            fig.savefig(buffer, format="png", dpi=100)
        finally:
            fig.clear()
        write_bytes_atomic(path, buffer.getvalue())  # a killed run leaves no half chart
        paths.append(path)
    return paths


def points_chart(points_rows_for_one_factor: pd.DataFrame,
                 level_order: list[str] | None = None) -> Figure:
    """Horizontal bars of the integer points per level of one factor, drawn to sit beside its
    :func:`lift_chart`: levels in ``level_order`` (the lift chart's, top down) first, then the
    table's other levels (``(missing)``, ``(unseen)``); the same level cap as the lift chart
    (the levels with the most leads; the title says how many of how many). Green adds points,
    red takes them away; each bar is labelled with its value."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    rows = points_rows_for_one_factor
    absent = [c for c in ("factor", "level", "points", "leads") if c not in rows.columns]
    if absent:
        raise ValueError(f"points_chart: points rows lack columns {absent}")
    factors = rows["factor"].astype(str).unique()
    if len(factors) != 1:
        raise ValueError(f"points_chart draws one factor at a time, got {len(factors)}")
    rows = rows.assign(level=rows["level"].astype(str))
    order = list(level_order or [])
    rank = {level: i for i, level in enumerate(order)}
    rows = rows.assign(_rank=[rank.get(level, len(order) + i)
                              for i, level in enumerate(rows["level"])])
    rows = rows.sort_values("_rank", kind="stable")
    title = f"{factors[0]}: points per level"
    if len(rows) > MAX_CHART_LEVELS:
        biggest = np.argsort(-rows["leads"].to_numpy(dtype=float), kind="stable")
        title += f" ({MAX_CHART_LEVELS} of {len(rows)} levels)"
        rows = rows.iloc[np.sort(biggest[:MAX_CHART_LEVELS])]
    points = rows["points"].to_numpy(dtype=float)
    positions = np.arange(len(rows))
    fig = Figure(figsize=(5.0, 1.2 + 0.4 * max(len(rows), 1)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = ["#2f9e44" if p > 0 else "#c92a2a" if p < 0 else "#868e96" for p in points]
    ax.barh(positions, points, color=colours)
    ax.axvline(0, color="#333333", linewidth=1)
    span = max(float(np.abs(points).max()) if len(points) else 1.0, 1.0)
    for y, p in zip(positions, points, strict=True):
        ax.text(p + (0.03 * span if p >= 0 else -0.03 * span), y, f"{int(p):+d}",
                va="center", ha="left" if p >= 0 else "right", fontsize=8)
    ax.set_xlim(-1.3 * span, 1.3 * span)
    ax.set_yticks(positions, [str(level)[:40] for level in rows["level"]])
    ax.invert_yaxis()
    ax.set_xlabel("points")
    ax.set_title(title)
    return fig
