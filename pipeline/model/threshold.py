"""The SDR-ready threshold, optional grades, and the FIT x PAIN quadrant."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen SDR-ready score and what it means in volume and close rate."""

    threshold: int
    method: str  # "target_rate" | "min_lift" | "top_score" | "capacity" | "no_signal"
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


def required_close_rate(base_rate: float, min_lift: float) -> float:
    """The close rate SDR-ready leads must reach when the target band cannot be used:
    ``min_lift`` times the base rate, or halfway from the base rate to 100% when that is
    lower (at a 63% base rate no set of leads closes at twice it)."""
    return min(min_lift * base_rate, (1.0 + base_rate) / 2)


def choose_threshold(total: np.ndarray, fit: np.ndarray, y: np.ndarray, *,
                     target_rate: tuple[float, float], capacity_per_week: float | None = None,
                     weeks: float | None = None, min_lift: float = 2.0) -> ThresholdChoice:
    """The SDR-ready score: the lowest score whose leads at or above it close within the
    target band, when the band lies above the base rate and that score selects at most half
    of the leads; otherwise the lowest score selecting at most half of the leads whose leads
    close at :func:`required_close_rate` or better (method ``min_lift``); if none does, the
    top score (method ``top_score``). With a weekly capacity: the lowest score that keeps
    the SDR-ready volume within capacity. Whenever the band is not used, the note says why:
    a threshold never makes every lead SDR-ready silently."""
    table = tradeoff_table(total, y, weeks=weeks)
    low, high = target_rate
    base = float(np.mean(y)) if len(y) else 0.0
    at_most_half = table[table["share"] <= 0.5]
    if capacity_per_week is not None:
        if not weeks:
            raise ValueError("capacity_per_week needs lead creation dates (data.created_at_column)")
        ok = table[table["per_week"] <= capacity_per_week]
        row = ok.iloc[0] if not ok.empty else table.iloc[-1]
        method = "capacity"
        note = f"at most {capacity_per_week:g} SDR-ready leads per week"
    else:
        inside = at_most_half[(at_most_half["close_rate"] >= low)
                              & (at_most_half["close_rate"] <= high)]
        if low > base and not inside.empty:
            row, method = inside.iloc[0], "target_rate"
            note = f"lowest score whose leads at or above it close at {low:.0%}-{high:.0%}"
        else:
            why = (f"the target band {low:.0%}-{high:.0%} does not lie above the base rate "
                   f"{base:.1%}" if low <= base else
                   f"no score selecting at most half of the leads closes at {low:.0%}-{high:.0%}")
            required = required_close_rate(base, min_lift)
            good = at_most_half[at_most_half["close_rate"] >= required]
            if not good.empty:
                row, method = good.iloc[0], "min_lift"
                note = (f"{why}: took the lowest score whose leads close at >= {required:.1%} "
                        f"({min_lift:g}x the base rate, at most halfway to 100%) and that "
                        f"selects at most half of the leads (threshold.min_lift)")
            else:
                row, method = table.iloc[-1], "top_score"
                note = (f"{why}, and no score selecting at most half of the leads closes at "
                        f">= {required:.1%}: took the top score")
    threshold = int(row["points"])
    fit_only = float(np.mean(np.asarray(fit) >= threshold)) if len(fit) else 0.0
    return ThresholdChoice(
        threshold=threshold, method=method, sdr_ready_share=float(row["share"]),
        sdr_ready_per_week=float(row["per_week"]) if weeks else None,
        expected_close_rate=float(row["close_rate"]), fit_only_share=fit_only, note=note,
        tradeoff=table,
    )


def no_signal_threshold(total: np.ndarray, y: np.ndarray, *, weeks: float | None = None
                        ) -> ThresholdChoice:
    """No lead is SDR-ready when the model does not beat the base rate: the threshold is one
    point above the highest score."""
    total = np.asarray(total)
    top = int(total.max()) + 1 if len(total) else 1
    return ThresholdChoice(
        threshold=top, method="no_signal", sdr_ready_share=0.0,
        sdr_ready_per_week=0.0 if weeks else None, expected_close_rate=float("nan"),
        fit_only_share=0.0, note="no signal: no lead is SDR-ready",
        tradeoff=tradeoff_table(total, y, weeks=weeks))


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
