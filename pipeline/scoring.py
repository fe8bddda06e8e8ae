"""Vectorised scoring of a frame with a :class:`~pipeline.rules.PointsRules` table.

The same semantics as the row-by-row reference in :mod:`pipeline.rules`, done with
category codes + ``take`` for categorical factors and ``searchsorted`` for numeric
bins: no per-row Python.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.encoding import categorical_text
from pipeline.rules import FactorRules, PointsRules

MISSING_LABEL = "(missing)"
UNSEEN_LABEL = "(unseen)"


def _missing_mask(series: pd.Series, missing_values: list[str]) -> np.ndarray:
    mask = series.isna().to_numpy()
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        tokens = [*missing_values, ""]
        mask = mask | series.isin(tokens).to_numpy()
    return mask


def factor_slot_codes(factor: FactorRules, series: pd.Series, missing_values: list[str]
                      ) -> np.ndarray:
    """Index into the factor's outcome list: levels/bins, then missing, then unseen."""
    missing = _missing_mask(series, missing_values)
    if factor.kind == "numeric":
        values = pd.to_numeric(series.where(~missing), errors="coerce").to_numpy(dtype=float)
        codes = np.searchsorted(np.asarray(factor.edges, dtype=float), values, side="left")
        n_out = len(factor.bin_points)
        codes = np.where(np.isnan(values), n_out, codes)
        return np.where(missing, n_out, codes).astype(np.int32)
    levels = list(factor.levels)
    n_out = len(levels)
    text = series if series.dtype == object else categorical_text(series)
    codes = pd.Categorical(text.where(~missing), categories=levels).codes.astype(np.int32)
    codes = np.where(codes < 0, n_out + 1, codes)
    return np.where(missing, n_out, codes).astype(np.int32)


def factor_outcome_points(factor: FactorRules) -> np.ndarray:
    """Points per outcome index (levels/bins..., missing, unseen)."""
    base = list(factor.levels.values()) if factor.kind == "categorical" else list(factor.bin_points)
    return np.asarray([*base, factor.missing_points, factor.unseen_points], dtype=np.int64)


def factor_outcome_labels(factor: FactorRules) -> list[str]:
    base = list(factor.levels) if factor.kind == "categorical" else factor.bin_labels()
    return [*base, MISSING_LABEL, UNSEEN_LABEL]


def points_matrix(rules: PointsRules, frame: pd.DataFrame) -> np.ndarray:
    """Points per lead (rows) and factor (columns, in ``rules.factors`` order)."""
    absent = [f.name for f in rules.factors if f.name not in frame.columns]
    if absent:
        raise KeyError(f"columns {absent} needed by the points table are missing from the input")
    out = np.zeros((len(frame), len(rules.factors)), dtype=np.int64)
    for j, factor in enumerate(rules.factors):
        codes = factor_slot_codes(factor, frame[factor.name], rules.missing_values)
        out[:, j] = factor_outcome_points(factor)[codes]
    return out


def unseen_counts(rules: PointsRules, frame: pd.DataFrame) -> dict[str, int]:
    """How many leads had a level never seen in training, per factor."""
    counts = {}
    for factor in rules.factors:
        if factor.kind != "categorical":
            continue
        codes = factor_slot_codes(factor, frame[factor.name], rules.missing_values)
        n = int((codes == len(factor.levels) + 1).sum())
        if n:
            counts[factor.name] = n
    return counts


def score_frame(rules: PointsRules, frame: pd.DataFrame, *, reasons: bool = False) -> pd.DataFrame:
    """Score columns for every row: ``points, fit, pain, probability, sdr_ready`` (+ ``grade``).

    With ``reasons``, also ``reason_codes``: the three factors that added most and the three
    that took away most, in words.
    """
    matrix = points_matrix(rules, frame)
    groups = np.asarray([f.group for f in rules.factors])
    fit = matrix[:, groups == "FIT"].sum(axis=1) if len(groups) else np.zeros(len(frame), int)
    pain = matrix[:, groups == "PAIN"].sum(axis=1) if len(groups) else np.zeros(len(frame), int)
    total = fit + pain
    if rules.score_min is not None or rules.score_max is not None:
        total = np.clip(total, rules.score_min, rules.score_max)
    z = rules.prob_intercept + rules.prob_slope * total.astype(float)
    out = pd.DataFrame(
        {
            "points": total.astype(np.int64),
            "fit": fit.astype(np.int64),
            "pain": pain.astype(np.int64),
            "probability": 1.0 / (1.0 + np.exp(-z)),
            "sdr_ready": total >= rules.sdr_threshold,
        },
        index=frame.index,
    )
    if rules.grades:
        cuts = sorted(rules.grades, key=lambda g: g["min_points"])
        mins = np.asarray([g["min_points"] for g in cuts], dtype=float)
        names = np.asarray([str(g["grade"]) for g in cuts], dtype=object)
        idx = np.searchsorted(mins, total, side="right") - 1
        out["grade"] = names[np.clip(idx, 0, len(names) - 1)]
    if reasons:
        out["reason_codes"] = reason_codes(rules, frame, matrix)
    return out


def reason_codes(rules: PointsRules, frame: pd.DataFrame, matrix: np.ndarray | None = None,
                 *, top: int = 3) -> list[str]:
    """Per lead: the ``top`` factors that added most and that took away most, in words."""
    if matrix is None:
        matrix = points_matrix(rules, frame)
    labels = []
    for factor in rules.factors:
        codes = factor_slot_codes(factor, frame[factor.name], rules.missing_values)
        names = np.asarray(factor_outcome_labels(factor), dtype=object)
        labels.append(names[codes])
    label_matrix = np.column_stack(labels) if labels else np.empty((len(frame), 0), dtype=object)
    names = [f.name for f in rules.factors]
    out = []
    order = np.argsort(-matrix, axis=1, kind="stable")
    for i in range(matrix.shape[0]):
        row = matrix[i]
        pos = [j for j in order[i] if row[j] > 0][:top]
        neg = [j for j in order[i][::-1] if row[j] < 0][:top]
        parts = [f"{names[j]} = {label_matrix[i, j]}: {row[j]:+d}" for j in pos + neg]
        out.append("; ".join(parts))
    return out
