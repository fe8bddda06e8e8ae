"""Evaluation: holdout split, metrics, the gradient-boosting benchmark, cross-validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold, train_test_split

from pipeline.model.calibration import ks_statistic, safe_auc
from pipeline.model.encoding import categorical_codes, is_numeric_column, with_fill


@dataclass(frozen=True)
class Split:
    """Train / holdout row positions and how they were chosen."""

    train: np.ndarray
    holdout: np.ndarray
    method: str  # "forward_in_time" | "stratified_random"
    cutoff: str | None = None


def holdout_split(frame: pd.DataFrame, y: np.ndarray, *, share: float, seed: int) -> Split:
    """Newest ``share`` of leads when creation dates exist (forward in time), else stratified."""
    n = len(frame)
    positions = np.arange(n)
    if "created_at" in frame.columns:
        order = np.argsort(frame["created_at"].to_numpy(), kind="stable")
        n_test = max(1, int(round(n * share)))
        train, test = np.sort(order[: n - n_test]), np.sort(order[n - n_test:])
        cutoff = str(frame["created_at"].iloc[order[n - n_test]])
        if 0 < y[test].sum() < len(test) and 0 < y[train].sum() < len(train):
            return Split(train, test, "forward_in_time", cutoff)
    train, test = train_test_split(positions, test_size=share, stratify=y, random_state=seed)
    return Split(np.sort(train), np.sort(test), "stratified_random")


def binary_metrics(y: np.ndarray, score: np.ndarray, probability: np.ndarray | None = None
                   ) -> dict[str, float]:
    """ROC AUC, KS and (with probabilities) the Brier score."""
    out = {"auc": safe_auc(y, score), "ks": ks_statistic(y, score)}
    if probability is not None:
        out["brier"] = float(brier_score_loss(y, probability))
    return out


def _benchmark_design(train: pd.DataFrame, test: pd.DataFrame
                      ) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """Numbers as they are; text as the index of its level among the training part's 250
    most frequent (sorted), other levels NaN. Worked out once per distinct value, not per row."""
    cols_train, cols_test, categorical = [], [], []
    for column in train.columns:
        if is_numeric_column(train[column]):
            cols_train.append(pd.to_numeric(train[column], errors="coerce").to_numpy(float))
            cols_test.append(pd.to_numeric(test[column], errors="coerce").to_numpy(float))
            categorical.append(False)
            continue
        codes, texts = _level_text(train[column])
        present = np.unique(codes, return_index=True)
        in_order = present[0][np.argsort(present[1], kind="stable")]  # first seen first
        counts = np.bincount(codes, minlength=len(texts))
        # most frequent first, ties in the order first seen (as Series.value_counts ranks)
        ranked = pd.Series(counts[in_order], index=texts[in_order]).sort_values(
            ascending=False, kind="stable")
        mapping = {lvl: float(i) for i, lvl in enumerate(sorted(ranked.index[:250]))}
        cols_train.append(_mapped(codes, texts, mapping))
        cols_test.append(_mapped(*_level_text(test[column]), mapping))
        categorical.append(True)
    empty = np.empty((len(train), 0)), np.empty((len(test), 0))
    if not cols_train:
        return empty[0], empty[1], []
    return np.column_stack(cols_train), np.column_stack(cols_test), categorical


def _level_text(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, distinct text): the points table's text of each value, missing as
    "(missing)" (one level with a value written that way)."""
    codes, labels = categorical_codes(series)
    merged, texts = pd.factorize(with_fill(labels, "(missing)"))
    return merged.take(codes), np.asarray(texts, dtype=object)  # code -1 takes the last


def _mapped(codes: np.ndarray, texts: np.ndarray, mapping: dict[str, float]) -> np.ndarray:
    return np.array([mapping.get(t, np.nan) for t in texts], dtype=float).take(codes)


def benchmark_auc(X_train: pd.DataFrame, y_train: np.ndarray, X_test: pd.DataFrame,
                  y_test: np.ndarray, *, seed: int, max_rows: int | None = None
                  ) -> dict[str, float]:
    """HistGradientBoosting on the same columns: how much the additive table gives up
    (trained on a stratified sample of at most ``max_rows`` leads)."""
    if X_train.shape[1] == 0:
        return {"auc": float("nan"), "brier": float("nan")}
    from pipeline.model.fit import stratified_sample

    sample = stratified_sample(y_train, max_rows, seed)
    X_train, y_train = X_train.iloc[sample], np.asarray(y_train)[sample]
    train, test, categorical = _benchmark_design(X_train, X_test)
    model = HistGradientBoostingClassifier(
        categorical_features=np.asarray(categorical, dtype=bool), learning_rate=0.06,
        max_iter=300, max_leaf_nodes=15, min_samples_leaf=40, l2_regularization=1.0,
        early_stopping=True, validation_fraction=0.15, n_iter_no_change=20, random_state=seed)
    model.fit(train, y_train)
    p = model.predict_proba(test)[:, 1]
    return {"auc": safe_auc(y_test, p), "brier": float(brier_score_loss(y_test, p))}


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def auc_interval(y: np.ndarray, score: np.ndarray, *, z: float = 1.959964
                 ) -> tuple[float, float, float]:
    """ROC AUC with its 95% interval (Hanley & McNeil 1982 standard error):
    ``se^2 = (A(1-A) + (n1-1)(Q1-A^2) + (n0-1)(Q2-A^2)) / (n1 n0)`` with
    ``Q1 = A/(2-A)``, ``Q2 = 2A^2/(1+A)``."""
    y = np.asarray(y, dtype=int)
    n1, n0 = int(y.sum()), int(len(y) - y.sum())
    auc = safe_auc(y, score)
    if n1 == 0 or n0 == 0 or not np.isfinite(auc):
        return auc, 0.0, 1.0
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    se = float(np.sqrt(max(var, 0.0)))
    return auc, max(0.0, auc - z * se), min(1.0, auc + z * se)


def base_rate_log_loss(y: np.ndarray) -> float:
    """Log loss (nats) of predicting every lead at the base rate: what a model must beat."""
    p = float(np.clip(np.mean(y), 1e-12, 1 - 1e-12))
    return float(-(p * np.log(p) + (1 - p) * np.log(1 - p)))


@dataclass(frozen=True)
class SignalCheck:
    """Whether the model beats the base rate out of sample, and the figures that say so."""

    has_signal: bool
    cv_log_loss: float
    prior_log_loss: float
    auc: float
    auc_low: float
    auc_high: float
    reason: str  # why there is no signal ("" when there is)


def signal_check(*, cv_log_loss: float, y_cv: np.ndarray, y_holdout: np.ndarray,
                 score_holdout: np.ndarray) -> SignalCheck:
    """A model has signal when its cross-validated log loss is below the base rate's (on the
    leads ``y_cv`` it was cross-validated on) and the 95% interval of its holdout AUC
    excludes 0.5. Selection picks the factors that look best on the training leads, so only
    the holdout, untouched by selection, can show that they were chance."""
    prior = base_rate_log_loss(y_cv)
    auc, low, high = auc_interval(y_holdout, score_holdout)
    problems = []
    if not cv_log_loss < prior:
        problems.append(f"CV log loss {cv_log_loss:.4f} is not below the base rate's "
                        f"{prior:.4f}")
    if not low > 0.5:
        problems.append(f"holdout AUC {auc:.4f} (95% interval {low:.3f}-{high:.3f}) does not "
                        "exclude 0.5")
    return SignalCheck(not problems, float(cv_log_loss), prior, auc, low, high,
                       "; ".join(problems))
