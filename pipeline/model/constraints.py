"""Points people trust: the regularised logistic regression refitted under constraints.

The free fit (:func:`pipeline.model.fit.fit_regularised`) picks ``C`` by CV. At that ``C`` the
same objective, the L2-penalised log loss

    f(theta, c) = sum_i [log(1 + exp(eta_i)) - y_i eta_i] + ||b||^2 / (2 C),
    eta = X b + c,  b = M theta,

is minimised again by :func:`solve_bounded` (``scipy.optimize.minimize``, L-BFGS-B, analytic
gradient ``M' X' (p - y) + M' b / C`` on the sparse design), with ``b`` (one coefficient per
design slot, exactly the scikit-learn coefficients) written as a linear map ``M`` of
parameters that carry *box bounds*. Per factor, with ``r`` its reference (most common) slot:

* ``b_r = a`` (free anchor); every other level ``b_s = a + delta_s`` where ``delta_s`` is the
  level's log odds ratio against the reference (its points are ``pdo / ln 2 * delta_s``);
* **monotone trends** (numeric bins backed by at least ``THIN_LEADS`` leads; thinner bins
  are levels of their own, as below): thermometer coding, ``b_k = b_{k-1} + d_k`` with
  ``d_k >= 0`` (ascending), ``<= 0`` (descending), or two monotone pieces around a split bin
  ``s`` (peak: ``d_k >= 0`` for ``k <= s``, ``<= 0`` after; valley: the reverse). The trend
  ``auto`` is read off the lift evidence (:func:`choose_trend`: the best-fitting of the four
  shapes on the shrunk rates that sign consistency can live with, else each step the way
  the shrunk rates go); special and ``(missing)`` levels stay free;
* **small levels**: a level with fewer than ``min_leads`` training leads has no parameter of
  its own (``b_s = a``: 0 points relative to the reference), except a bin of a monotone
  trend, which stays in its trend; any level with ``n`` below ``THIN_LEADS = 30`` leads is
  bounded ``|b_s - b_r| <= ln 2 * n / 60``: it never moves the odds by more than ``sqrt 2``
  against the reference (under 10 points at pdo 20);
* **locked points**: ``delta_s`` fixed at ``points * ln 2 / pdo`` (lower = upper bound): an
  offset; the other coefficients move to compensate;
* **sign consistency** (:func:`fit_trusted`): a level whose own lift is significant
  (Benjamini-Hochberg adjusted level-vs-rest p below ``alpha``) must sit on its lift's side
  of its factor's lead-weighted average ``t_f = sum_s n_s delta_s / N``. Offending levels get
  the bound ``delta_s >= t_f + margin`` (or ``<= t_f - margin``) at the current ``t_f`` and the
  fit is repeated until no level offends (``t_f`` moves a little with each bound, so a few
  rounds; ``margin``, one point, keeps rounding from undoing it). Levels of a monotone bin
  block follow the trend instead.

With no constraint the parametrisation spans every ``b`` and the optimum is the free fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression

from pipeline.analysis.lift import (
    benjamini_hochberg,
    beta_prior,
    level_vs_rest_p_values,
    shrunk_rates,
)
from pipeline.model.encoding import FactorEncoder

TRENDS = ("ascending", "descending", "peak", "valley", "auto", "free")
#: levels with fewer leads than this (and at least min_leads) have capped points
THIN_LEADS = 30
#: a shape with a turn (peak / valley) is chosen by ``auto`` only when the shrunk rates turn
#: and it leaves at most this share of the best monotone shape's weighted squared error
#: (1: whenever it fits better)
TURN_SHARE = 1.0


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


# ---------------------------------------------------------------------------- trends


def _iso_sse(values: np.ndarray, weights: np.ndarray, increasing: bool) -> float:
    """Weighted squared error of the isotonic (monotone) least-squares fit."""
    if len(values) < 2:
        return 0.0
    fit = IsotonicRegression(increasing=increasing).fit_transform(
        np.arange(len(values)), values, sample_weight=weights)
    return float(np.sum(weights * (values - fit) ** 2))


def direction_changes(values: np.ndarray, tol: float = 1e-9) -> int:
    """How often a sequence turns (up then down, or down then up); flat steps are skipped."""
    steps = np.diff(np.asarray(values, dtype=float))
    signs = np.sign(steps[np.abs(steps) > tol])
    return int(np.count_nonzero(signs[1:] != signs[:-1]))


def _shape_steps(shape: str, split: int | None, k: int) -> list[int]:
    """Sign of each step ``d_1 .. d_{k-1}`` of ``shape`` (+1 up, -1 down)."""
    if shape == "steps":
        return list(split)
    return [1 if _step_bounds(shape, split, i)[0] == 0.0 else -1 for i in range(1, k)]


def _forced_below(steps: list[int], i: int, j: int) -> bool:
    """Whether bin ``j`` is forced at or below bin ``i`` by the step signs."""
    if j > i:
        return all(d < 0 for d in steps[i:j])
    return all(d > 0 for d in steps[j:i])


def _feasible(steps: list[int], sides: np.ndarray) -> bool:
    """Whether bins whose steps have these signs can put every significant bin (``sides``:
    +1 above, -1 below, 0 not significant) on its side of the bins' average: no bin held
    above is forced at or below a bin held below, no bin held below is forced to be the
    highest bin, none held above the lowest."""
    k = len(sides)
    for i in np.flatnonzero(sides != 0):
        others = [j for j in range(k) if j != i]
        if sides[i] < 0 and all(_forced_below(steps, i, j) for j in others):
            return False
        if sides[i] > 0 and all(_forced_below(steps, j, i) for j in others):
            return False
        for j in others:
            if sides[i] > 0 > sides[j] and _forced_below(steps, j, i):
                return False
    return True


def choose_trend(shrunk: np.ndarray, leads: np.ndarray, requested: str,
                 sides: np.ndarray | None = None) -> tuple[str, object]:
    """``(shape, split)`` of the bins from their shrunk rates ``shrunk`` and ``leads``.

    On ``v = logit(shrunk)`` with weights ``leads``: ascending vs descending by the sign of
    the weighted covariance of ``v`` with the bin order (ties: ascending); peak / valley
    at the split ``s`` (1 .. B-2, the turning bin) minimising the weighted squared error of
    an increasing (decreasing) isotonic fit on bins ``0..s`` plus a decreasing (increasing)
    one on bins ``s..B-1``. ``auto`` takes the turning shape only when the shrunk rates
    themselves turn and it leaves at most ``TURN_SHARE`` of the monotone shape's error.
    With ``sides`` (+1 / -1 for bins whose lift is significantly above / below, else 0)
    ``auto`` skips shapes that would force a bin held above at or below one held below
    (sign consistency could not hold), taking the best-fitting shape left; when none is
    left, ``("steps", signs)``: each step goes the way the shrunk rates go (a flat step the
    way of the one before), so the points turn where the lift turns and no more often.
    An explicit ``peak`` / ``valley`` only gets its split from here. ``free`` and a single
    bin: ``("free", None)``.
    """
    k = len(shrunk)
    if requested == "free" or k < 2:
        return "free", None
    v = np.log(np.clip(shrunk, 1e-9, 1 - 1e-9) / np.clip(1 - shrunk, 1e-9, 1))
    w = np.maximum(np.asarray(leads, dtype=float), 1e-9)
    order = np.arange(k, dtype=float)
    cov = float(np.sum(w * (order - np.average(order, weights=w)) * (v - np.average(v, weights=w))))
    monotone = "descending" if cov < 0 else "ascending"
    if requested in ("ascending", "descending"):
        return requested, None
    best: dict[str, tuple[float, int | None]] = {}
    turning: list[tuple[float, str, int]] = []
    for shape, first_up in (("peak", True), ("valley", False)):
        for s in range(1, k - 1):
            sse = (_iso_sse(v[:s + 1], w[:s + 1], first_up)
                   + _iso_sse(v[s:], w[s:], not first_up))
            turning.append((sse, shape, s))
            if shape not in best or sse < best[shape][0]:
                best[shape] = (sse, s)
    if requested in ("peak", "valley"):
        if requested not in best:  # two bins: a turn needs three
            return monotone, None
        return requested, best[requested][1]
    sides = np.zeros(k) if sides is None else np.asarray(sides, dtype=float)
    other = "ascending" if monotone == "descending" else "descending"
    candidates = [(_iso_sse(v, w, monotone == "ascending"), monotone, None),
                  (_iso_sse(v, w, other == "ascending"), other, None)]
    if direction_changes(shrunk) > 0:
        candidates += turning
    mono_sse = candidates[0][0]
    ranked = sorted(candidates, key=lambda c: (c[0], c[1] not in ("ascending", "descending")))
    # a turning shape must fit better than the monotone one by TURN_SHARE
    ranked = [c for c in ranked if c[1] in ("ascending", "descending")
              or c[0] <= TURN_SHARE * mono_sse]
    if ranked and ranked[0][1] in ("ascending", "descending") and ranked[0][1] != monotone:
        ranked.remove(ranked[0])  # the other direction only as a fallback
        ranked.append(candidates[1])
    for _, shape, split in ranked:
        if _feasible(_shape_steps(shape, split, k), sides):
            return shape, split
    steps, previous = [], 1 if monotone == "ascending" else -1
    for d in np.diff(np.asarray(shrunk, dtype=float)):
        previous = previous if d == 0 else int(np.sign(d))
        steps.append(previous)
    return "steps", tuple(steps)


def _step_bounds(shape: str, split: int | None, k: int) -> tuple[float, float]:
    """Bounds of the thermometer step ``d_k = b_k - b_{k-1}`` (``k`` >= 1) of ``shape``."""
    up = (0.0, math.inf)
    down = (-math.inf, 0.0)
    if shape == "ascending":
        return up
    if shape == "descending":
        return down
    if shape == "peak":
        return up if k <= split else down
    if shape == "valley":
        return down if k <= split else up
    if shape == "steps":  # split: the sign of each step
        return up if split[k - 1] > 0 else down
    return -math.inf, math.inf


# ------------------------------------------------------------------ parametrisation


@dataclass
class Parametrisation:
    """``b = M theta`` with box bounds on ``theta`` (trend steps, locks), the slots tied to
    their reference (too few leads) and the trend of each numeric factor."""

    M: sp.csr_matrix
    lower: np.ndarray
    upper: np.ndarray
    shapes: dict[str, tuple[str, object]]
    merged: list[int]
    capped: set[int]  # slots whose thin-evidence cap is a box bound of their own parameter
    blocked: set[int]  # bins of a monotone block (thermometer-coded)


def thin_cap(leads: float, min_leads: int) -> float | None:
    """``|b_s - b_r|`` cap of a level with ``leads`` training leads (None: not thin):
    ``ln 2 * n / (2 * THIN_LEADS)`` below ``THIN_LEADS`` leads, so such a level never moves
    the odds by more than ``2^(n / 60)`` against the reference (under 10 points at pdo 20).
    (Levels under ``min_leads`` are tied to the reference instead, bins of a trend aside:
    :func:`parametrise`.)"""
    if leads >= THIN_LEADS:
        return None
    return math.log(2) * leads / (2 * THIN_LEADS)


def reference_slot(encoder: FactorEncoder, j: int) -> int:
    """Design column of factor ``j``'s reference (most common) slot."""
    return int(encoder.offsets_[j] + int(np.argmax(encoder.factors_[j].counts)))


def parametrise(encoder: FactorEncoder, evidence: Evidence, *, trends: dict[str, str],
                min_leads: int, locked: dict[int, float],
                held: np.ndarray | None = None) -> Parametrisation:
    """The map ``M`` and the box bounds (see the module docstring). ``trends`` maps numeric
    factors to a :data:`TRENDS` entry (absent: ``free``); ``locked`` maps design slots to
    their fixed log odds ratio against the reference; ``held`` (per slot: +1 / -1 for a level
    sign consistency holds above / below its factor's average, else 0) steers ``auto``
    trends clear of shapes that sign consistency could not live with."""
    held = np.zeros(len(evidence.leads)) if held is None else held
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lower: list[float] = []
    upper: list[float] = []
    shapes: dict[str, tuple[str, object]] = {}
    merged: list[int] = []
    capped: set[int] = set()
    blocked: set[int] = set()

    def new(lo: float = -math.inf, hi: float = math.inf) -> int:
        lower.append(lo)
        upper.append(hi)
        return len(lower) - 1

    def put(slot: int, params: list[int], signs: list[float] | None = None) -> None:
        for k, q in enumerate(params):
            rows.append(slot)
            cols.append(q)
            vals.append(1.0 if signs is None else signs[k])

    for j, factor in enumerate(encoder.factors_):
        lo = int(encoder.offsets_[j])
        ref = reference_slot(encoder, j)
        anchor = new()
        n_bins = factor.n_bins if factor.kind == "numeric" else 0
        # the trend runs over the bins backed by THIN_LEADS leads or more; thinner bins are
        # levels of their own (tied to the reference, or capped), like special levels
        trended = [s for s in range(lo, lo + n_bins)
                   if evidence.leads[s] >= max(THIN_LEADS, min_leads)]
        shape, split = ("free", None)
        if len(trended) >= 2:
            shape, split = choose_trend(evidence.shrunk[trended], evidence.leads[trended],
                                        trends.get(factor.name, "free"), held[trended])
            shapes[factor.name] = (shape, split)
        block = trended if shape != "free" else []
        bad = [s for s in block if s in locked]
        if bad:
            raise ValueError(f"points.locked: {factor.name!r} = {factor.slots[bad[0] - lo]!r} is "
                             f"a bin of a {shape} trend; set columns.trend.{factor.name}: free "
                             "to lock a bin")
        for s in range(lo, int(encoder.offsets_[j + 1])):
            if s in block:
                continue
            if s == ref:
                put(s, [anchor])
            elif s in locked:
                put(s, [anchor, new(locked[s], locked[s])])
            elif evidence.leads[s] < min_leads:
                merged.append(s)
                put(s, [anchor])
            else:
                cap = thin_cap(evidence.leads[s], min_leads)
                if cap is not None:
                    capped.add(s)
                put(s, [anchor, new() if cap is None else new(-cap, cap)])
        blocked.update(block)
        if len(block):
            _thermometer(block, ref, shape, split, anchor, new, put)
    n = int(encoder.offsets_[-1])
    M = sp.csr_matrix((vals, (rows, cols)), shape=(n, len(lower)))
    return Parametrisation(M, np.asarray(lower), np.asarray(upper), shapes, merged, capped,
                           blocked)


def _thermometer(bins: list[int], ref: int, shape: str, split: object, anchor: int,
                 new, put) -> None:
    """The trend's bins (design slots, in order) as cumulative steps from an anchor bin (the
    reference when it is one of them, else the first at ``a + e``):
    ``b_k = b_{k0} + sum_{k0 < i <= k} d_i`` above, ``b_{k0} - sum_{k < i <= k0} d_i`` below,
    each step ``d_i`` bounded by the shape."""
    steps = {k: new(*_step_bounds(shape, split, k)) for k in range(1, len(bins))}
    if ref in bins:
        k0, base = bins.index(ref), [anchor]
    else:
        k0, base = 0, [anchor, new()]
    for k, slot in enumerate(bins):
        if k >= k0:
            put(slot, base + [steps[i] for i in range(k0 + 1, k + 1)])
        else:
            down = [steps[i] for i in range(k + 1, k0 + 1)]
            put(slot, base + down, [1.0] * len(base) + [-1.0] * len(down))


# ----------------------------------------------------------------- linear constraints


@dataclass(frozen=True)
class Inequalities:
    """``A b + c <= 0`` (one row per constraint), what each row is (``kind``: ``sign`` or
    ``thin``) and its slot."""

    A: sp.csr_matrix
    c: np.ndarray
    kind: list[str]
    slot: list[int]


def inequalities(encoder: FactorEncoder, evidence: Evidence, param: Parametrisation, *,
                 sign_consistent: bool, locked: dict[int, float], min_leads: int,
                 margin: float, level_margin: float, alpha: float = 0.05) -> Inequalities:
    """The constraints that are linear in ``b`` but not boxes in ``theta``:

    * sign (significant level ``s`` of factor ``f``, lift side ``sigma``, lead shares ``w``):
      ``sigma (b_s - sum_m w_m b_m) >= margin`` (the reference cancels) for the bins of a
      monotone block, ``>= level_margin`` for the other levels (at pdo scaling 0:
      :func:`sign_rounding` rounds them to their side);
    * thin (a level with ``n < thin`` leads, :func:`thin_cap`): ``|b_s - b_r| <= cap``, for
      the bins of a monotone block (other levels have it as a box bound).

    Locked levels, levels tied to the reference and factors with one level get none."""
    rows: list[dict[int, float]] = []
    c: list[float] = []
    kind: list[str] = []
    slot: list[int] = []
    fixed = set(locked) | set(param.merged)
    for j in range(len(encoder.factors_)):
        lo, hi = int(encoder.offsets_[j]), int(encoder.offsets_[j + 1])
        ref = reference_slot(encoder, j)
        leads = evidence.leads[lo:hi]
        if hi - lo < 2 or leads.sum() <= 0:
            continue
        w = leads / leads.sum()
        for s in range(lo, hi):
            if s in fixed:
                continue
            sigma = float(evidence.side[s])
            if sign_consistent and evidence.p_adjusted[s] < alpha and sigma != 0:
                row = {lo + m: sigma * w[m] for m in range(hi - lo)}
                row[s] = row[s] - sigma
                rows.append(row)
                c.append(margin if s in param.blocked else level_margin)
                kind.append("sign")
                slot.append(s)
            cap = thin_cap(evidence.leads[s], min_leads)
            if cap is not None and s != ref and s not in param.capped:
                for sign in (1.0, -1.0):
                    rows.append({s: sign, ref: -sign})
                    c.append(-cap)
                    kind.append("thin")
                    slot.append(s)
    n = int(encoder.offsets_[-1])
    r = [i for i, row in enumerate(rows) for _ in row]
    k = [key for row in rows for key in row]
    v = [val for row in rows for val in row.values()]
    A = sp.csr_matrix((v, (r, k)), shape=(len(rows), n))
    return Inequalities(A, np.asarray(c, dtype=float), kind, slot)


# --------------------------------------------------------------------------- solver

#: augmented-Lagrangian penalty weight, outer rounds, and the violation (log odds) at which
#: an inequality counts as holding
RHO = 10.0
OUTER_ROUNDS = 40
TOLERANCE = 1e-5


def solve_bounded(Z: sp.csr_matrix, y: np.ndarray, M: sp.csr_matrix, C: float,
                  lower: np.ndarray, upper: np.ndarray, start: np.ndarray, *,
                  max_iter: int, G: sp.csr_matrix | None = None,
                  g: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Minimise over ``(theta, c)``, ``theta`` in ``[lower, upper]``,

        f = [sum_i logloss_i(Z theta + c) + ||M theta||^2 / (2 C)] / n

    (``Z = X M``; the intercept ``c``, last, free and unpenalised) subject to
    ``h(theta) = G theta + g <= 0`` (``G = A M``: the inequalities ``A b + g <= 0``).

    Boxes are L-BFGS-B's; the inequalities are handled by the augmented Lagrangian
    (Powell-Hestenes-Rockafellar): minimise ``f + rho/2 sum_k max(0, h_k + lambda_k/rho)^2``
    by L-BFGS-B (analytic gradient ``M' X' (p - y) / n + M' M theta / (C n) +
    rho G' max(0, h + lambda/rho)``), then ``lambda <- max(0, lambda + rho h)``, warm-started,
    until every ``h_k <= TOLERANCE``. A moderate ``rho`` keeps each solve well conditioned;
    the multipliers make the constraints exact. Returns the solution and the L-BFGS-B
    iterations used."""
    n = Z.shape[0]
    y = np.asarray(y, dtype=float)
    ZT = Z.T.tocsr()
    MtM = (M.T @ M).tocsr()
    GT = G.T.tocsr() if G is not None and G.shape[0] else None
    multipliers = np.zeros(0 if GT is None else G.shape[0])

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        theta, c = x[:-1], x[-1]
        eta = Z @ theta + c
        loss = float(np.sum(np.logaddexp(0.0, eta) - y * eta))
        pen = MtM @ theta
        residual = expit(eta) - y
        grad = np.empty_like(x)
        grad[:-1] = (ZT @ residual + pen / C) / n
        grad[-1] = residual.sum() / n
        value = (loss + float(theta @ pen) / (2 * C)) / n
        if GT is not None:
            excess = np.maximum(G @ theta + g + multipliers / RHO, 0.0)
            value += RHO / 2 * float(excess @ excess)
            grad[:-1] += RHO * (GT @ excess)
        return value, grad

    bounds = [(None if math.isinf(a) else a, None if math.isinf(b) else b)
              for a, b in zip(lower, upper, strict=True)] + [(None, None)]
    x = np.concatenate([np.clip(start[:-1], lower, upper), start[-1:]])
    used = 0
    for _ in range(OUTER_ROUNDS if GT is not None else 1):
        result = minimize(objective, x, jac=True, method="L-BFGS-B", bounds=bounds,
                          options={"maxiter": max_iter, "ftol": 1e-13, "gtol": 1e-9,
                                   "maxcor": 30})
        x, used = result.x, used + int(result.nit)
        if GT is None:
            break
        h = G @ x[:-1] + g
        multipliers = np.maximum(0.0, multipliers + RHO * h)
        if float(np.max(h, initial=0.0)) <= TOLERANCE:
            break
    return x, used


def _start(param: Parametrisation, coef: np.ndarray, intercept: float) -> np.ndarray:
    """Parameters closest (least squares) to the free coefficients, then the intercept."""
    theta = np.linalg.lstsq(param.M.toarray(), coef, rcond=None)[0]
    return np.concatenate([theta, [intercept]])


@dataclass(frozen=True)
class TrustedFit:
    """The constrained coefficients (one per slot) and what the constraints did."""

    coef: np.ndarray
    intercept: float
    n_iter: int
    shapes: dict[str, tuple[str, object]]
    sign_bounded: list[int]  # significant slots held on their lift's side (constraint active)
    merged: list[int]
    locked: dict[int, float]
    evidence: Evidence
    blocked: frozenset[int] = frozenset()


def factor_averages(encoder: FactorEncoder, coef: np.ndarray, leads: np.ndarray
                    ) -> np.ndarray:
    """Per slot: its factor's lead-weighted average coefficient relative to the reference,
    ``t_f = sum_s n_s (b_s - b_r) / sum_s n_s``."""
    out = np.zeros_like(coef, dtype=float)
    for j in range(len(encoder.factors_)):
        lo, hi = encoder.offsets_[j], encoder.offsets_[j + 1]
        rel = coef[lo:hi] - coef[reference_slot(encoder, j)]
        w = leads[lo:hi]
        out[lo:hi] = float(np.sum(w * rel) / w.sum()) if w.sum() > 0 else 0.0
    return out


def against_lift(encoder: FactorEncoder, coef: np.ndarray, evidence: Evidence, *,
                 alpha: float = 0.05, tol: float = 0.0) -> np.ndarray:
    """Slots whose lift is significant (``p_adjusted < alpha``) yet whose coefficient lies on
    the other side of the factor's lead-weighted average (by more than ``tol``)."""
    refs = np.zeros_like(coef)
    for j in range(len(encoder.factors_)):
        lo, hi = encoder.offsets_[j], encoder.offsets_[j + 1]
        refs[lo:hi] = coef[reference_slot(encoder, j)]
    gap = (coef - refs) - factor_averages(encoder, coef, evidence.leads)
    significant = (evidence.p_adjusted < alpha) & (evidence.side != 0)
    return np.flatnonzero(significant & (gap * evidence.side < -tol))


def fit_trusted(encoder: FactorEncoder, design: sp.spmatrix, y: np.ndarray, *, C: float,
                start_coef: np.ndarray, start_intercept: float, trends: dict[str, str],
                sign_consistent: bool, locked: dict[int, float], min_leads: int,
                margin: float, max_iter: int, alpha: float = 0.05,
                lift: pd.DataFrame | None = None, level_margin: float | None = None
                ) -> TrustedFit:
    """The constrained fit at ``C`` (see the module docstring), started from the free fit:
    trends and locks are box bounds of the parametrisation (:func:`parametrise`), small
    levels are tied to their reference, sign consistency and thin-evidence caps are the
    linear inequalities of :func:`inequalities`, enforced by an augmented Lagrangian
    (:func:`solve_bounded`)."""
    design = sp.csr_matrix(design)
    y = np.asarray(y, dtype=float)
    evidence = level_evidence(encoder, design, y, lift)
    held = (np.where(evidence.p_adjusted < alpha, evidence.side, 0.0) if sign_consistent
            else None)
    param = parametrise(encoder, evidence, trends=trends, min_leads=min_leads, locked=locked,
                        held=held)
    rules = inequalities(encoder, evidence, param, sign_consistent=sign_consistent,
                         locked=locked, min_leads=min_leads, margin=margin,
                         level_margin=margin if level_margin is None else level_margin,
                         alpha=alpha)
    Z = (design @ param.M).tocsr()
    G = (rules.A @ param.M).tocsr()
    x = _start(param, start_coef, start_intercept)
    x, n_iter = solve_bounded(Z, y, param.M, C, param.lower, param.upper, x,
                              max_iter=max_iter, G=G, g=rules.c)
    coef = np.asarray(param.M @ x[:-1]).ravel()
    active = rules.A @ coef + rules.c > -1e-4
    bounded = sorted({s for s, k, a in zip(rules.slot, rules.kind, active, strict=True)
                      if k == "sign" and a})
    return TrustedFit(coef, float(x[-1]), n_iter, param.shapes, bounded, param.merged,
                      dict(locked), evidence, frozenset(param.blocked))


def sign_rounding(encoder: FactorEncoder, unrounded: np.ndarray, rounded: np.ndarray,
                  fit: TrustedFit, *, alpha: float = 0.05, passes: int = 10) -> np.ndarray:
    """``rounded`` points with every significant level that the fit put on its lift's side
    of its factor's lead-weighted average (unrounded) also there after rounding.

    A level held at the average (its constraint active) can round to the wrong side of the
    rounded average; it is moved a point at a time towards its side instead (staying
    within two points of its unrounded value). A bin of a monotone block is moved only when its bins
    then turn no more often than before; locked and merged levels are left alone."""
    out = rounded.copy()
    evidence = fit.evidence
    fixed = set(fit.locked) | set(fit.merged)
    significant = (evidence.p_adjusted < alpha) & (evidence.side != 0)
    for _ in range(passes):
        moved = False
        for j in range(len(encoder.factors_)):
            lo, hi = int(encoder.offsets_[j]), int(encoder.offsets_[j + 1])
            w = evidence.leads[lo:hi]
            if w.sum() <= 0:
                continue
            for s in range(lo, hi):
                average = float(np.sum(w * out[lo:hi]) / w.sum())
                side = evidence.side[s]
                if (s in fixed or not significant[s] or side * (out[s] - average) >= 0
                        or abs(out[s] + side - unrounded[s]) > 2):
                    continue
                out[s] += int(side)
                if s in fit.blocked:
                    block = sorted(b for b in fit.blocked if lo <= b < hi)
                    before = out[block].copy()
                    before[block.index(s)] -= int(side)
                    if direction_changes(out[block]) > direction_changes(before):
                        out[s] -= int(side)
                        continue
                moved = True
        if not moved:
            break
    return out


def shapes_frame(fit: TrustedFit) -> pd.DataFrame:
    """The trend each numeric factor was fitted with: factor, trend, split (peak / valley
    bin index)."""
    return pd.DataFrame([{"factor": f, "trend": s, "split": k} for f, (s, k)
                         in fit.shapes.items()], columns=["factor", "trend", "split"])
