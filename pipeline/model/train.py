"""The training procedure, wired from the stages: analyse -> select -> fit -> points ->
threshold -> evaluate. Pure: frames and config in, a :class:`TrainResult` out (no I/O).

The analysis step is :mod:`pipeline.model.train_analysis`, the points table's fit and the
cost of its trust constraints :mod:`pipeline.model.train_fit`; cross-validation of the whole
procedure is :mod:`pipeline.model.cross_validation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from pipeline.analysis.selection_check import eligible_columns
from pipeline.config import Config
from pipeline.inputs.features import FeatureSet, contract_settings
from pipeline.model.calibration import calibration_table, rounding_fidelity
from pipeline.model.evaluate import (
    Split,
    benchmark_auc,
    binary_metrics,
    holdout_split,
    signal_check,
)
from pipeline.model.fit import (
    Estimates,
    InferenceSample,
    inference_sample,
    statsmodels_estimates,
    stratified_sample,
    tabulate_coefficients,
)
from pipeline.model.points import PointsScorecard
from pipeline.model.rules import PointsRules
from pipeline.model.threshold import (
    Quadrant,
    ThresholdChoice,
    choose_threshold,
    fit_pain_quadrant,
    grade_cutoffs,
)
from pipeline.model.train_analysis import Analysis, analyse, with_text_as_categories
from pipeline.model.train_fit import (
    constraint_effects,
    fit_scorecard,
    model_probability,
    trust_report,
)
from pipeline.scoring.frame import score_frame

NO_SIGNAL = "no signal: no factor passed selection, the points table is empty"


@dataclass(frozen=True)
class TrainResult:
    """Everything one training run learned and measured."""

    rules: PointsRules
    scorecard: PointsScorecard | None
    points_table: pd.DataFrame
    coefficients: pd.DataFrame
    analysis: Analysis
    threshold: ThresholdChoice | None
    quadrant: Quadrant | None
    calibration: pd.DataFrame
    fidelity: dict[str, float]
    metrics: dict[str, float]
    split: Split
    holdout_scores: pd.DataFrame  # id, converted, points, fit, pain, probability, unrounded
    notes: list[str] = field(default_factory=list)
    no_signal: bool = False
    half_life_table: pd.DataFrame | None = None
    trust: pd.DataFrame | None = None  # see pipeline.model.trust.trust_table


def _weeks(frame: pd.DataFrame) -> float | None:
    if "created_at" not in frame.columns or len(frame) < 2:
        return None
    span = (frame["created_at"].max() - frame["created_at"].min()).total_seconds()
    return max(span / (7 * 86400), 1.0)


def _empty_rules(config: Config, features: FeatureSet) -> PointsRules:
    return PointsRules(factors=[], missing_values=list(config.data.missing_values),
                       id_column=config.data.id_name, model_name=config.model_name,
                       decay_half_life_days=dict(features.half_lives),
                       **contract_settings(config, features))


def train(features: FeatureSet, config: Config) -> TrainResult:
    """Split, analyse, select, fit, scale to points, pick the threshold, evaluate on holdout
    (against the benchmark model), then refit on every labelled lead when the config says so.

    One procedure, step after step, with no concurrency and no callbacks: the benchmark
    model and the statsmodels inference run here in turn (a second process that ran them
    beside the fit was removed: at 1M leads it saved no measurable time once the refit and
    the selection CV check were in; see the README). Files, MLflow and any overlap of
    waiting work belong to :mod:`pipeline.workflow`."""
    frame = features.frame
    y_all = frame["converted"].to_numpy(dtype=int)
    split = holdout_split(frame, y_all, share=config.model.holdout_share, seed=config.seed)
    factors = features.factors
    # the factors and the id only, each part with its own categories: nothing of the
    # holdout's reaches the training side
    positions = [frame.columns.get_loc(c) for c in dict.fromkeys([config.data.id_name,
                                                                  *factors])]
    train_frame, test_frame = (with_text_as_categories(frame.iloc[rows, positions], factors)
                               for rows in (split.train, split.holdout))
    y_train, y_test = y_all[split.train], y_all[split.holdout]
    analysis = analyse(train_frame[factors].reset_index(drop=True),
                       pd.Series(y_train), features.groups, config, dropped=features.dropped,
                       numeric=features.numeric)
    notes: list[str] = []
    base_metrics = {"n_leads": float(len(frame)), "n_train": float(len(split.train)),
                    "n_holdout": float(len(split.holdout)),
                    "conversion_rate": float(y_all.mean()), "n_factors": float(len(analysis.kept))}
    if not analysis.kept:
        notes.append(NO_SIGNAL)
        metrics = {**base_metrics, "holdout_auc": 0.5, "holdout_auc_model": 0.5}
        return _no_signal_result(features, config, split, analysis, metrics, notes, train_frame,
                                 y_train, test_frame, y_test)
    kept = analysis.kept
    X_train = train_frame[kept].reset_index(drop=True)
    X_test = test_frame[kept].reset_index(drop=True)
    bench = holdout_benchmark(train_frame, y_train, test_frame, y_test,
                              eligible_columns(analysis.selection), config)
    return _fit_and_evaluate(features, config, split, analysis, X_train, X_test, bench,
                             base_metrics, notes)


def holdout_benchmark(train_frame: pd.DataFrame, y_train: np.ndarray, test_frame: pd.DataFrame,
                      y_test: np.ndarray, eligible: list[str], config: Config
                      ) -> dict[str, float]:
    """Holdout AUC and Brier of the gradient-boosting benchmark on every eligible candidate
    (what the additive points table gives up), trained on the C search's stratified sample
    of the training leads."""
    sample = stratified_sample(y_train, config.model.max_cv_rows, config.seed)
    return benchmark_auc(train_frame[eligible].iloc[sample].reset_index(drop=True),
                         y_train[sample], test_frame[eligible].reset_index(drop=True), y_test,
                         seed=config.seed)


def inference(scorecard: PointsScorecard, X: pd.DataFrame, y: np.ndarray, config: Config
              ) -> tuple[InferenceSample, Estimates]:
    """The statsmodels sample of ``X`` (the leads ``scorecard`` was fitted on) and its
    estimates: the standard errors of the table that is registered."""
    design = scorecard.encoder_.transform(X)
    sample = inference_sample(scorecard.encoder_, design, y,
                              max_rows=config.model.max_inference_rows, seed=config.seed)
    return sample, statsmodels_estimates(sample)


def _fit_and_evaluate(features: FeatureSet, config: Config, split: Split, analysis: Analysis,
                      X_train: pd.DataFrame, X_test: pd.DataFrame, bench: dict[str, float],
                      base_metrics: dict[str, float], notes: list[str]) -> TrainResult:
    """Fit the points table on the kept factors, evaluate it on the holdout, check that it
    beats the base rate, then (``model.refit_on_all``) refit it on every labelled lead and
    pick the threshold. The statsmodels inference is of the table that is registered."""
    frame = features.frame
    y_all = frame["converted"].to_numpy(dtype=int)
    y_train, y_test = y_all[split.train], y_all[split.holdout]
    id_col = config.data.id_name
    keys = frame[[c for c in (id_col, "created_at") if c in frame.columns]]  # no other column
    train_keys, test_keys = keys.iloc[split.train], keys.iloc[split.holdout]
    kept = analysis.kept
    groups = {c: features.groups[c] for c in kept}
    refit = config.model.refit_on_all
    scorecard = fit_scorecard(X_train, y_train, groups, features.numeric, config,
                              lift=analysis.lift)
    train_scores = score_frame(scorecard.rules_, X_train)
    choice = _choose_threshold(train_scores, y_train, train_keys, config)
    evaluated = replace(scorecard.rules_, sdr_threshold=choice.threshold)
    test_scores = score_frame(evaluated, X_test)
    unrounded_test = scorecard.unrounded_points(X_test)
    fidelity = rounding_fidelity(y_test, unrounded_test, test_scores["points"].to_numpy(),
                                 choice.threshold)
    if fidelity["rounding_auc_loss"] > config.points.max_rounding_auc_loss:
        notes.append(f"rounding costs {fidelity['rounding_auc_loss']:.4f} AUC on the holdout "
                     f"(> {config.points.max_rounding_auc_loss}): raise points.pdo")
    pts = binary_metrics(y_test, test_scores["points"].to_numpy(),
                         test_scores["probability"].to_numpy())
    model_prob = model_probability(scorecard, X_test)
    mdl = binary_metrics(y_test, model_prob, model_prob)
    cv = _cv_metrics(scorecard)
    signal = signal_check(cv_log_loss=cv["cv_log_loss"], y_cv=y_train, y_holdout=y_test,
                          score_holdout=test_scores["points"].to_numpy())
    metrics = {
        **base_metrics,
        "holdout_auc": pts["auc"], "holdout_auc_low": signal.auc_low,
        "holdout_auc_high": signal.auc_high, "holdout_ks": pts["ks"],
        "holdout_brier": pts["brier"], "holdout_auc_model": mdl["auc"],
        "holdout_brier_model": mdl["brier"], "rounding_auc_loss": fidelity["rounding_auc_loss"],
        "C": scorecard.fit_.C, **cv, "prior_log_loss": signal.prior_log_loss,
    }
    trust_effects = constraint_effects(scorecard, X_train, y_train, X_test, y_test, groups,
                                   features.numeric, config, analysis.lift)
    metrics["holdout_auc_unconstrained"] = trust_effects[-1].auc_without
    if analysis.cv_check is not None and len(analysis.cv_check):
        auc_of = dict(zip(analysis.cv_check["set"], analysis.cv_check["cv_auc"], strict=True))
        metrics["cv_auc_kept"] = float(auc_of["kept"])
        metrics["cv_auc_eligible"] = float(auc_of["all eligible candidates"])
    if not signal.has_signal:
        metrics.update(holdout_auc_benchmark=bench["auc"], holdout_brier_benchmark=bench["brier"])
        notes.append(f"no signal: the model does not beat the base rate out of sample "
                     f"({signal.reason}); no lead is SDR-ready")
        return _no_signal_result(features, config, split, analysis, metrics, notes, X_train,
                                 y_train, test_keys, y_test)
    if refit:
        X_final = with_text_as_categories(frame[kept], kept).reset_index(drop=True)
        y_final, final_keys = y_all, keys
        final = fit_scorecard(X_final, y_final, groups, features.numeric, config,
                              c_grid=(scorecard.fit_.C,), lift=analysis.lift)
        final_scores = score_frame(final.rules_, X_final)
        choice = _choose_threshold(final_scores, y_final, final_keys, config)
        notes.append(f"holdout figures are of the table fitted on the other {len(y_train):,} "
                     f"leads; the registered table was refit on all {len(y_final):,} labelled "
                     "leads (model.refit_on_all)")
    else:
        final, X_final, y_final, final_scores = scorecard, X_train, y_train, train_scores
    metrics["n_final_fit"] = float(len(y_final))
    sample, estimates = inference(final, X_final, y_final, config)
    coefficients, fit_notes = tabulate_coefficients(final.encoder_, sample, estimates,
                                                    final.fit_, groups)
    notes.extend(fit_notes)
    if choice.method != "target_rate":
        notes.append(f"SDR-ready threshold: {choice.note}")
    grades = (grade_cutoffs(final_scores["points"].to_numpy(), config.threshold.grades)
              if config.threshold.grades else [])
    rules = replace(final.rules_, sdr_threshold=choice.threshold, grades=grades,
                    id_column=id_col, model_name=config.model_name,
                    decay_half_life_days=dict(features.half_lives),
                    **contract_settings(config, features))
    quadrant = fit_pain_quadrant(final_scores["fit"].to_numpy(), final_scores["pain"].to_numpy(),
                                 y_final, final_scores["points"].to_numpy() >= choice.threshold,
                                 fit_quantile=config.threshold.fit_quantile,
                                 pain_quantile=config.threshold.pain_quantile)
    if quadrant.warning:
        notes.append(quadrant.warning)
    calibration = calibration_table(y_test, test_scores["points"].to_numpy(), evaluated)
    metrics.update({
        "holdout_auc_benchmark": bench["auc"], "holdout_brier_benchmark": bench["brier"],
        "sdr_threshold": float(choice.threshold), "sdr_ready_share": choice.sdr_ready_share,
        "sdr_expected_close_rate": choice.expected_close_rate,
        "fit_only_sdr_share": choice.fit_only_share,
        "bad_fit_low_pain_sdr_share": quadrant.bad_fit_low_pain_sdr_share,
    })
    if choice.sdr_ready_per_week is not None:
        metrics["sdr_ready_per_week"] = choice.sdr_ready_per_week
    for group, h in features.half_lives.items():
        metrics[f"half_life_days_{group}"] = float(h)
    holdout = pd.DataFrame({id_col: test_keys[id_col].to_numpy(), "converted": y_test,
                            **{c: test_scores[c].to_numpy() for c in
                               ("points", "fit", "pain", "probability", "sdr_ready")},
                            "unrounded_points": unrounded_test, "model_probability": model_prob})
    if "created_at" in test_keys.columns:
        holdout["created_at"] = test_keys["created_at"].to_numpy()
    trust = trust_report(final, pts["auc"], trust_effects, analysis, notes)
    return TrainResult(rules, final, final.points_table(), coefficients, analysis, choice,
                       quadrant, calibration, fidelity, metrics, split, holdout, notes, False,
                       features.half_life_table, trust)


def _choose_threshold(scores: pd.DataFrame, y: np.ndarray, keys: pd.DataFrame,
                      config: Config) -> ThresholdChoice:
    t = config.threshold
    return choose_threshold(scores["points"].to_numpy(), scores["fit"].to_numpy(), y,
                            target_rate=tuple(t.target_rate), min_lift=t.min_lift,
                            capacity_per_week=t.capacity_per_week, weeks=_weeks(keys))


def _no_signal_result(features: FeatureSet, config: Config, split: Split, analysis: Analysis,
                      metrics: dict[str, float], notes: list[str], X_train: pd.DataFrame,
                      y_train: np.ndarray, test_keys: pd.DataFrame, y_test: np.ndarray
                      ) -> TrainResult:
    """An empty points table that makes no lead SDR-ready (nothing beat the base rate)."""
    rules = replace(_empty_rules(config, features), sdr_threshold=1,
                    prob_intercept=_logit(y_train.mean()))
    id_col = config.data.id_name
    holdout = pd.DataFrame({id_col: test_keys[id_col].to_numpy(), "converted": y_test})
    empty = pd.DataFrame(columns=["factor", "group", "level", "points"])
    return TrainResult(rules, None, empty, pd.DataFrame(), analysis, None, None, pd.DataFrame(),
                       {}, metrics, split, holdout, notes, True, features.half_life_table)


def _cv_metrics(scorecard: PointsScorecard) -> dict[str, float]:
    """Out-of-fold AUC and log loss of the chosen C on the training leads (the C search's own
    folds; slightly optimistic, since selection saw all training leads)."""
    curve = scorecard.fit_.cv_curve
    row = curve.loc[curve["C"] == scorecard.fit_.C].iloc[0]
    return {"cv_auc": float(row["cv_auc"]), "cv_log_loss": float(row["cv_log_loss"])}


def _logit(p: float) -> float:
    p = min(max(float(p), 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))
