"""The SDR-ready threshold, optional grades, and the FIT x PAIN quadrant."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen SDR-ready score and what it means in volume and close rate."""

    threshold: int
    method: str  # "target_rate" | "capacity" | "fallback"
    sdr_ready_share: float
    sdr_ready_per_week: float | None
    expected_close_rate: float
    fit_only_share: float
    note: str
    tradeoff: pd.DataFrame  # points, leads_at_or_above, share, close_rate, per_week


def tradeoff_table(total: np.ndarray, y: np.ndarray, *, weeks: float | None) -> pd.DataFrame:
    """For every candidate score: leads at or above it, their close rate and weekly volume."""
    total = np.asarray(total)
    y = np.asarray(y, dtype=int)
    scores = np.unique(total)
    order = np.argsort(total, kind="stable")
    sorted_total, sorted_y = total[order], y[order]
    suffix_wins = np.concatenate([np.cumsum(sorted_y[::-1])[::-1], [0]])
    starts = np.searchsorted(sorted_total, scores, side="left")
    at_or_above = len(total) - starts
    wins = suffix_wins[starts]
    table = pd.DataFrame({
        "points": scores.astype(int),
        "leads_at_or_above": at_or_above.astype(int),
        "share": at_or_above / max(len(total), 1),
        "close_rate": wins / np.maximum(at_or_above, 1),
    })
    table["per_week"] = table["leads_at_or_above"] / weeks if weeks else np.nan
    return table


def choose_threshold(total: np.ndarray, fit: np.ndarray, y: np.ndarray, *,
                     target_rate: tuple[float, float], capacity_per_week: float | None = None,
                     weeks: float | None = None) -> ThresholdChoice:
    """Lowest score whose leads at or above it close within the target band; or, with a
    weekly capacity, the lowest score that keeps the SDR-ready volume within capacity."""
    table = tradeoff_table(total, y, weeks=weeks)
    low, high = target_rate
    note = ""
    if capacity_per_week is not None:
        if not weeks:
            raise ValueError("capacity_per_week needs lead creation dates (data.created_at_column)")
        ok = table[table["per_week"] <= capacity_per_week]
        row = ok.iloc[0] if not ok.empty else table.iloc[-1]
        method = "capacity"
        note = f"at most {capacity_per_week:g} SDR-ready leads per week"
    else:
        inside = table[(table["close_rate"] >= low) & (table["close_rate"] <= high)]
        if not inside.empty:
            row, method = inside.iloc[0], "target_rate"
            note = f"lowest score whose leads at or above it close at {low:.0%}-{high:.0%}"
        else:
            above = table[table["close_rate"] >= low]
            row = above.iloc[0] if not above.empty else table.iloc[-1]
            method = "fallback"
            note = (f"no score gives a close rate within {low:.0%}-{high:.0%} "
                    f"(overall rate {np.mean(y):.1%}); took the lowest score closing at "
                    f">= {low:.0%}, or the top score")
    threshold = int(row["points"])
    fit_only = float(np.mean(np.asarray(fit) >= threshold)) if len(fit) else 0.0
    return ThresholdChoice(
        threshold=threshold, method=method, sdr_ready_share=float(row["share"]),
        sdr_ready_per_week=float(row["per_week"]) if weeks else None,
        expected_close_rate=float(row["close_rate"]), fit_only_share=fit_only, note=note,
        tradeoff=table,
    )


def grade_cutoffs(total: np.ndarray, shares: dict[str, float]) -> list[dict]:
    """Data-chosen grade cut-offs: ``shares`` (best grade first) of the leads per grade.

    Each grade but the last starts at the total whose share of leads at or above it is
    closest to the grade's cumulative share (on a tie, the higher total); the last grade
    starts at the lowest total, so every lead gets a grade. A block of leads with the same
    total thus goes to the grade whose share it matches best, not always to the better one
    (half the leads at 0 points make the bottom grade, not the top). A grade that would
    start at or above the better grade's cut-off is merged into it.
    """
    total = np.asarray(total)
    names = list(shares)
    if len(total) == 0:
        return [{"grade": names[-1], "min_points": 0}]
    values, counts = np.unique(total, return_counts=True)
    # candidate cut-offs: every observed total, and one above them all (an empty grade)
    cut_offs = np.append(values, values[-1] + 1)
    share_at_or_above = np.append(np.cumsum(counts[::-1])[::-1], 0) / len(total)
    cuts, cumulative = [], 0.0
    for name in names[:-1]:
        cumulative += shares[name]
        distance = np.round(np.abs(share_at_or_above - cumulative), 12)
        best = int(np.flatnonzero(distance == distance.min())[-1])  # tie: the higher total
        cuts.append({"grade": name, "min_points": int(cut_offs[best])})
    cuts.append({"grade": names[-1], "min_points": int(values[0])})
    out: list[dict] = []
    for cut in cuts:
        if out and cut["min_points"] >= out[-1]["min_points"]:
            continue
        out.append(cut)
    return out


@dataclass(frozen=True)
class Quadrant:
    """FIT x PAIN: counts and conversion per cell, and the seed's 5% warning."""

    table: pd.DataFrame  # fit, pain, leads, conversions, conversion_rate, sdr_ready
    fit_cut: int
    pain_cut: int
    bad_fit_low_pain_sdr_share: float
    warning: str | None


def fit_pain_quadrant(fit: np.ndarray, pain: np.ndarray, y: np.ndarray, sdr_ready: np.ndarray,
                      *, fit_quantile: float = 0.5, pain_quantile: float = 0.5) -> Quadrant:
    """Good/bad FIT x high/low PAIN (cut at the given quantiles of the training leads)."""
    fit, pain = np.asarray(fit), np.asarray(pain)
    y, sdr_ready = np.asarray(y, dtype=int), np.asarray(sdr_ready, dtype=bool)
    fit_cut = int(np.quantile(fit, fit_quantile, method="higher"))
    pain_cut = int(np.quantile(pain, pain_quantile, method="higher"))
    good_fit, high_pain = fit >= fit_cut, pain >= pain_cut
    rows = []
    for fit_label, fmask in (("good FIT", good_fit), ("bad FIT", ~good_fit)):
        for pain_label, pmask in (("high PAIN", high_pain), ("low PAIN", ~high_pain)):
            mask = fmask & pmask
            n = int(mask.sum())
            rows.append({"fit": fit_label, "pain": pain_label, "leads": n,
                         "conversions": int(y[mask].sum()),
                         "conversion_rate": float(y[mask].mean()) if n else float("nan"),
                         "sdr_ready": int((mask & sdr_ready).sum())})
    table = pd.DataFrame(rows)
    bad_low = ~good_fit & ~high_pain
    n_sdr = int(sdr_ready.sum())
    share = float((bad_low & sdr_ready).sum() / n_sdr) if n_sdr else 0.0
    warning = None
    if share > 0.05:
        warning = (f"{share:.1%} of SDR-ready leads are bad FIT + low PAIN (more than 5%): "
                   "the scoring needs adjusting")
    return Quadrant(table, fit_cut, pain_cut, share, warning)
