"""From logistic-regression coefficients to an integer points table people can read.

Scaling (per factor f, level l, coefficient b[f, l], reference level r_f = f's most
common level):

* ``pdo`` (points to double the odds): ``factor = pdo / ln 2`` and
  ``points[f, l] = factor * (b[f, l] - b[f, r_f])``: the typical level scores 0, a level
  that doubles the odds scores ``pdo``, one that halves them ``-pdo``. With ``base_score`` and
  ``base_odds`` set, ``offset = base_score - factor * ln(base_odds)`` and the constant
  ``offset + factor * (intercept + sum_f b[f, r_f])`` is spread over the factors (largest
  remainder), so the total is the classic scorecard score ``offset + factor * log-odds``.
* ``minmax``: ``s = (high - low) / sum_f (max_l b[f, l] - min_l b[f, l])`` and
  ``points[f, l] = s * (b[f, l] - min_l b[f, l]) + low_f`` with the ``low_f`` integers
  summing to ``low``: the summed per-factor minima are exactly ``low`` and the maxima exactly
  ``high``, also after rounding (the per-factor maxima are rounded by largest remainder).

Rounding is its own step (:func:`round_points`) and
:func:`pipeline.model.calibration.rounding_fidelity` measures what it cost.
:func:`build_rules` turns the integer points per design slot into the points table's rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pipeline.model.encoding import MISSING, OTHER, FactorEncoder
from pipeline.model.fit import reference_slots
from pipeline.model.rules import FactorRules, special_key


@dataclass(frozen=True)
class ScaledPoints:
    """Unrounded points per design slot, and the scaling parameters used."""

    values: np.ndarray
    params: dict = field(default_factory=dict)


def _largest_remainder(target: int, shares: np.ndarray) -> np.ndarray:
    """Integers close to ``shares`` that sum exactly to ``target``."""
    floors = np.floor(shares).astype(np.int64)
    missing = int(target - floors.sum())
    order = np.argsort(-(shares - floors), kind="stable")
    if missing >= 0:
        floors[order[:missing]] += 1
    else:
        floors[order[::-1][: -missing]] -= 1
    return floors


def scale_points(coef: np.ndarray, intercept: float, encoder: FactorEncoder, *, scaling: str,
                 pdo: float, base_score: float | None, base_odds: float | None,
                 score_range: tuple[int, int]) -> ScaledPoints:
    """Coefficients per slot -> unrounded points per slot (see the module docstring)."""
    offsets = encoder.offsets_
    n_factors = len(encoder.factors_)
    values = np.zeros_like(coef, dtype=float)
    if scaling == "pdo":
        factor = pdo / math.log(2)
        refs = reference_slots(encoder)
        for j in range(n_factors):
            lo, hi = offsets[j], offsets[j + 1]
            values[lo:hi] = factor * (coef[lo:hi] - coef[refs[j]])
        log_odds_at_zero = intercept + float(sum(coef[r] for r in refs))
        params = {"method": "pdo", "pdo": pdo, "factor": factor,
                  "log_odds_at_zero": log_odds_at_zero, "base_score": base_score,
                  "base_odds": base_odds}
        if base_score is not None and base_odds is not None and n_factors:
            offset = base_score - factor * math.log(base_odds)
            constant = offset + factor * log_odds_at_zero
            shares = _largest_remainder(round(constant), np.full(n_factors, constant / n_factors))
            for j in range(n_factors):
                values[offsets[j]:offsets[j + 1]] += shares[j]
            params.update({"offset": offset, "base_constant": int(round(constant))})
        return ScaledPoints(values, params)
    low, high = score_range
    ranges = np.asarray([np.ptp(coef[offsets[j]:offsets[j + 1]]) if offsets[j + 1] > offsets[j]
                         else 0.0 for j in range(n_factors)])
    total_range = float(ranges.sum())
    s = (high - low) / total_range if total_range > 0 else 0.0
    low_shares = _largest_remainder(low, np.full(n_factors, low / max(n_factors, 1)))
    for j in range(n_factors):
        lo, hi = offsets[j], offsets[j + 1]
        values[lo:hi] = s * (coef[lo:hi] - coef[lo:hi].min()) + low_shares[j]
    params = {"method": "minmax", "range": [low, high], "factor": s,
              "low_shares": low_shares.tolist()}
    return ScaledPoints(values, params)


def round_points(scaled: ScaledPoints, encoder: FactorEncoder) -> np.ndarray:
    """Integer points per slot. For min-max scaling the per-factor maxima are rounded by
    largest remainder so that their sum stays exactly on the configured high end."""
    values = scaled.values
    rounded = np.rint(values).astype(np.int64)
    if scaled.params.get("method") != "minmax" or len(encoder.factors_) == 0:
        return rounded
    offsets = encoder.offsets_
    low_shares = np.asarray(scaled.params["low_shares"], dtype=np.int64)
    high = scaled.params["range"][1]
    spans = np.asarray([values[offsets[j]:offsets[j + 1]].max() - low_shares[j]
                        for j in range(len(encoder.factors_))])
    int_spans = _largest_remainder(int(high - low_shares.sum()), spans)
    for j in range(len(encoder.factors_)):
        lo, hi = offsets[j], offsets[j + 1]
        unrounded = values[lo:hi]
        block = np.clip(np.rint(unrounded), low_shares[j], low_shares[j] + int_spans[j])
        # every level tied at the top (bottom) gets the factor's maximum (minimum), so equal
        # coefficients never get different points
        block[unrounded == unrounded.max()] = low_shares[j] + int_spans[j]
        block[unrounded == unrounded.min()] = low_shares[j]
        rounded[lo:hi] = block.astype(np.int64)
    return rounded


def build_rules(encoder: FactorEncoder, slot_points: np.ndarray, *, groups: dict[str, str],
                unseen_points: int, missing_values: list[str], scaling: dict) -> list[FactorRules]:
    """One :class:`FactorRules` per factor; training levels listed explicitly (rare ones with
    the ``(other)`` points) so every scorer and export matches exact strings."""
    method = scaling.get("method")
    factors = []
    for j, factor in enumerate(encoder.factors_):
        lo, hi = encoder.offsets_[j], encoder.offsets_[j + 1]
        pts = [int(p) for p in slot_points[lo:hi]]
        by_slot = dict(zip(factor.slots, pts, strict=True))
        reference = by_slot[factor.slots[int(np.argmax(factor.counts))]]
        baseline = min(pts) if method == "minmax" else reference
        unseen = int(baseline + unseen_points)
        missing = by_slot.get(MISSING, unseen)
        group = groups.get(factor.name, "FIT")
        if factor.kind == "numeric":
            # slots: bins, then special values (matched before the bins), then missing; a bin
            # no training lead fell in (all were special or missing) scores as unseen
            bins = [by_slot[s] if c else unseen
                    for s, c in zip(factor.slots[:factor.n_bins], factor.counts, strict=False)]
            special = {special_key(v): pts[factor.n_bins + k]
                       for k, v in enumerate(factor.special)}
            factors.append(FactorRules(factor.name, group, "numeric", edges=list(factor.edges),
                                       bin_points=bins, missing_points=missing,
                                       unseen_points=unseen, special_points=special))
            continue
        levels = {s: by_slot[s] for s in factor.slots if s not in (OTHER, MISSING)}
        if OTHER in by_slot:
            levels.update({lvl: by_slot[OTHER] for lvl in factor.rare_levels})
        factors.append(FactorRules(factor.name, group, "categorical", levels=levels,
                                   missing_points=missing, unseen_points=unseen))
    return factors
