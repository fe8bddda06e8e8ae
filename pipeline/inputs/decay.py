"""Inactivity decay: learn how fast each behaviour group's points fade, and say it as a CRM setting.

A lead that goes quiet should lose points. Each group's events are weighted by
``0.5 ** (age_days / half_life)`` (see :mod:`pipeline.inputs.events`); here the half-life of each
group is chosen by cross-validated log loss, and translated into the "lose X% per month"
setting that rule-based CRM scorers offer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.errors import UserError
from pipeline.inputs.events import half_life_column
from pipeline.progress import track

DAYS_PER_MONTH = 30.0
_SWEEPS = 2
_C = 1.0


@dataclass(frozen=True)
class HalfLifeChoice:
    """The chosen half-life per group and the evidence behind it.

    ``cv_log_loss`` is a tidy table with columns ``group, half_life_days, cv_log_loss``: the
    cross-validated log loss of every candidate in the last sweep, each with the other groups
    held at their final choice.
    """

    half_life_days: dict[str, float]
    cv_log_loss: pd.DataFrame


def choose_half_lives(
    features: pd.DataFrame,
    y: pd.Series,
    *,
    groups: Sequence[str],
    grid: Sequence[float],
    base_columns: Sequence[str] = (),
    folds: int = 5,
    seed: int = 0,
) -> HalfLifeChoice:
    """Pick each group's half-life from ``grid`` by coordinate-wise search on CV log loss.

    Candidates are the columns ``decayed_<group>__hl<h>`` (from ``aggregate_events(...,
    extra_half_life_grid=...)``), used as ``log1p`` in a small L2 logistic regression with
    ``base_columns``. Every group starts at the middle of the grid; two sweeps follow, each
    trying every candidate of one group with the others held at their current choice.
    """
    groups = list(groups)
    if not groups or len(set(groups)) != len(groups):
        raise UserError(f"groups: must be a non-empty list without repeats, got {groups}")
    candidates = _check_grid(grid)
    target = _check_target(features, y, folds)
    needed = {(g, h): half_life_column(g, h) for g in groups for h in candidates}
    missing = [c for c in [*base_columns, *needed.values()] if c not in features.columns]
    if missing:
        raise UserError(
            f"features: missing column(s) {missing}",
            hint="compute them with aggregate_events(..., extra_half_life_grid={group: grid})",
        )
    base = features[list(base_columns)].to_numpy(dtype="float64", na_value=np.nan)
    finite = np.isfinite(base).all(axis=0)
    bad_base = [c for c, ok in zip(base_columns, finite, strict=True) if not ok]
    if bad_base:
        raise UserError(f"features: base column(s) {bad_base} hold NaN or infinite values")
    transformed = {}
    for key, column in needed.items():
        values = features[column].to_numpy(dtype="float64", na_value=np.nan)
        if not (np.isfinite(values).all() and (values >= 0).all()):
            raise UserError(f"features: column {column!r} must be finite and >= 0")
        transformed[key] = np.log1p(values)

    splits = list(
        StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(base, target)
    )
    cache: dict[tuple[float, ...], float] = {}

    def loss_of(choice: dict[str, float]) -> float:
        key = tuple(choice[g] for g in groups)
        if key not in cache:
            x = np.column_stack([base, *[transformed[(g, choice[g])] for g in groups]])
            cache[key] = _cv_log_loss(x, target, splits)
        return cache[key]

    choice = {g: candidates[len(candidates) // 2] for g in groups}
    rows: list[dict[str, object]] = []
    for _ in range(_SWEEPS):
        rows = []
        for g in groups:
            losses = [loss_of({**choice, g: h}) for h in
                      track(candidates, f"half-life search: {g}")]
            choice[g] = candidates[int(np.argmin(losses))]
            rows += [
                {"group": g, "half_life_days": h, "cv_log_loss": loss}
                for h, loss in zip(candidates, losses, strict=True)
            ]
    table = pd.DataFrame(rows, columns=["group", "half_life_days", "cv_log_loss"])
    table = table.sort_values(["group", "half_life_days"], kind="stable").reset_index(drop=True)
    return HalfLifeChoice(half_life_days=dict(choice), cv_log_loss=table)


def monthly_loss_percent(half_life_days: float) -> float:
    """The CRM setting "lose X% of the points per month" (30-day month) for a half-life."""
    h = _positive(half_life_days, "half_life_days")
    return 100.0 * (1.0 - 0.5 ** (DAYS_PER_MONTH / h))


def half_life_from_monthly_loss(percent: float) -> float:
    """Inverse of :func:`monthly_loss_percent`: the half-life in days for "lose X% per month"."""
    p = float(percent)
    if not (0.0 < p < 100.0):
        raise UserError(
            f"percent: monthly loss must be between 0 and 100 (exclusive), got {percent!r}"
        )
    return DAYS_PER_MONTH * math.log(0.5) / math.log(1.0 - p / 100.0)


def _positive(value: float, name: str) -> float:
    x = float(value)
    if not (math.isfinite(x) and x > 0):
        raise UserError(f"{name}: must be a positive number of days, got {value!r}")
    return x


def _check_grid(grid: Sequence[float]) -> list[float]:
    values = sorted({_positive(h, "grid") for h in grid})
    if not values:
        raise UserError(f"grid: needs at least one candidate half-life, got {list(grid)}")
    return values


def _check_target(features: pd.DataFrame, y: pd.Series, folds: int) -> np.ndarray:
    if len(y) != len(features):
        raise UserError(f"y: length must match features ({len(features)} rows), got {len(y)}")
    if not y.index.equals(features.index):
        raise UserError("y: index must equal the features index (align or reset_index both)")
    if y.isna().any():
        raise UserError(f"y: must not hold missing values, got {int(y.isna().sum())}")
    labels = sorted(pd.unique(y).tolist())
    if len(labels) != 2:
        raise UserError(f"y: needs exactly two classes, got {labels}")
    target = (y == labels[1]).to_numpy(dtype="int64")
    minority = int(min(target.sum(), len(target) - target.sum()))
    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= minority:
        raise UserError(
            f"folds: must be a whole number from 2 to the minority class size ({minority}), "
            f"got {folds!r}"
        )
    return target


def _cv_log_loss(x: np.ndarray, target: np.ndarray, splits: list) -> float:
    """Pooled out-of-fold log loss of a standardised L2 logistic regression."""
    proba = np.empty(len(target), dtype="float64")
    for train, test in splits:
        model = make_pipeline(StandardScaler(), LogisticRegression(
            C=_C, solver="newton-cholesky", max_iter=200))
        model.fit(x[train], target[train])
        proba[test] = model.predict_proba(x[test])[:, 1]
    return float(log_loss(target, proba, labels=[0, 1]))
