"""The training procedure, wired from the stages: analyse -> select -> fit -> points ->
threshold -> evaluate. Pure: frames and config in, a :class:`TrainResult` out (no I/O)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from pipeline.analysis.associations import pairwise_associations, target_associations
from pipeline.analysis.lift import is_numeric_column, level_frame, lift_table
from pipeline.analysis.selection import SelectionResult, SelectionSettings, select_factors
from pipeline.analysis.selection_check import SelectionCheck, check_selection, eligible_columns
from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.inputs.features import FeatureSet, contract_settings
from pipeline.model.evaluate import (
    Split,
    benchmark_auc,
    binary_metrics,
    holdout_split,
    signal_check,
    stratified_folds,
)
from pipeline.model.fit import (
    Estimates,
    InferenceSample,
    inference_sample,
    statsmodels_estimates,
    stratified_sample,
    tabulate_coefficients,
)
from pipeline.model.points import PointsScorecard, calibration_table, rounding_fidelity
from pipeline.model.rules import PointsRules
from pipeline.model.threshold import (
    Quadrant,
    ThresholdChoice,
    choose_threshold,
    fit_pain_quadrant,
    grade_cutoffs,
)
from pipeline.model.trust import ConstraintEffect, contradictions, trust_table
from pipeline.progress import track
from pipeline.scoring.frame import score_frame

NO_SIGNAL = "no signal: no factor passed selection, the points table is empty"


@dataclass(frozen=True)
class Analysis:
    """Attribute analysis on the training leads."""

    lift: pd.DataFrame
    associations: pd.DataFrame
    pairwise: pd.DataFrame
    selection: pd.DataFrame
    kept: list[str]
    cv_check: pd.DataFrame | None = None  # set, n_factors, cv_auc (see selection_check)


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


def selection_settings(config: Config) -> SelectionSettings:
    a = config.analysis
    return SelectionSettings(max_factors=a.max_factors, min_lift_pp=a.min_lift_pp,
                             max_association=a.max_association, leakage_auc=a.leakage_auc,
                             declared_leaky=tuple(config.columns.declared_leaky),
                             min_leads=a.min_leads, significance=a.significance)


def check_special_columns(X: pd.DataFrame, special_values: dict[str, list[float]]) -> None:
    """Refuse ``columns.special_values`` for a factor that is not numeric: a sentinel is a
    number with a meaning of its own, while every text value already is a level. Columns not
    among the factors (excluded, or dropped as constant) are left alone."""
    text = [c for c in special_values if c in X.columns and not is_numeric_column(X[c])]
    if text:
        raise UserError(f"columns.special_values names {text}, which hold text, not numbers",
                        hint="special values are for numeric columns (each text value is "
                             "already a level of its own); remove them or list the column in "
                             "columns.numeric")


def analyse(X: pd.DataFrame, y: pd.Series, groups: dict[str, str], config: Config, *,
            dropped: dict[str, str] | None = None, numeric: list[str] | None = None
            ) -> Analysis:
    """Lift, associations and factor selection (the conversion-rate method, done properly),
    then the CV check that selection costs no accuracy (:mod:`pipeline.analysis.selection_check`).

    ``dropped`` (column -> reason) adds report rows for columns that never reached the
    analysis (constant, all missing, excluded by the config); ``numeric`` names the numeric
    candidates."""
    a = config.analysis
    check_special_columns(X, config.columns.special_values)
    levels = level_frame(X, min_leads=a.min_leads, n_bins=a.n_bins, categorical=True,
                         special_values=config.columns.special_values)
    lift = lift_table(X, y, groups, min_leads=a.min_leads, n_bins=a.n_bins, levels=levels)
    assoc = target_associations(X, y, level_frame=levels[0])
    pairwise = pairwise_associations(X, level_frame=levels[0])
    result = select_factors(X, y, groups, selection_settings(config), lift=lift,
                            associations=assoc, pairwise=pairwise)
    report, check = _check_selection(X, y, result, config, numeric)
    if dropped:
        extra = pd.DataFrame([{"column": c, "kept": False, "reason": r} for c, r in dropped.items()
                              if c not in set(report["column"])], columns=report.columns)
        report = pd.concat([report, extra], ignore_index=True) if len(extra) else report
    return Analysis(lift, assoc, pairwise, report, check.kept, check.table)


def _check_selection(X: pd.DataFrame, y: pd.Series, result: SelectionResult, config: Config,
                     numeric: list[str] | None) -> tuple[pd.DataFrame, SelectionCheck]:
    """The selection report with the factors the CV check brought back marked kept."""
    a, m = config.analysis, config.model
    check = check_selection(
        X, y.to_numpy(), result.report, list(result.kept),
        numeric=list(numeric) if numeric is not None else
        [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c].dtype)],
        n_bins=a.n_bins, min_leads=a.min_leads,
        missing_values=tuple(config.data.missing_values), max_factors=a.max_factors,
        min_gain=a.min_cv_auc_gain, special_values=dict(config.columns.special_values),
        c_grid=list(m.c_grid), folds=m.cv_folds, seed=config.seed,
        max_rows=m.max_cv_rows, max_iter=m.max_iter)
    report = result.report.copy()
    for column, gain in check.added.items():
        row = report["column"] == column
        was = report.loc[row, "reason"].iloc[0]
        report.loc[row, "kept"] = True
        report.loc[row, "reason"] = f"kept: adds {gain:.4f} CV AUC (the rules said {was})"
    return report, check


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


def with_text_as_categories(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with its text ``columns`` as pandas Categoricals (a shallow copy).

    Each distinct value is hashed once here, instead of once per stage: lift, associations,
    selection, the encoder and the scorer all work from the category codes and give the
    same results as on text.
    """
    converted = {}
    for column in columns:
        series = frame[column]
        if series.dtype != object and pd.api.types.is_string_dtype(series.dtype):
            converted[column] = series.astype("category")
        elif series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) == "string":
            # what astype("category") gives, without first turning every value into "str"
            codes, levels = pd.factorize(series.to_numpy(), sort=True)
            converted[column] = pd.Categorical.from_codes(
                codes, categories=pd.Index(levels, dtype=object))
        # (mixed types stay as they are)
    return frame.assign(**converted) if converted else frame


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
    model_prob = _model_probability(scorecard, X_test)
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
    trust_effects = _trust_effects(scorecard, X_train, y_train, X_test, y_test, groups,
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
    trust = _trust_report(final, pts["auc"], trust_effects, analysis, notes)
    return TrainResult(rules, final, final.points_table(), coefficients, analysis, choice,
                       quadrant, calibration, fidelity, metrics, split, holdout, notes, False,
                       features.half_life_table, trust)


def _trust_effects(scorecard: PointsScorecard, X_train: pd.DataFrame, y_train: np.ndarray,
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


def _trust_report(final: PointsScorecard, auc: float, effects: list[ConstraintEffect],
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


def _model_probability(scorecard: PointsScorecard, X: pd.DataFrame) -> np.ndarray:
    """The unrounded logistic regression's probability (before the points are rounded)."""
    design = scorecard.encoder_.transform(X)
    return 1 / (1 + np.exp(-(scorecard.fit_.intercept
                             + np.asarray(design @ scorecard.fit_.coef).ravel())))


def _cv_metrics(scorecard: PointsScorecard) -> dict[str, float]:
    """Out-of-fold AUC and log loss of the chosen C on the training leads (the C search's own
    folds; slightly optimistic, since selection saw all training leads)."""
    curve = scorecard.fit_.cv_curve
    row = curve.loc[curve["C"] == scorecard.fit_.C].iloc[0]
    return {"cv_auc": float(row["cv_auc"]), "cv_log_loss": float(row["cv_log_loss"])}


def _logit(p: float) -> float:
    p = min(max(float(p), 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


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
        prob_model = _model_probability(scorecard, X_test)
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
