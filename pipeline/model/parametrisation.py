"""The constrained fit's parametrisation ``b = M theta`` with box bounds on ``theta`` (trend
steps, locks, thin-evidence caps, small levels tied to their reference), and the constraints
that are linear in ``b`` but not boxes in ``theta`` (sign consistency, thin caps of trend bins).
See :mod:`pipeline.model.constraints` for the whole fit."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from pipeline.model.encoding import FactorEncoder
from pipeline.model.evidence import Evidence
from pipeline.model.trends import choose_trend, step_bounds

#: levels with fewer leads than this (and at least min_leads) have capped points
THIN_LEADS = 30


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
    """The map ``M`` and the box bounds (see :mod:`pipeline.model.constraints`).
    ``trends`` maps numeric factors to a :data:`pipeline.model.trends.TRENDS` entry (absent:
    ``free``); ``locked`` maps design slots to their fixed log odds ratio against the
    reference; ``held`` (per slot: +1 / -1 for a level sign consistency holds above / below
    its factor's average, else 0) steers ``auto`` trends clear of shapes that sign
    consistency could not live with."""
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
    steps = {k: new(*step_bounds(shape, split, k)) for k in range(1, len(bins))}
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
