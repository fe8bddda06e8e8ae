"""The report's first screen, the decision, and the evidence per factor.

* :func:`summary_section`: the SDR-ready threshold, the volume it sends to SDRs (per week, or
  a share of leads without creation dates) and its close rate, the holdout AUC, the factors
  that matter most (their points range and strongest levels) and every warning, in one
  screen at the top of the report;
* :func:`factor_section`: per kept factor its lift chart beside its points-per-level chart,
  then the weight of evidence and information value of every bin.

Pure: a training result in, :class:`pipeline.reports.page.Section` out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipeline.analysis.association_measures import woe_from_counts
from pipeline.config import Config
from pipeline.inputs.features import FeatureSet
from pipeline.model.train import TrainResult
from pipeline.reports.page import Section, figure_png
from pipeline.reports.plots_lift import lift_chart, points_chart

TOP_FACTORS = 5
UNSEEN = "(unseen)"


def factor_importance(points_table: pd.DataFrame) -> pd.DataFrame:
    """Per factor, most important first: ``factor, group, points_range`` (highest minus lowest
    points among levels with training leads), ``best`` and ``worst`` (``level (+n)``) and
    ``levels``. Ties keep table order."""
    rows = []
    seen = points_table[(points_table["level"].astype(str) != UNSEEN)
                        & (points_table["leads"] > 0)]
    for factor, levels in seen.groupby("factor", sort=False):
        points = levels["points"].to_numpy(dtype=int)
        hi, lo = int(np.argmax(points)), int(np.argmin(points))
        rows.append({"factor": factor, "group": levels["group"].iloc[0],
                     "points_range": int(points.max() - points.min()),
                     "best": f"{levels['level'].iloc[hi]} ({points[hi]:+d})",
                     "worst": f"{levels['level'].iloc[lo]} ({points[lo]:+d})",
                     "levels": len(levels)})
    frame = pd.DataFrame(rows, columns=["factor", "group", "points_range", "best", "worst",
                                        "levels"])
    return frame.sort_values("points_range", ascending=False, kind="stable") \
        .reset_index(drop=True)


def woe_iv(lift: pd.DataFrame, attributes: list[str] | None = None) -> pd.DataFrame:
    """Weight of evidence and information value per bin (lift table levels, training leads):
    ``attribute, level, leads, won, woe, iv, attribute_iv`` (see
    :func:`pipeline.analysis.associations.woe_table`; a zero cell counts as 0.5)."""
    parts = []
    names = attributes if attributes is not None else list(pd.unique(lift["attribute"]))
    for attribute in names:
        rows = lift[lift["attribute"] == attribute]
        won = rows["conversions"].to_numpy(dtype=np.int64)
        leads = rows["leads"].to_numpy(dtype=np.int64)
        if len(rows) == 0 or won.sum() == 0 or won.sum() == leads.sum():
            continue
        table = woe_from_counts(rows["level"].astype(str).to_numpy(), leads, won)
        parts.append(pd.DataFrame({
            "attribute": attribute, "level": table["level"], "leads": table["leads"],
            "won": table["events"], "woe": table["woe"].round(4), "iv": table["iv"].round(4),
            "attribute_iv": round(float(table["iv"].sum()), 4)}))
    columns = ["attribute", "level", "leads", "won", "woe", "iv", "attribute_iv"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def summary_warnings(result: TrainResult, features: FeatureSet) -> list[str]:
    """Everything a reader must know before acting on the table: no signal, the quadrant's
    alarm, leaky columns, a FIT-only share far above the seed's 5%, the training notes."""
    out = []
    if result.no_signal:
        out.append("No signal: nothing beats the base rate out of sample; the points table is "
                   "empty and no lead is SDR-ready.")
    if result.quadrant is not None and result.quadrant.warning:
        out.append(result.quadrant.warning)
    selection = result.analysis.selection
    leaky = selection[selection["reason"].str.startswith("leak")]
    if len(leaky):
        out.append("Leaky columns excluded: " + ", ".join(map(str, leaky["column"])) + ".")
    t = result.threshold
    if t is not None and not result.no_signal and t.fit_only_share > 0.10:
        out.append(f"{t.fit_only_share:.1%} of leads reach SDR-ready on FIT points alone "
                   "(the seed's guide: about 5%): behaviour hardly matters at this threshold.")
    if "created_at" not in features.frame.columns:
        out.append("No lead creation dates: SDR-ready volume is a share of leads, not per "
                   "week, and the holdout is a random sample, not the latest leads.")
    notes = [n for n in result.notes if not n.startswith("no signal")]
    kinds: dict[str, int] = {}
    for note in notes:
        kind = note.split(":", 1)[0] if ":" in note[:40] else "other"
        kinds[kind] = kinds.get(kind, 0) + 1
    if len(notes) <= 2:
        out += notes
    else:
        out.append(f"{len(notes)} training notes (" + ", ".join(
            f"{n} {kind}" for kind, n in kinds.items()) + "): see the Notes section.")
    return out


def summary_section(result: TrainResult, features: FeatureSet, config: Config) -> Section:
    """The decision in one screen (see the module docstring)."""
    frame = features.frame
    overall = float(frame["converted"].mean())
    warnings = summary_warnings(result, features) or ["None."]
    if result.no_signal or result.threshold is None:
        return Section("Decision", [
            f"No points table to use: nothing beats the base rate ({overall:.1%}) out of "
            "sample. Keep the current routing; see the notes below."],
            warnings=warnings, key="summary")
    t, m = result.threshold, result.metrics
    weekly = t.sdr_ready_per_week is not None
    volume = f"{t.sdr_ready_per_week:,.1f} / week" if weekly else f"{t.sdr_ready_share:.1%}"
    volume_detail = (f"{t.sdr_ready_share:.1%} of leads" if weekly
                     else "of leads (no creation dates: no weekly volume)")
    ratio = t.expected_close_rate / overall if overall else float("nan")
    top = factor_importance(result.points_table).head(TOP_FACTORS)
    kept = result.analysis.kept
    cards = [
        ("SDR-ready threshold", f"{t.threshold} points", t.method.replace("_", " ")),
        ("SDR-ready volume", volume, volume_detail),
        ("Close rate when SDR-ready", f"{t.expected_close_rate:.1%}",
         f"{ratio:.1f}x the overall {overall:.1%}"),
        ("Holdout AUC", f"{m['holdout_auc']:.3f}",
         f"KS {m['holdout_ks']:.2f}, Brier {m['holdout_brier']:.3f}"),
        ("Factors", f"{len(kept)}", f"of {len(result.analysis.selection)} candidate columns"),
    ]
    names = ", ".join(top["factor"].astype(str).head(3))
    text = [f"Send leads with {t.threshold} points or more to SDRs: "
            + (f"{volume} ({t.sdr_ready_share:.1%} of leads)" if weekly
               else f"{t.sdr_ready_share:.1%} of leads")
            + f" closing at {t.expected_close_rate:.1%}. "
            f"The factors that move the score most: {names}."]
    iv = woe_iv(result.analysis.lift, list(top["factor"]))
    top = top.assign(iv=[float(iv.loc[iv["attribute"] == f, "attribute_iv"].iloc[0])
                         if (iv["attribute"] == f).any() else float("nan")
                         for f in top["factor"]])
    return Section("Decision", text, tables=[("The factors that matter most (points range = "
                                              "highest minus lowest level)", top)],
                   cards=cards, warnings=warnings, key="summary")


def factor_section(result: TrainResult, rate: float,
                   rendered: Mapping[str, bytes] | None = None) -> Section:
    """Per kept factor: its lift chart beside its points per level, then WoE/IV per bin."""
    from pipeline.reports.plots_lift import MAX_CHART_LEVELS

    lift, kept = result.analysis.lift, result.analysis.kept
    rendered = rendered or {}
    pt = result.points_table
    pairs, cut = [], []
    for a in kept:
        rows = lift[lift["attribute"] == a]
        if not len(rows):
            continue
        left = (f"Lift: {a}", rendered.get(a) or figure_png(lift_chart(rows, rate)))
        points = pt[pt["factor"] == a]
        if len(rows) > MAX_CHART_LEVELS:
            cut.append(f"{a} ({len(rows)} levels)")
        if len(points):
            order = list(rows["level"].astype(str))
            right = (f"Points: {a}", figure_png(points_chart(points, order)))
            pairs.append((left, right))
        else:
            pairs.append((left, (f"Points: {a} (no points: not in the table)",
                                 figure_png(points_chart(pd.DataFrame(
                                     {"factor": [a], "level": ["(none)"], "points": [0],
                                      "leads": [0]}))))))
    if not pairs:
        return Section("Lift, points and WoE per kept factor",
                       ["No factor was kept: there is no lift chart to show."], key="lift")
    text = [f"Left: conversion rate per level with 95% Wilson intervals; the dashed line is the "
            f"overall rate ({rate:.1%}). Right: the points each level adds or takes away. "
            "Below: weight of evidence (ln of the level's share of won over its share of lost "
            "leads) and information value per bin, training leads."]
    if cut:
        text.append(f"Charts show the {MAX_CHART_LEVELS} levels with the most leads for "
                    + ", ".join(cut) + "; the tables list every level.")
    woe = woe_iv(lift, [a for a in kept if (lift["attribute"] == a).any()])
    return Section("Lift, points and WoE per kept factor", text, pairs=pairs,
                   tables=[("Weight of evidence and information value per bin", woe)],
                   key="lift")
