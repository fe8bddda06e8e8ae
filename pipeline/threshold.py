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
    """Data-chosen grade cut-offs: ``shares`` (best grade first) of the leads per grade."""
    cumulative = 0.0
    cuts = []
    names = list(shares)
    for name in names[:-1]:
        cumulative += shares[name]
        cuts.append({"grade": name, "min_points": int(np.quantile(total, 1 - cumulative,
                                                                  method="higher"))})
    cuts.append({"grade": names[-1], "min_points": int(np.min(total)) if len(total) else 0})
    # grades must be strictly decreasing in min_points; merge ties into the better grade
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
