"""The points table as a scikit-learn estimator: :class:`PointsScorecard` learns the levels,
the regularised and trust-constrained coefficients (:mod:`pipeline.model.fit`,
:mod:`pipeline.model.constraints`), scales and rounds them to integer points
(:mod:`pipeline.model.scaling`) and maps a total to a probability
(:mod:`pipeline.model.calibration`); its ``rules_`` is the points-table contract.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils import TransformerTags, assert_all_finite
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from pipeline.model.calibration import fit_probability_map
from pipeline.model.constraints import TrustedFit, fit_trusted, sign_rounding
from pipeline.model.encoding import FactorEncoder, check_frame
from pipeline.model.fit import RegularisedFit, fit_regularised, reference_slots
from pipeline.model.rules import PointsRules, merge_equal_bins
from pipeline.model.scaling import build_rules, round_points, scale_points
from pipeline.model.trends import TRENDS
from pipeline.scoring.factor_lookup import points_matrix


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
        ``X`` (see :func:`pipeline.model.evidence.level_evidence`)."""
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
