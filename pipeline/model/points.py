"""From logistic-regression coefficients to an integer points table people can read.

Scaling (per factor f, level l, coefficient b[f, l], reference level r_f = f's most
common level):

* ``pdo`` (points to double the odds): ``factor = pdo / ln 2`` and
  ``points[f, l] = factor * (b[f, l] - b[f, r_f])``: the typical level scores 0, a level
  that doubles the odds scores ``pdo``, one that halves them ``-pdo``. With ``base_score`` and
  ``base_odds`` set, ``offset = base_score - factor * ln(base_odds)`` and the constant
  ``offset + factor * (intercept + sum_f b[f, r_f])`` is spread over the factors (largest
  remainder), so the total is the classic scorecard score ``offset + factor * log-odds``.
* ``minmax``: ``s = (high - low) / sum_f (max_l b[f, l] - min_l b[f, l])`` and
  ``points[f, l] = s * (b[f, l] - min_l b[f, l]) + low_f`` with the ``low_f`` integers
  summing to ``low``: the summed per-factor minima are exactly ``low`` and the maxima exactly
  ``high``, also after rounding (the per-factor maxima are rounded by largest remainder).

Rounding is its own step (:func:`round_points`) and :func:`rounding_fidelity` measures
what it cost. The probability for a total ``T`` comes from a one-variable logistic
regression of the outcome on the integer total (``prob_intercept + prob_slope * T``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.utils import TransformerTags, assert_all_finite
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from pipeline.model.constraints import TRENDS, TrustedFit, fit_trusted, sign_rounding
from pipeline.model.encoding import MISSING, OTHER, FactorEncoder, check_frame
from pipeline.model.fit import RegularisedFit, fit_regularised, reference_slots
from pipeline.model.rules import FactorRules, PointsRules, merge_equal_bins, special_key
from pipeline.scoring.frame import points_matrix


@dataclass(frozen=True)
class ScaledPoints:
    """Unrounded points per design slot, and the scaling parameters used."""

    values: np.ndarray
    params: dict = field(default_factory=dict)


def _largest_remainder(target: int, shares: np.ndarray) -> np.ndarray:
    """Integers close to ``shares`` that sum exactly to ``target``."""
    floors = np.floor(shares).astype(np.int64)
    missing = int(target - floors.sum())
    order = np.argsort(-(shares - floors), kind="stable")
    if missing >= 0:
        floors[order[:missing]] += 1
    else:
        floors[order[::-1][: -missing]] -= 1
    return floors


def scale_points(coef: np.ndarray, intercept: float, encoder: FactorEncoder, *, scaling: str,
                 pdo: float, base_score: float | None, base_odds: float | None,
                 score_range: tuple[int, int]) -> ScaledPoints:
    """Coefficients per slot -> unrounded points per slot (see the module docstring)."""
    offsets = encoder.offsets_
    n_factors = len(encoder.factors_)
    values = np.zeros_like(coef, dtype=float)
    if scaling == "pdo":
        factor = pdo / math.log(2)
        refs = reference_slots(encoder)
        for j in range(n_factors):
            lo, hi = offsets[j], offsets[j + 1]
            values[lo:hi] = factor * (coef[lo:hi] - coef[refs[j]])
        log_odds_at_zero = intercept + float(sum(coef[r] for r in refs))
        params = {"method": "pdo", "pdo": pdo, "factor": factor,
                  "log_odds_at_zero": log_odds_at_zero, "base_score": base_score,
                  "base_odds": base_odds}
        if base_score is not None and base_odds is not None and n_factors:
            offset = base_score - factor * math.log(base_odds)
            constant = offset + factor * log_odds_at_zero
            shares = _largest_remainder(round(constant), np.full(n_factors, constant / n_factors))
            for j in range(n_factors):
                values[offsets[j]:offsets[j + 1]] += shares[j]
            params.update({"offset": offset, "base_constant": int(round(constant))})
        return ScaledPoints(values, params)
    low, high = score_range
    ranges = np.asarray([np.ptp(coef[offsets[j]:offsets[j + 1]]) if offsets[j + 1] > offsets[j]
                         else 0.0 for j in range(n_factors)])
    total_range = float(ranges.sum())
    s = (high - low) / total_range if total_range > 0 else 0.0
    low_shares = _largest_remainder(low, np.full(n_factors, low / max(n_factors, 1)))
    for j in range(n_factors):
        lo, hi = offsets[j], offsets[j + 1]
        values[lo:hi] = s * (coef[lo:hi] - coef[lo:hi].min()) + low_shares[j]
    params = {"method": "minmax", "range": [low, high], "factor": s,
              "low_shares": low_shares.tolist()}
    return ScaledPoints(values, params)


def round_points(scaled: ScaledPoints, encoder: FactorEncoder) -> np.ndarray:
    """Integer points per slot. For min-max scaling the per-factor maxima are rounded by
    largest remainder so that their sum stays exactly on the configured high end."""
    values = scaled.values
    rounded = np.rint(values).astype(np.int64)
    if scaled.params.get("method") != "minmax" or len(encoder.factors_) == 0:
        return rounded
    offsets = encoder.offsets_
    low_shares = np.asarray(scaled.params["low_shares"], dtype=np.int64)
    high = scaled.params["range"][1]
    spans = np.asarray([values[offsets[j]:offsets[j + 1]].max() - low_shares[j]
                        for j in range(len(encoder.factors_))])
    int_spans = _largest_remainder(int(high - low_shares.sum()), spans)
    for j in range(len(encoder.factors_)):
        lo, hi = offsets[j], offsets[j + 1]
        unrounded = values[lo:hi]
        block = np.clip(np.rint(unrounded), low_shares[j], low_shares[j] + int_spans[j])
        # every level tied at the top (bottom) gets the factor's maximum (minimum), so equal
        # coefficients never get different points
        block[unrounded == unrounded.max()] = low_shares[j] + int_spans[j]
        block[unrounded == unrounded.min()] = low_shares[j]
        rounded[lo:hi] = block.astype(np.int64)
    return rounded


def build_rules(encoder: FactorEncoder, slot_points: np.ndarray, *, groups: dict[str, str],
                unseen_points: int, missing_values: list[str], scaling: dict) -> list[FactorRules]:
    """One :class:`FactorRules` per factor; training levels listed explicitly (rare ones with
    the ``(other)`` points) so every scorer and export matches exact strings."""
    method = scaling.get("method")
    factors = []
    for j, factor in enumerate(encoder.factors_):
        lo, hi = encoder.offsets_[j], encoder.offsets_[j + 1]
        pts = [int(p) for p in slot_points[lo:hi]]
        by_slot = dict(zip(factor.slots, pts, strict=True))
        reference = by_slot[factor.slots[int(np.argmax(factor.counts))]]
        baseline = min(pts) if method == "minmax" else reference
        unseen = int(baseline + unseen_points)
        missing = by_slot.get(MISSING, unseen)
        group = groups.get(factor.name, "FIT")
        if factor.kind == "numeric":
            # slots: bins, then special values (matched before the bins), then missing; a bin
            # no training lead fell in (all were special or missing) scores as unseen
            bins = [by_slot[s] if c else unseen
                    for s, c in zip(factor.slots[:factor.n_bins], factor.counts, strict=False)]
            special = {special_key(v): pts[factor.n_bins + k]
                       for k, v in enumerate(factor.special)}
            factors.append(FactorRules(factor.name, group, "numeric", edges=list(factor.edges),
                                       bin_points=bins, missing_points=missing,
                                       unseen_points=unseen, special_points=special))
            continue
        levels = {s: by_slot[s] for s in factor.slots if s not in (OTHER, MISSING)}
        if OTHER in by_slot:
            levels.update({lvl: by_slot[OTHER] for lvl in factor.rare_levels})
        factors.append(FactorRules(factor.name, group, "categorical", levels=levels,
                                   missing_points=missing, unseen_points=unseen))
    return factors


def fit_probability_map(total: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``P(won | total)`` as a one-variable logistic regression on the integer total."""
    if np.ptp(total) == 0:
        rate = float(np.clip(np.mean(y), 1e-6, 1 - 1e-6))
        return math.log(rate / (1 - rate)), 0.0
    # the same likelihood from each distinct (total, outcome) pair, weighted by its leads:
    # a few hundred rows instead of one per lead
    totals, codes = np.unique(np.asarray(total), return_inverse=True)
    won = np.bincount(codes, weights=np.asarray(y, dtype=float), minlength=len(totals))
    leads = np.bincount(codes, minlength=len(totals)).astype(float)
    x = np.concatenate([totals, totals]).astype(float).reshape(-1, 1)
    outcome = np.repeat([1, 0], len(totals))
    weight = np.concatenate([won, leads - won])
    model = LogisticRegression(C=1e6, max_iter=1000, tol=1e-8)
    model.fit(x[weight > 0], outcome[weight > 0], sample_weight=weight[weight > 0])
    return float(model.intercept_[0]), float(model.coef_[0, 0])


def ks_statistic(y: np.ndarray, score: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between the score distributions of won and lost leads."""
    y = np.asarray(y, dtype=int)
    if y.min() == y.max():
        return float("nan")
    return float(stats.ks_2samp(score[y == 1], score[y == 0]).statistic)


def safe_auc(y: np.ndarray, score: np.ndarray) -> float:
    y = np.asarray(y, dtype=int)
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def rounding_fidelity(y: np.ndarray, unrounded: np.ndarray, rounded: np.ndarray,
                      threshold: float) -> dict[str, float]:
    """What rounding cost: AUC, KS, Spearman before/after, largest per-lead change, and
    how many leads cross the SDR-ready threshold because of rounding."""
    rho = stats.spearmanr(unrounded, rounded).statistic if np.ptp(rounded) > 0 else float("nan")
    auc_before, auc_after = safe_auc(y, unrounded), safe_auc(y, rounded)
    crossed = int(((unrounded >= threshold) != (rounded >= threshold)).sum())
    return {
        "auc_unrounded": auc_before, "auc_rounded": auc_after,
        "rounding_auc_loss": auc_before - auc_after,
        "ks_unrounded": ks_statistic(y, unrounded), "ks_rounded": ks_statistic(y, rounded),
        "spearman": float(rho),
        "max_abs_diff_points": float(np.max(np.abs(unrounded - rounded))) if len(y) else 0.0,
        "threshold_crossings": crossed,
    }


class PointsScorecard(ClassifierMixin, TransformerMixin, BaseEstimator):
    """A logistic regression turned into an integer points table.

    ``fit`` learns levels/bins, the regularised coefficients and the points; ``points(X)``
    gives the total per lead, ``transform(X)`` the points per factor (their row sums equal
    ``points`` when no cap is set), ``decision_function`` the log-odds of the integer total
    and ``predict_proba`` its probability (``predict`` is the class with probability > 0.5).
    ``X`` is a DataFrame (one column per factor) or a 2-D array (factors ``x0``, ``x1``, ...);
    NaN and text levels are allowed, sparse input is not. Any two labels work for ``y``:
    ``classes_[1]`` (the larger, e.g. ``1`` or ``"won"``) is the converted class.
    ``special_values`` (``{column: [numbers]}``, the config's ``columns.special_values``)
    gives sentinel values of numeric columns a level, and points, of their own
    (``FactorRules.special_points``); see :mod:`pipeline.analysis.levels`.

    Fitted attributes: ``encoder_``, ``fit_`` (coefficients, chosen C), ``scaled_`` (unrounded
    points), ``slot_points_``, ``rules_`` (:class:`PointsRules`), ``classes_``,
    ``n_features_in_``, ``feature_names_in_`` (DataFrame input with string column names only)
    and ``n_iter_`` (solver iterations of the final fit).
    """

    def __init__(self, *, groups: dict[str, str] | None = None, numeric: list[str] | None = None,
                 n_bins: int = 5, min_leads: int = 30,
                 c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0), cv_folds: int = 5,
                 scaling: str = "pdo", pdo: float = 20.0, base_score: float | None = None,
                 base_odds: float | None = None, score_range: tuple[int, int] = (0, 100),
                 cap: tuple[int, int] | None = None, unseen_points: int = 0,
                 missing_values: tuple[str, ...] = (), max_iter: int = 2000,
                 random_state: int = 0,
                 max_cv_rows: int | None = None,
                 special_values: dict[str, list[float]] | None = None,
                 trend: str | dict[str, str] = "auto", sign_consistent: bool = True,
                 locked: dict[str, int] | None = None):
        self.groups = groups
        self.numeric = numeric
        self.n_bins = n_bins
        self.min_leads = min_leads
        self.c_grid = c_grid
        self.cv_folds = cv_folds
        self.scaling = scaling
        self.pdo = pdo
        self.base_score = base_score
        self.base_odds = base_odds
        self.score_range = score_range
        self.cap = cap
        self.unseen_points = unseen_points
        self.missing_values = missing_values
        self.max_iter = max_iter
        self.random_state = random_state
        self.max_cv_rows = max_cv_rows
        self.special_values = special_values
        self.trend = trend
        self.sign_consistent = sign_consistent
        self.locked = locked

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.classifier_tags.multi_class = False
        tags.transformer_tags = TransformerTags(preserves_dtype=[])
        return tags

    def fit(self, X: object, y: object, *, lift: pd.DataFrame | None = None) -> PointsScorecard:
        """Learn the points table from leads ``X`` and their outcome ``y`` (two classes).

        ``lift`` (the analysis' :func:`pipeline.analysis.lift.lift_table`) says which levels are
        significant for sign consistency; without it the significance is computed from
        ``X`` (see :func:`pipeline.model.constraints.level_evidence`)."""
        name = type(self).__name__
        if self.scaling not in ("pdo", "minmax"):
            raise ValueError(f"{name}: scaling must be 'pdo' or 'minmax', got {self.scaling!r}")
        frame = check_frame(self, X, reset=True)
        if y is None:
            raise ValueError(f"{name} requires y to be passed, but the target y is None")
        y_arr = column_or_1d(y, warn=True)
        check_consistent_length(frame, y_arr)
        if y_arr.dtype.kind in "fc":
            assert_all_finite(y_arr, input_name="y")
        check_classification_targets(y_arr)
        classes = np.unique(y_arr)
        if len(classes) > 2:
            raise ValueError(f"Only binary classification is supported: {name} scores won vs "
                             f"lost, got {len(classes)} classes {classes.tolist()[:10]}")
        if len(classes) < 2:
            raise ValueError(f"{name} needs two classes (won and lost) to fit, got one class "
                             f"only: {classes.tolist()}")
        self.classes_ = classes
        y01 = (y_arr == classes[1]).astype(int)
        self.encoder_ = FactorEncoder(n_bins=self.n_bins, min_leads=self.min_leads,
                                      numeric=self.numeric,
                                      missing_values=tuple(self.missing_values),
                                      special_values=self.special_values).fit(frame)
        design = self.encoder_.transform(frame)
        self.fit_: RegularisedFit = fit_regularised(
            design, y01, c_grid=list(self.c_grid), folds=self.cv_folds, seed=self.random_state,
            max_cv_rows=self.max_cv_rows,
            max_iter=self.max_iter)
        self.trusted_: TrustedFit = fit_trusted(
            self.encoder_, design, y01, C=self.fit_.C, start_coef=self.fit_.coef,
            start_intercept=self.fit_.intercept, trends=self._trends(),
            sign_consistent=bool(self.sign_consistent), locked=self._locked_slots(),
            min_leads=self.min_leads, margin=self._margin(), max_iter=self.max_iter, lift=lift,
            # other levels: held at the average at least; sign_rounding rounds them across
            level_margin=0.0 if self.scaling == "pdo" else self._margin())
        self.fit_ = replace(self.fit_, coef=self.trusted_.coef,
                            intercept=self.trusted_.intercept,
                            n_iter=self.fit_.n_iter + self.trusted_.n_iter)
        self.n_iter_ = np.asarray([self.fit_.n_iter], dtype=np.int32)
        self.scaled_ = scale_points(self.fit_.coef, self.fit_.intercept, self.encoder_,
                                    scaling=self.scaling, pdo=self.pdo, base_score=self.base_score,
                                    base_odds=self.base_odds, score_range=tuple(self.score_range))
        self.slot_points_ = round_points(self.scaled_, self.encoder_)
        if self.sign_consistent and self.scaling == "pdo":
            self.slot_points_ = sign_rounding(self.encoder_, self.scaled_.values,
                                              self.slot_points_, self.trusted_)
        groups = dict(self.groups or {})
        factors = build_rules(self.encoder_, self.slot_points_, groups=groups,
                              unseen_points=self.unseen_points,
                              missing_values=list(self.missing_values), scaling=self.scaled_.params)
        # adjacent bins that rounded to the same points are one rule (scores unchanged)
        factors = [merge_equal_bins(f) for f in factors]
        cap = self.cap
        rules = PointsRules(factors=factors, missing_values=list(self.missing_values),
                            score_min=None if cap is None else int(cap[0]),
                            score_max=None if cap is None else int(cap[1]),
                            scaling=_jsonable(self.scaled_.params))
        total = points_matrix(rules, frame).sum(axis=1)
        if cap is not None:
            total = np.clip(total, cap[0], cap[1])
        intercept, slope = fit_probability_map(total, y01)
        self.rules_ = replace(rules, prob_intercept=intercept, prob_slope=slope)
        return self

    def _trends(self) -> dict[str, str]:
        """The requested trend of every numeric factor: ``trend`` when a string, else the
        dict's entry (``auto`` for numeric factors it does not name)."""
        numeric = [f.name for f in self.encoder_.factors_ if f.kind == "numeric"]
        given = self.trend if isinstance(self.trend, dict) else {}
        default = self.trend if isinstance(self.trend, str) else "auto"
        out = {name: str(given.get(name, default)) for name in numeric}
        bad = {k: v for k, v in {**({} if isinstance(self.trend, dict) else {"trend": default}),
                                  **out}.items() if v not in TRENDS}
        if bad:
            raise ValueError(f"{type(self).__name__}: trend must be one of {list(TRENDS)}, "
                             f"got {bad}")
        return out

    def _margin(self) -> float:
        """How far (log odds) a sign-bounded bin of a monotone trend sits beyond its
        factor's average: one point at pdo scaling, so rounding cannot carry it back across
        (at most 0.05: a coarse pdo would push bins far from their fit); 0.01 at minmax."""
        return min(math.log(2) / self.pdo, 0.05) if self.scaling == "pdo" else 0.01

    def _locked_slots(self) -> dict[int, float]:
        """``locked`` (``{"factor = level": points}``) as design slot -> log odds ratio
        against the factor's reference (``points * ln 2 / pdo``). A factor not among the
        inputs is skipped (selection dropped it); an unknown level is an error."""
        if not self.locked:
            return {}
        if self.scaling != "pdo":
            raise ValueError("points.locked needs pdo scaling (locked points are relative to "
                             "the factor's reference level)")
        out: dict[int, float] = {}
        factors = self.encoder_.factors_
        for key, value in self.locked.items():
            match = [(j, f) for j, f in enumerate(factors) if str(key).startswith(f"{f.name} = ")]
            if not match:
                continue
            j, factor = max(match, key=lambda m: len(m[1].name))
            level = str(key)[len(factor.name) + 3:]
            if level not in factor.slots:
                raise ValueError(f"points.locked: {key!r}: {factor.name!r} has no level "
                                 f"{level!r} (levels: {factor.slots})")
            slot = int(self.encoder_.offsets_[j] + factor.slots.index(level))
            if slot == reference_slots(self.encoder_)[j]:
                if float(value) != 0:
                    raise ValueError(f"points.locked: {key!r} is its factor's reference level, "
                                     "which scores 0 by definition")
                continue
            out[slot] = float(value) * math.log(2) / self.pdo
        return out

    def _frame(self, X: object) -> pd.DataFrame:
        """Fitted check + input validation (same columns as in ``fit``) for every predictor."""
        check_is_fitted(self, "rules_")
        return check_frame(self, X, reset=False)

    def unrounded_points(self, X: object) -> np.ndarray:
        """Total points before rounding (for the fidelity report)."""
        frame = self._frame(X)
        codes = self.encoder_.codes(frame)  # once: the design is built from the same codes
        total = np.asarray(self.encoder_.design(codes) @ self.scaled_.values).ravel()
        # unseen levels get the (integer) unseen points, as in the rounded table
        for j, factor in enumerate(self.rules_.factors):
            total = total + np.where(codes[:, j] < 0, factor.unseen_points, 0)
        return total

    def transform(self, X: object) -> pd.DataFrame:
        """Points per factor (columns in table order); rows sum to :meth:`points` (no cap)."""
        frame = self._frame(X)
        return pd.DataFrame(points_matrix(self.rules_, frame), index=frame.index,
                            columns=[f.name for f in self.rules_.factors])

    def points(self, X: object) -> np.ndarray:
        """Integer total per lead (FIT + PAIN, capped when a cap is set)."""
        total = self.transform(X).to_numpy().sum(axis=1)
        if self.cap is not None:
            total = np.clip(total, self.cap[0], self.cap[1])
        return total

    def decision_function(self, X: object) -> np.ndarray:
        """Log-odds of conversion for the integer total: ``prob_intercept + prob_slope * T``
        (monotone in the points whenever more points mean more conversions)."""
        total = self.points(X).astype(float)
        return self.rules_.prob_intercept + self.rules_.prob_slope * total

    def predict_proba(self, X: object) -> np.ndarray:
        """``[P(classes_[0]), P(classes_[1])]`` per lead, from the integer total."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X: object) -> np.ndarray:
        """``classes_[1]`` where the probability of conversion is above 0.5."""
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]

    def points_table(self) -> pd.DataFrame:
        """Tidy table: factor, group, kind, level, points, leads, coef, unrounded_points."""
        check_is_fitted(self, "rules_")
        rows = []
        for j, factor in enumerate(self.encoder_.factors_):
            rule = self.rules_.factors[j]
            lo = self.encoder_.offsets_[j]
            for s, slot in enumerate(factor.slots):
                rows.append({
                    "factor": factor.name, "group": rule.group, "kind": factor.kind,
                    "level": slot, "points": int(self.slot_points_[lo + s]),
                    "leads": int(factor.counts[s]), "coef": float(self.fit_.coef[lo + s]),
                    "unrounded_points": round(float(self.scaled_.values[lo + s]), 6),
                })
            if "(unseen)" not in factor.slots:
                rows.append({"factor": factor.name, "group": rule.group, "kind": factor.kind,
                             "level": "(unseen)", "points": rule.unseen_points, "leads": 0,
                             "coef": 0.0, "unrounded_points": float(rule.unseen_points)})
        return pd.DataFrame(rows, columns=["factor", "group", "kind", "level", "points", "leads",
                                           "coef", "unrounded_points"])


def _jsonable(params: dict) -> dict:
    out = {}
    for key, value in params.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float):
            value = round(value, 10)
        out[key] = value
    return out


def calibration_table(y: np.ndarray, total: np.ndarray, rules: PointsRules, *, bands: int = 10
                      ) -> pd.DataFrame:
    """Observed conversion per score band (Wilson 95%) against the predicted probability.

    Columns: band, points_low, points_high, leads, conversions, observed_rate, ci_low,
    ci_high, predicted_rate.
    """
    y = np.asarray(y, dtype=int)
    edges = np.unique(np.quantile(total, np.linspace(0, 1, bands + 1)))
    idx = np.clip(np.searchsorted(edges, total, side="right") - 1, 0, max(len(edges) - 2, 0))
    rows = []
    for b in np.unique(idx):
        mask = idx == b
        n, k = int(mask.sum()), int(y[mask].sum())
        low, high = wilson_interval(k, n)
        probs = _once_per_value(rules.probability, total[mask])
        rows.append({"band": int(b) + 1, "points_low": int(total[mask].min()),
                     "points_high": int(total[mask].max()), "leads": n, "conversions": k,
                     "observed_rate": k / n, "ci_low": low, "ci_high": high,
                     "predicted_rate": float(np.mean(probs))})
    return pd.DataFrame(rows)


def _once_per_value(fn: Callable[[float], float], values: np.ndarray) -> np.ndarray:
    """``[fn(v) for v in values]`` as an array, calling ``fn`` once per distinct value (point
    totals repeat a lot)."""
    uniques, inverse = np.unique(values, return_inverse=True)
    return np.array([fn(u) for u in uniques], dtype=float)[inverse]


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
