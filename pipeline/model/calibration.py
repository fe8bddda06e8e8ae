"""What a points total means and what the integer points measure: the probability of a
total (a one-variable logistic regression of the outcome on the integer total,
``prob_intercept + prob_slope * T``), what rounding cost (:func:`rounding_fidelity`),
observed against predicted conversion per score band (:func:`calibration_table`), AUC and KS.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from pipeline.model.rules import PointsRules


def fit_probability_map(total: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``P(won | total)`` as a one-variable logistic regression on the integer total."""
    if np.ptp(total) == 0:
        rate = float(np.clip(np.mean(y), 1e-6, 1 - 1e-6))
        return math.log(rate / (1 - rate)), 0.0
    # the same likelihood from each distinct (total, outcome) pair, weighted by its leads:
    # a few hundred rows instead of one per lead
    totals, codes = np.unique(np.asarray(total), return_inverse=True)
    won = np.bincount(codes, weights=np.asarray(y, dtype=float), minlength=len(totals))
    leads = np.bincount(codes, minlength=len(totals)).astype(float)
    x = np.concatenate([totals, totals]).astype(float).reshape(-1, 1)
    outcome = np.repeat([1, 0], len(totals))
    weight = np.concatenate([won, leads - won])
    model = LogisticRegression(C=1e6, max_iter=1000, tol=1e-8)
    model.fit(x[weight > 0], outcome[weight > 0], sample_weight=weight[weight > 0])
    return float(model.intercept_[0]), float(model.coef_[0, 0])


def ks_statistic(y: np.ndarray, score: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between the score distributions of won and lost leads."""
    y = np.asarray(y, dtype=int)
    if y.min() == y.max():
        return float("nan")
    return float(stats.ks_2samp(score[y == 1], score[y == 0]).statistic)


def safe_auc(y: np.ndarray, score: np.ndarray) -> float:
    y = np.asarray(y, dtype=int)
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def rounding_fidelity(y: np.ndarray, unrounded: np.ndarray, rounded: np.ndarray,
                      threshold: float) -> dict[str, float]:
    """What rounding cost: AUC, KS, Spearman before/after, largest per-lead change, and
    how many leads cross the SDR-ready threshold because of rounding."""
    rho = stats.spearmanr(unrounded, rounded).statistic if np.ptp(rounded) > 0 else float("nan")
    auc_before, auc_after = safe_auc(y, unrounded), safe_auc(y, rounded)
    crossed = int(((unrounded >= threshold) != (rounded >= threshold)).sum())
    return {
        "auc_unrounded": auc_before, "auc_rounded": auc_after,
        "rounding_auc_loss": auc_before - auc_after,
        "ks_unrounded": ks_statistic(y, unrounded), "ks_rounded": ks_statistic(y, rounded),
        "spearman": float(rho),
        "max_abs_diff_points": float(np.max(np.abs(unrounded - rounded))) if len(y) else 0.0,
        "threshold_crossings": crossed,
    }


def calibration_table(y: np.ndarray, total: np.ndarray, rules: PointsRules, *, bands: int = 10
                      ) -> pd.DataFrame:
    """Observed conversion per score band (Wilson 95%) against the predicted probability.

    Columns: band, points_low, points_high, leads, conversions, observed_rate, ci_low,
    ci_high, predicted_rate.
    """
    y = np.asarray(y, dtype=int)
    edges = np.unique(np.quantile(total, np.linspace(0, 1, bands + 1)))
    idx = np.clip(np.searchsorted(edges, total, side="right") - 1, 0, max(len(edges) - 2, 0))
    rows = []
    for b in np.unique(idx):
        mask = idx == b
        n, k = int(mask.sum()), int(y[mask].sum())
        low, high = wilson_interval(k, n)
        probs = _once_per_value(rules.probability, total[mask])
        rows.append({"band": int(b) + 1, "points_low": int(total[mask].min()),
                     "points_high": int(total[mask].max()), "leads": n, "conversions": k,
                     "observed_rate": k / n, "ci_low": low, "ci_high": high,
                     "predicted_rate": float(np.mean(probs))})
    return pd.DataFrame(rows)


def _once_per_value(fn: Callable[[float], float], values: np.ndarray) -> np.ndarray:
    """``[fn(v) for v in values]`` as an array, calling ``fn`` once per distinct value (point
    totals repeat a lot)."""
    uniques, inverse = np.unique(values, return_inverse=True)
    return np.array([fn(u) for u in uniques], dtype=float)[inverse]


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
