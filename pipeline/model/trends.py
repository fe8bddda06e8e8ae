"""Which shape the points of a numeric factor's bins follow (``columns.trend``): ascending,
descending, peak or valley, read off the lift evidence by :func:`choose_trend`, and the bounds
each shape puts on the thermometer steps ``d_k = b_k - b_{k-1}`` (:func:`step_bounds`). See
:mod:`pipeline.model.constraints` for the fit they constrain."""

from __future__ import annotations

import math

import numpy as np
from sklearn.isotonic import IsotonicRegression

TRENDS = ("ascending", "descending", "peak", "valley", "auto", "free")
#: a shape with a turn (peak / valley) is chosen by ``auto`` only when the shrunk rates turn
#: and it leaves at most this share of the best monotone shape's weighted squared error
#: (1: whenever it fits better)
TURN_SHARE = 1.0


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
    return [1 if step_bounds(shape, split, i)[0] == 0.0 else -1 for i in range(1, k)]


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


def step_bounds(shape: str, split: int | None, k: int) -> tuple[float, float]:
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
