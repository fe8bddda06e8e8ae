"""Audit points tables on a holdout: the figures people compare two rule sets by.

Every table (the learned one, a company's hand-made CRM rules, a table edited by hand) is
read the same way, through its *slots*: the outcomes one factor's rule can give a lead, in a
fixed order (:func:`slot_labels`):

* categorical: its levels (sorted), then ``(missing)``, then ``(unseen)``;
* numeric: its special values (ascending, ``= 999``), its bins (``<= 3``, ``(3, 7]``, ``> 7``),
  then ``(missing)``.

A lead's slot per factor (:func:`slot_codes`) follows :func:`pipeline.model.reference.factor_points`
exactly (tests compare the two lead by lead); a numeric factor's value that is not a number
counts as missing, as the scorers' feature builder coerces it. With the slots, a table's score
is a lookup and a sum, so the editor page recomputes the figures in JavaScript from the same
codes (:func:`pipeline.reports.editor`).

The figures (:func:`audit_tables`), each on the holdout, of tables scored as they are:

* ``auc``: ROC AUC of the total points (ties count one half, Mann-Whitney);
* ``brier_calibrated``: Brier score of ``1 / (1 + exp(-(a + b * points)))`` with ``a, b`` the
  maximum-likelihood logistic fit of conversion on points over the *training* leads
  (:func:`calibrate`): a table without probabilities (a CRM sheet) is compared fairly;
* ``sdr_ready``, ``sdr_ready_share``, ``sdr_ready_per_week``, ``close_rate``: the leads at or
  above the table's own SDR-ready threshold (spam gate applied) and how many of them closed;
* ``close_rate_at_volume``: the close rate of the ``volume`` best-scored leads, ``volume`` being
  the reference table's SDR-ready count; leads tied at the cut count in proportion (the
  expected close rate when the tied leads are taken at random: :func:`close_rate_at_volume`);
* ``contradictions``: slots whose own lift is significant on the training leads
  (level-vs-rest test, Benjamini-Hochberg over all slots of the table, below ``alpha``) but
  whose points lie on the other side of their factor's lead-weighted average points
  (:func:`contradictions`): the same rule as :mod:`pipeline.model.trust` applies to a fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.analysis.lift import benjamini_hochberg, level_vs_rest_p_values
from pipeline.model.calibration import safe_auc
from pipeline.model.reference import canonical_str, is_missing
from pipeline.model.rules import SPAM_COLUMN, FactorRules, PointsRules

MISSING_SLOT = "(missing)"
UNSEEN_SLOT = "(unseen)"
EVIDENCE_COLUMNS = ["factor", "group", "level", "points", "leads", "conversions",
                    "conversion_rate", "lift", "p_value", "p_adjusted", "side"]
CONTRADICTION_COLUMNS = ["factor", "level", "leads", "conversion_rate", "overall_rate", "points",
                         "factor_average_points"]
SUMMARY_COLUMNS = ["table", "factors", "rules", "auc", "brier_calibrated", "brier_own",
                   "sdr_threshold", "sdr_ready", "sdr_ready_share", "sdr_ready_per_week",
                   "close_rate", "close_rate_at_volume", "contradictions"]


# --------------------------------------------------------------------------- slots


def slot_labels(factor: FactorRules) -> list[str]:
    """The slots of ``factor`` in their fixed order (see the module docstring)."""
    if factor.kind == "categorical":
        return [*sorted(factor.levels), MISSING_SLOT, UNSEEN_SLOT]
    return [*(label for _, _, label in factor.special_values()), *factor.bin_labels(),
            MISSING_SLOT]


def slot_points(factor: FactorRules) -> np.ndarray:
    """Points of each slot of ``factor``, aligned with :func:`slot_labels`."""
    if factor.kind == "categorical":
        values = [factor.levels[k] for k in sorted(factor.levels)]
        values += [factor.missing_points, factor.unseen_points]
    else:
        values = [p for _, p, _ in factor.special_values()] + list(factor.bin_points)
        values.append(factor.missing_points)
    return np.asarray(values, dtype=np.int64)


def slot_paths(factor: FactorRules) -> list[list[str | int]]:
    """Where each slot's points live in the factor's JSON (``["levels", "Google"]``,
    ``["bin_points", 2]``, ``["missing_points"]``): how an edit is written back."""
    if factor.kind == "categorical":
        return [*(["levels", k] for k in sorted(factor.levels)), ["missing_points"],
                ["unseen_points"]]
    specials = sorted(factor.special_points, key=float)
    return [*(["special_points", k] for k in specials),
            *(["bin_points", i] for i in range(len(factor.bin_points))), ["missing_points"]]


def with_slot_points(factor: FactorRules, points: list[int] | np.ndarray) -> FactorRules:
    """``factor`` with its slots' points replaced by ``points`` (aligned with the slots)."""
    data = {"levels": dict(factor.levels), "bin_points": list(factor.bin_points),
            "special_points": dict(factor.special_points),
            "missing_points": factor.missing_points, "unseen_points": factor.unseen_points}
    for path, value in zip(slot_paths(factor), points, strict=True):
        if len(path) == 1:
            data[path[0]] = int(value)
        else:
            data[path[0]][path[1]] = int(value)
    return FactorRules(factor.name, factor.group, factor.kind, data["levels"],
                       list(factor.edges), data["bin_points"], data["missing_points"],
                       data["unseen_points"], data["special_points"])


def slot_codes(factor: FactorRules, values: pd.Series, missing_values: list[str]
               ) -> np.ndarray:
    """The slot (index into :func:`slot_labels`) of each value, as
    :func:`pipeline.model.reference.factor_points` matches it."""
    labels = slot_labels(factor)
    missing = labels.index(MISSING_SLOT)
    series = pd.Series(values).reset_index(drop=True)
    if factor.kind == "categorical":
        series = series.astype(object)
        booleans = series.map(lambda v: isinstance(v, bool)).to_numpy(dtype=bool)
        if booleans.any():  # True == 1.0 to pandas: matched as "true", as the reference does
            series = series.where(~booleans, series.map(canonical_str))
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        position = {level: i for i, level in enumerate(sorted(factor.levels))}
        unseen = labels.index(UNSEEN_SLOT)

        def slot(value: object) -> int:
            if is_missing(value, missing_values):
                return missing
            key = value if isinstance(value, str) else canonical_str(value)
            return position.get(key, unseen)

        per_value = np.array([slot(v) for v in uniques] + [missing], dtype=np.int64)
        return per_value[codes]  # code -1 (NaN / None) takes the last: missing
    if series.dtype == object:
        text = series.map(lambda v: isinstance(v, str) and (v == "" or v in missing_values))
        series = series.where(~text.astype(bool))
    x = pd.to_numeric(series, errors="coerce").to_numpy(float)
    out = np.full(len(x), missing, dtype=np.int64)
    ok = ~np.isnan(x)
    specials = factor.special_values()
    n_special = len(specials)
    out[ok] = n_special + np.searchsorted(np.asarray(factor.edges, float), x[ok], side="left")
    for i, (value, _, _) in enumerate(specials):
        out[ok & (x == value)] = i
    return out


@dataclass(frozen=True)
class CodedTable:
    """A table's slots over a set of leads: per factor the slot of each lead and the slot
    points; ``spam`` marks the leads the spam gate keeps from SDR-ready."""

    rules: PointsRules
    labels: list[list[str]]
    points: list[np.ndarray]
    codes: list[np.ndarray]
    spam: np.ndarray

    def totals(self, points: list[np.ndarray] | None = None) -> np.ndarray:
        """Total points per lead (with ``points`` in place of the table's own, when given),
        clipped to the table's cap."""
        points = self.points if points is None else points
        total = np.zeros(len(self.spam), dtype=np.int64)
        for pts, codes in zip(points, self.codes, strict=True):
            total += np.asarray(pts, dtype=np.int64)[codes]
        if self.rules.score_min is not None:
            total = np.maximum(total, self.rules.score_min)
        if self.rules.score_max is not None:
            total = np.minimum(total, self.rules.score_max)
        return total


def missing_columns(rules: PointsRules, frame: pd.DataFrame) -> list[str]:
    """Factors (and the spam gate's column) of ``rules`` that ``frame`` lacks."""
    return [c for c in rules.input_columns() if c not in frame.columns]


def code_table(rules: PointsRules, frame: pd.DataFrame) -> CodedTable:
    """The slots of ``rules`` over the leads of ``frame`` (every factor column present:
    :func:`missing_columns` says which are not)."""
    absent = missing_columns(rules, frame)
    if absent:
        raise KeyError(f"the leads have no column {', '.join(absent)}")
    codes = [slot_codes(f, frame[f.name], rules.missing_values) for f in rules.factors]
    spam = np.zeros(len(frame), dtype=bool)
    if rules.spam_gate:
        spam = np.array([rules.is_spam(v) for v in frame[SPAM_COLUMN].astype(object)],
                        dtype=bool)
    return CodedTable(rules, [slot_labels(f) for f in rules.factors],
                      [slot_points(f) for f in rules.factors], codes, spam)


# --------------------------------------------------------------------------- evidence


def evidence(coded: CodedTable, y: np.ndarray) -> pd.DataFrame:
    """One row per slot of the table over the leads ``coded`` was made from, with their
    outcome ``y``: :data:`EVIDENCE_COLUMNS`. ``side`` is +1 / -1 when the slot converts
    above / below the overall rate, ``p_adjusted`` Benjamini-Hochberg over every slot with
    leads (NaN for a slot without)."""
    y = np.asarray(y, dtype=np.int64)
    overall = float(y.mean()) if len(y) else 0.0
    rows = []
    for factor, labels, pts, codes in zip(coded.rules.factors, coded.labels, coded.points,
                                          coded.codes, strict=True):
        leads = np.bincount(codes, minlength=len(labels))
        wins = np.bincount(codes, weights=y, minlength=len(labels)).astype(np.int64)
        for i, label in enumerate(labels):
            rows.append({"factor": factor.name, "group": factor.group, "level": label,
                         "points": int(pts[i]), "leads": int(leads[i]),
                         "conversions": int(wins[i])})
    out = pd.DataFrame(rows, columns=EVIDENCE_COLUMNS[:6])
    n = out["leads"].to_numpy(float)
    k = out["conversions"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    p = level_vs_rest_p_values(k, n, total_conversions=int(y.sum()), total_leads=len(y))
    p = np.where(n > 0, p, np.nan)
    side = np.where(n > 0, np.sign(np.round(rate - overall, 12)), 0.0)
    return out.assign(conversion_rate=rate,
                      lift=rate / overall if overall > 0 else np.nan,
                      p_value=p, p_adjusted=benjamini_hochberg(p),
                      side=np.nan_to_num(side).astype(np.int64))


def contradictions(table: pd.DataFrame, *, overall_rate: float, alpha: float = 0.05
                   ) -> pd.DataFrame:
    """The slots of an :func:`evidence` table (its ``points`` column as they are) whose lift
    is significant (``p_adjusted < alpha``) and whose points lie strictly on the other side
    of their factor's lead-weighted average points. Columns: :data:`CONTRADICTION_COLUMNS`."""
    rows = []
    for _, part in table.groupby("factor", sort=False):
        n = part["leads"].to_numpy(float)
        pts = part["points"].to_numpy(float)
        average = float(np.sum(n * pts) / n.sum()) if n.sum() > 0 else 0.0
        flagged = (part["p_adjusted"] < alpha).to_numpy() & (part["side"] != 0).to_numpy() \
            & ((pts - average) * part["side"].to_numpy() < 0)
        for row in part[flagged].itertuples():
            rows.append({"factor": row.factor, "level": row.level, "leads": int(row.leads),
                         "conversion_rate": float(row.conversion_rate),
                         "overall_rate": overall_rate, "points": int(row.points),
                         "factor_average_points": round(average, 2)})
    return pd.DataFrame(rows, columns=CONTRADICTION_COLUMNS)


# --------------------------------------------------------------------------- figures


def calibrate(points: np.ndarray, y: np.ndarray, *, iterations: int = 100
              ) -> tuple[float, float]:
    """``(a, b)`` maximising the likelihood of ``P(y=1) = 1 / (1 + exp(-(a + b * points)))``
    (Newton's method; ``b = 0`` when the points do not vary or separate the classes
    perfectly, then ``a`` is the log odds of the base rate)."""
    x = np.asarray(points, dtype=float)
    y = np.asarray(y, dtype=float)
    rate = float(np.clip(y.mean(), 1e-9, 1 - 1e-9)) if len(y) else 0.5
    base = (math.log(rate / (1 - rate)), 0.0)
    if len(x) == 0 or np.ptp(x) == 0:
        return base
    centre, spread = float(x.mean()), float(x.std())
    z = (x - centre) / spread
    beta = np.array([base[0], 0.0])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(beta[0] + beta[1] * z)))
        w = p * (1 - p)
        grad = np.array([np.sum(y - p), np.sum((y - p) * z)])
        hess = np.array([[w.sum(), (w * z).sum()], [(w * z).sum(), (w * z * z).sum()]])
        if np.linalg.cond(hess) > 1e12:
            return base
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    if not np.all(np.isfinite(beta)) or abs(beta[1]) > 50:
        return base
    slope = float(beta[1] / spread)
    return float(beta[0] - slope * centre), slope


def logistic(a: float, b: float, points: np.ndarray) -> np.ndarray:
    z = a + b * np.asarray(points, dtype=float)
    return 1.0 / (1.0 + np.exp(-z))


def close_rate_at_volume(total: np.ndarray, y: np.ndarray, volume: int) -> float:
    """Close rate of the ``volume`` best-scored leads; the leads tied at the cut count in
    proportion (each tied lead is taken with the same chance). NaN for a volume of 0."""
    total = np.asarray(total)
    y = np.asarray(y, dtype=float)
    volume = int(min(max(volume, 0), len(total)))
    if volume == 0:
        return float("nan")
    scores = np.sort(np.unique(total))[::-1]
    taken = wins = 0.0
    for s in scores:
        at = total == s
        n, k = float(at.sum()), float(y[at].sum())
        if taken + n <= volume:
            taken, wins = taken + n, wins + k
            if taken == volume:
                break
        else:
            share = (volume - taken) / n
            wins += share * k
            taken = volume
            break
    return wins / volume


def threshold_for_volume(total: np.ndarray, volume: int) -> int:
    """The score whose leads at or above it number closest to ``volume`` (the smaller volume
    on a tie): a threshold for a rule set that brings none."""
    scores = np.unique(np.asarray(total))
    if len(scores) == 0:
        return 0
    counts = np.array([(total >= s).sum() for s in scores])
    gap = np.abs(counts - volume)
    best = np.flatnonzero(gap == gap.min())
    return int(scores[best[-1]])


def holdout_weeks(created_at: pd.Series | None) -> float | None:
    """Weeks the holdout spans (at least one), or None without creation times."""
    if created_at is None or len(created_at) < 2:
        return None
    span = (pd.to_datetime(created_at).max() - pd.to_datetime(created_at).min())
    return max(span.total_seconds() / (7 * 86400), 1.0)


@dataclass(frozen=True)
class AuditResult:
    """:data:`SUMMARY_COLUMNS` per table (``summary``), the contradictions of every table
    (``contradictions``, with a ``table`` column), the reference table's SDR-ready
    ``volume`` the close rates are compared at, and the holdout's size and base rate."""

    summary: pd.DataFrame
    contradictions: pd.DataFrame
    reference: str
    volume: int
    holdout_leads: int
    holdout_rate: float
    weeks: float | None

    def to_dict(self) -> dict:
        def clean(records: list[dict]) -> list[dict]:
            return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                     for k, v in r.items()} for r in records]

        return {"reference": self.reference, "volume": self.volume,
                "holdout_leads": self.holdout_leads, "holdout_rate": self.holdout_rate,
                "weeks": self.weeks,
                "tables": clean(self.summary.to_dict(orient="records")),
                "contradictions": clean(self.contradictions.to_dict(orient="records"))}


def audit_tables(tables: Mapping[str, PointsRules], train: pd.DataFrame, holdout: pd.DataFrame,
                 *, reference: str, label: str = "converted", alpha: float = 0.05,
                 weeks: float | None = None,
                 frames: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]] | None = None
                 ) -> AuditResult:
    """The figures of the module docstring for each of ``tables`` (name -> rules), the
    training leads ``train`` giving the calibration and the lift evidence, the leads
    ``holdout`` the figures; ``reference`` names the table whose SDR-ready volume the close
    rates are compared at. Both frames hold every factor column and ``label``; ``frames``
    gives a table its own ``(train, holdout)`` (same leads and order; its event counts)."""
    if reference not in tables:
        raise ValueError(f"reference {reference!r} is not one of the tables {list(tables)}")
    y_train = train[label].to_numpy(dtype=np.int64)
    y_hold = holdout[label].to_numpy(dtype=np.int64)
    scored = {}
    for name, rules in tables.items():
        own_train, own_holdout = (frames or {}).get(name, (train, holdout))
        coded_hold = code_table(rules, own_holdout)
        total = coded_hold.totals()
        ready = (total >= rules.sdr_threshold) & ~coded_hold.spam
        scored[name] = (rules, code_table(rules, own_train), total, ready)
    volume = int(scored[reference][3].sum())
    rows, found = [], []
    overall = float(y_train.mean()) if len(y_train) else 0.0
    for name, (rules, coded_train, total, ready) in scored.items():
        a, b = calibrate(coded_train.totals(), y_train)
        own = (np.array([rules.probability(t) for t in total]) if rules.prob_slope
               else None)
        bad = contradictions(evidence(coded_train, y_train), overall_rate=overall, alpha=alpha)
        found.append(bad.assign(table=name))
        n_ready = int(ready.sum())
        rows.append({
            "table": name, "factors": len(rules.factors),
            "rules": int(sum(len(slot_labels(f)) for f in rules.factors)),
            "auc": safe_auc(y_hold, total),
            "brier_calibrated": float(np.mean((logistic(a, b, total) - y_hold) ** 2)),
            "brier_own": float(np.mean((own - y_hold) ** 2)) if own is not None else math.nan,
            "sdr_threshold": int(rules.sdr_threshold), "sdr_ready": n_ready,
            "sdr_ready_share": n_ready / max(len(total), 1),
            "sdr_ready_per_week": n_ready / weeks if weeks else math.nan,
            "close_rate": float(y_hold[ready].mean()) if n_ready else math.nan,
            "close_rate_at_volume": close_rate_at_volume(total, y_hold, volume),
            "contradictions": len(bad),
        })
    bad_all = pd.concat(found, ignore_index=True) if found else pd.DataFrame()
    bad_all = bad_all[["table", *CONTRADICTION_COLUMNS]]
    return AuditResult(pd.DataFrame(rows, columns=SUMMARY_COLUMNS), bad_all, reference, volume,
                       len(y_hold), float(y_hold.mean()) if len(y_hold) else math.nan, weeks)
