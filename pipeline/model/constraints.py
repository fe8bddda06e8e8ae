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

The parts: :mod:`pipeline.model.evidence` (the lift's statistics per design slot),
:mod:`pipeline.model.trends` (which shape a numeric factor follows) and
:mod:`pipeline.model.parametrisation` (``M``, the box bounds and the linear inequalities);
here the solver and the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import expit

from pipeline.model.encoding import FactorEncoder
from pipeline.model.evidence import Evidence, level_evidence
from pipeline.model.parametrisation import (
    Parametrisation,
    inequalities,
    parametrise,
    reference_slot,
)
from pipeline.model.trends import direction_changes

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
