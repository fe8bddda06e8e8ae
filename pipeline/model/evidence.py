"""The lift evidence behind the trust constraints, per design slot: training leads,
conversions, the shrunk rate and the BH-adjusted level-vs-rest p-value, computed from the
design with the lift table's formulas (:mod:`pipeline.analysis.lift_stats`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipeline.analysis.lift_stats import (
    benjamini_hochberg,
    beta_prior,
    level_vs_rest_p_values,
    shrunk_rates,
)
from pipeline.model.encoding import FactorEncoder


@dataclass(frozen=True)
class Evidence:
    """Per design slot: training leads, conversions, shrunk rate (the lift table's
    beta-binomial posterior mean), BH-adjusted level-vs-rest p-value and the lift's side
    (+1 above the overall rate, -1 below, 0 equal)."""

    leads: np.ndarray
    conversions: np.ndarray
    shrunk: np.ndarray
    p_adjusted: np.ndarray
    side: np.ndarray
    overall: float


def level_evidence(encoder: FactorEncoder, design: sp.spmatrix, y: np.ndarray,
                   lift: pd.DataFrame | None = None) -> Evidence:
    """The lift table's statistics of every design slot, computed from the design.

    The same formulas as :func:`pipeline.analysis.lift.lift_table` (shrinkage prior per factor,
    Pearson / Fisher level-vs-rest test). With ``lift`` (the analysis' lift table: columns
    ``attribute, level, p_adjusted``) each slot takes that table's BH-adjusted p-value (a
    level it lacks: 1); without, the BH adjustment runs over the kept factors' levels, so
    at least as many levels count as significant as in a full lift table (fewer tests, a
    smaller adjustment)."""
    y = np.asarray(y, dtype=float)
    leads = np.asarray(design.sum(axis=0)).ravel().astype(float)
    conv = np.asarray(design.T @ y).ravel().astype(float)
    overall = float(y.mean())
    shrunk = np.empty_like(leads)
    for j in range(len(encoder.factors_)):
        lo, hi = encoder.offsets_[j], encoder.offsets_[j + 1]
        a, b, _ = beta_prior(conv[lo:hi], leads[lo:hi], overall_rate=overall)
        shrunk[lo:hi] = shrunk_rates(conv[lo:hi], leads[lo:hi], a, b, prior_mean=overall)
    p = level_vs_rest_p_values(conv, leads, total_conversions=int(round(y.sum())),
                               total_leads=len(y))
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(leads > 0, conv / np.maximum(leads, 1), overall)
    adjusted = benjamini_hochberg(p)
    if lift is not None:
        table = {(str(a), str(lv)): float(q) for a, lv, q in
                 zip(lift["attribute"], lift["level"], lift["p_adjusted"], strict=True)}
        adjusted = np.array([table.get((f.name, slot), 1.0) for f in encoder.factors_
                             for slot in f.slots])
        adjusted = np.where(np.isnan(adjusted), 1.0, adjusted)
    return Evidence(leads, conv, shrunk, adjusted, np.sign(rate - overall), overall)
