"""Cross-validation of the whole training procedure (``lead-scoring evaluate``): selection,
fit and points inside each fold, nothing learned from the test fold."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analysis.selection_check import eligible_columns
from pipeline.config import Config
from pipeline.inputs.features import FeatureSet
from pipeline.model.evaluate import benchmark_auc, binary_metrics, stratified_folds
from pipeline.model.train_analysis import analyse, with_text_as_categories
from pipeline.model.train_fit import UNCONSTRAINED, fit_scorecard, model_probability
from pipeline.progress import track


def cross_validate(features: FeatureSet, config: Config, *, folds: int) -> dict[str, float]:
    """Run selection + fit + points inside each fold (nothing learned from the test fold).

    Returns mean and standard deviation of ROC AUC and Brier for the integer points table,
    ``auc_unconstrained`` (the same procedure on the same folds with trend ``free``, sign
    consistency off and no locks: what the trust constraints cost), the unrounded model
    and the gradient-boosting benchmark, the rounding loss and the
    number of factors kept.
    """
    frame = features.frame
    y = frame["converted"].to_numpy(dtype=int)
    factors = features.factors
    records = []
    for train_idx, test_idx in track(stratified_folds(y, folds, config.seed),
                                     f"cross-validation: {folds} folds"):
        train_frame, test_frame = (with_text_as_categories(frame.iloc[rows], factors)
                                   for rows in (train_idx, test_idx))
        analysis = analyse(train_frame[factors].reset_index(drop=True), pd.Series(y[train_idx]),
                           features.groups, config, numeric=features.numeric)
        record = {"n_factors": len(analysis.kept)}
        if not analysis.kept:
            rate = y[train_idx].mean()
            brier = float(np.mean((y[test_idx] - rate) ** 2))
            record.update(auc_points=0.5, auc_unconstrained=0.5, auc_model=0.5,
                          auc_benchmark=0.5, brier_points=brier,
                          brier_model=brier, rounding_auc_loss=0.0)
            records.append(record)
            continue
        kept = analysis.kept
        X_train = train_frame[kept].reset_index(drop=True)
        X_test = test_frame[kept].reset_index(drop=True)
        groups = {c: features.groups[c] for c in kept}
        scorecard = fit_scorecard(X_train, y[train_idx], groups, features.numeric, config,
                                  lift=analysis.lift)
        free = fit_scorecard(X_train, y[train_idx], groups, features.numeric, config,
                             c_grid=(scorecard.fit_.C,), trust=UNCONSTRAINED)
        total = scorecard.points(X_test)
        prob_points = scorecard.predict_proba(X_test)[:, 1]
        prob_model = model_probability(scorecard, X_test)
        unrounded = scorecard.unrounded_points(X_test)
        y_test = y[test_idx]
        eligible = eligible_columns(analysis.selection)
        bench = benchmark_auc(train_frame[eligible].reset_index(drop=True), y[train_idx],
                              test_frame[eligible].reset_index(drop=True), y_test,
                              seed=config.seed, max_rows=config.model.max_cv_rows)
        record.update(
            auc_points=binary_metrics(y_test, total)["auc"],
            auc_unconstrained=binary_metrics(y_test, free.points(X_test))["auc"],
            auc_model=binary_metrics(y_test, prob_model)["auc"],
            auc_unrounded=binary_metrics(y_test, unrounded)["auc"],
            auc_benchmark=bench["auc"],
            brier_points=float(np.mean((y_test - prob_points) ** 2)),
            brier_model=float(np.mean((y_test - prob_model) ** 2)),
            brier_benchmark=bench["brier"],
        )
        record["rounding_auc_loss"] = record["auc_unrounded"] - record["auc_points"]
        records.append(record)
    table = pd.DataFrame(records)
    out: dict[str, float] = {"folds": float(folds), "n_leads": float(len(frame))}
    for column in table.columns:
        out[column] = float(table[column].mean())
        out[f"{column}_std"] = float(table[column].std(ddof=1)) if len(table) > 1 else 0.0
    return out
