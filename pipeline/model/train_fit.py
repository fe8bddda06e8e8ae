"""The points table of a config fitted on training leads (:class:`PointsScorecard` with the
config's settings), and what each trust constraint costs: the holdout AUC with it lifted
(``trust.csv``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import Config
from pipeline.model.evaluate import binary_metrics
from pipeline.model.points import PointsScorecard
from pipeline.model.train_analysis import Analysis
from pipeline.model.trust import ConstraintEffect, contradictions, trust_table

#: the trust parameters of the unconstrained fit: trend free, no sign consistency, no locks
UNCONSTRAINED = {"trend": "free", "sign_consistent": False, "locked": None}


def trust_params(config: Config) -> dict[str, Any]:
    """:class:`PointsScorecard`'s trust parameters from ``columns.trend``,
    ``points.sign_consistent`` and ``points.locked``."""
    return {"trend": dict(config.columns.trend), "sign_consistent": config.points.sign_consistent,
            "locked": dict(config.points.locked) or None}


def fit_scorecard(X: pd.DataFrame, y: np.ndarray, groups: dict[str, str], numeric: list[str],
                  config: Config, *, c_grid: tuple[float, ...] | None = None,
                  trust: dict[str, Any] | None = None,
                  lift: pd.DataFrame | None = None) -> PointsScorecard:
    """The points table of ``config`` fitted on ``X``, ``y`` (``c_grid`` overrides the
    config's grid: a refit with the C already chosen; ``trust`` overrides trust parameters,
    e.g. :data:`UNCONSTRAINED`; ``lift``: the analysis' lift table, whose BH-adjusted
    p-values say which levels sign consistency holds)."""
    p, m, a = config.points, config.model, config.analysis
    return PointsScorecard(
        groups=groups, numeric=[c for c in numeric if c in X.columns], n_bins=a.n_bins,
        min_leads=a.min_leads, c_grid=c_grid or tuple(m.c_grid), cv_folds=m.cv_folds,
        scaling=p.scaling,
        pdo=p.pdo, base_score=p.base_score, base_odds=p.base_odds, score_range=tuple(p.range),
        cap=None if p.cap is None else tuple(p.cap), unseen_points=p.unseen_points,
        missing_values=tuple(config.data.missing_values), max_iter=m.max_iter,
        random_state=config.seed, max_cv_rows=m.max_cv_rows,
        special_values=dict(config.columns.special_values),
        **{**trust_params(config), **(trust or {})}).fit(X, y, lift=lift)


def constraint_effects(scorecard: PointsScorecard, X_train: pd.DataFrame, y_train: np.ndarray,
                   X_test: pd.DataFrame, y_test: np.ndarray, groups: dict[str, str],
                   numeric: list[str], config: Config, lift: pd.DataFrame
                   ) -> list[ConstraintEffect]:
    """Holdout AUC of the points with each trust constraint lifted in turn (the others
    kept; at the chosen C), then with all lifted (the last effect: the unconstrained fit)."""
    C = (scorecard.fit_.C,)
    trusted = scorecard.trusted_
    names = scorecard.encoder_.get_feature_names_out()

    def auc_without(**trust: Any) -> float:
        refit = fit_scorecard(X_train, y_train, groups, numeric, config, c_grid=C, trust=trust,
                              lift=lift)
        return binary_metrics(y_test, refit.points(X_test))["auc"]

    effects = []
    shaped = {f: s for f, (s, _) in trusted.shapes.items() if s != "free"}
    if shaped:
        effects.append(ConstraintEffect(
            "columns.trend", "; ".join(f"{f}: {s}" for f, s in shaped.items()),
            auc_without(trend="free")))
    if scorecard.sign_consistent:
        held = [str(names[s]) for s in trusted.sign_bounded]
        effects.append(ConstraintEffect(
            "points.sign_consistent",
            f"{len(held)} significant level(s) held on their lift's side of the factor's "
            f"average: {', '.join(held)}" if held else "no level needed holding",
            auc_without(sign_consistent=False)))
    for key, value in (scorecard.locked or {}).items():
        rest = {k: v for k, v in scorecard.locked.items() if k != key} or None
        effects.append(ConstraintEffect(f"points.locked: {key}", f"fixed at {value} points",
                                        auc_without(locked=rest)))
    effects.append(ConstraintEffect("all (unconstrained)",
                                    "trend free, sign consistency off, no locks",
                                    auc_without(**UNCONSTRAINED)))
    return effects


def trust_report(final: PointsScorecard, auc: float, effects: list[ConstraintEffect],
                  analysis: Analysis, notes: list[str]) -> pd.DataFrame:
    """``trust.csv``: the constraints' holdout AUC costs; with sign consistency off, one
    row (and a note) per level whose points argue with its lift, with the factor that
    explains it."""
    table = trust_table(auc, effects)
    found = contradictions(final, analysis.pairwise)
    if final.sign_consistent or not len(found):
        return table
    rows = []
    for r in found.itertuples(index=False):
        text = (f"{r.factor} = {r.level} converts at {r.conversion_rate:.1%} "
                f"({r.overall_rate:.1%} overall) yet scores {r.points:+.0f} against its "
                f"factor's average {r.factor_average_points:+.0f}; explained by {r.explained_by} "
                f"(association {r.association:.2f})")
        notes.append(f"points against the lift: {text}")
        rows.append({"constraint": "contradiction", "changed": text, "auc": np.nan,
                     "auc_without": np.nan, "auc_cost": np.nan})
    return pd.concat([table, pd.DataFrame(rows, columns=table.columns)], ignore_index=True)


def model_probability(scorecard: PointsScorecard, X: pd.DataFrame) -> np.ndarray:
    """The unrounded logistic regression's probability (before the points are rounded)."""
    design = scorecard.encoder_.transform(X)
    return 1 / (1 + np.exp(-(scorecard.fit_.intercept
                             + np.asarray(design @ scorecard.fit_.coef).ravel())))
