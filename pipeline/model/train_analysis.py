"""The analysis step of a training run: the training leads' text factors as categories,
then lift, associations, factor selection and the CV check of the selection
(:mod:`pipeline.analysis`), with the config's settings."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.analysis.associations import pairwise_associations, target_associations
from pipeline.analysis.lift import lift_table
from pipeline.analysis.lift_levels import is_numeric_column, level_frame
from pipeline.analysis.selection import SelectionResult, SelectionSettings, select_factors
from pipeline.analysis.selection_check import SelectionCheck, check_selection
from pipeline.config import Config
from pipeline.errors import UserError


@dataclass(frozen=True)
class Analysis:
    """Attribute analysis on the training leads."""

    lift: pd.DataFrame
    associations: pd.DataFrame
    pairwise: pd.DataFrame
    selection: pd.DataFrame
    kept: list[str]
    cv_check: pd.DataFrame | None = None  # set, n_factors, cv_auc (see selection_check)


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
        max_rows=m.max_cv_rows, max_iter=m.max_iter, significance=a.significance)
    report = result.report.copy()
    for column, gain in check.added.items():
        row = report["column"] == column
        was = report.loc[row, "reason"].iloc[0]
        report.loc[row, "kept"] = True
        report.loc[row, "reason"] = f"kept: adds {gain:.4f} CV AUC (the rules said {was})"
    return report, check


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
