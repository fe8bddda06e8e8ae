"""What the trust constraints of the points table cost and changed (``trust.csv``).

Pure functions: :func:`trust_table` tabulates, one row per constraint, what it changed and
its AUC cost (AUC with every constraint minus AUC with that one lifted, the others kept;
the last row lifts them all); :func:`contradictions` lists the levels whose points argue
with their own lift, each with the factor that explains it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.model.constraints import against_lift, factor_averages
from pipeline.model.parametrisation import THIN_LEADS, reference_slot
from pipeline.model.trends import direction_changes

TRUST_COLUMNS = ["constraint", "changed", "auc", "auc_without", "auc_cost"]
CONTRADICTION_COLUMNS = ["factor", "level", "leads", "conversion_rate", "overall_rate",
                         "points", "factor_average_points", "explained_by", "association"]


@dataclass(frozen=True)
class ConstraintEffect:
    """One constraint: its name, what it changed (text) and the AUC without it."""

    constraint: str
    changed: str
    auc_without: float


def trust_table(auc: float, effects: list[ConstraintEffect]) -> pd.DataFrame:
    """Rows ``constraint, changed, auc, auc_without, auc_cost`` with
    ``auc_cost = auc_without - auc`` (positive: the constraint costs AUC)."""
    rows = [{"constraint": e.constraint, "changed": e.changed, "auc": float(auc),
             "auc_without": float(e.auc_without), "auc_cost": float(e.auc_without) - float(auc)}
            for e in effects]
    return pd.DataFrame(rows, columns=TRUST_COLUMNS)


def _pair_strength(pairwise: pd.DataFrame) -> dict[tuple[str, str], float]:
    """``|value|`` of each pairwise association, both orders."""
    out: dict[tuple[str, str], float] = {}
    for a, b, v in zip(pairwise["attribute_a"], pairwise["attribute_b"], pairwise["value"],
                       strict=True):
        if pd.notna(v):
            out[(str(a), str(b))] = out[(str(b), str(a))] = abs(float(v))
    return out


def contradictions(scorecard: object, pairwise: pd.DataFrame | None = None, *,
                   alpha: float = 0.05, tol: float = 1e-3) -> pd.DataFrame:
    """Levels of a fitted :class:`pipeline.model.points.PointsScorecard` whose own lift is
    significant (BH-adjusted level-vs-rest p below ``alpha``) but whose unrounded points lie
    on the other side of their factor's lead-weighted average points (by more than ``tol``
    log odds: the solver's slack), each with
    ``explained_by``: the other factor of the table most associated with the level's factor
    (largest ``|value|`` in ``pairwise``,
    :func:`pipeline.analysis.associations.pairwise_associations`)
    and that association. Columns: :data:`CONTRADICTION_COLUMNS`."""
    encoder, coef = scorecard.encoder_, scorecard.fit_.coef
    evidence = scorecard.trusted_.evidence
    scale = float(scorecard.scaled_.params.get("factor", 1.0))
    names = [f.name for f in encoder.factors_]
    strength = _pair_strength(pairwise) if pairwise is not None and len(pairwise) else {}
    averages = factor_averages(encoder, coef, evidence.leads)
    rows = []
    for s in against_lift(encoder, coef, evidence, alpha=alpha, tol=tol):
        j = int(np.searchsorted(encoder.offsets_, s, side="right") - 1)
        factor = encoder.factors_[j]
        others = [(strength.get((factor.name, o), float("nan")), o) for o in names
                  if o != factor.name]
        others = [(v, o) for v, o in others if np.isfinite(v)]
        value, by = max(others) if others else (float("nan"), "")
        ref = reference_slot(encoder, j)
        rows.append({
            "factor": factor.name, "level": factor.slots[s - encoder.offsets_[j]],
            "leads": int(evidence.leads[s]),
            "conversion_rate": float(evidence.conversions[s] / max(evidence.leads[s], 1)),
            "overall_rate": evidence.overall,
            "points": round(scale * float(coef[s] - coef[ref]), 2),
            "factor_average_points": round(scale * float(averages[s]), 2),
            "explained_by": by, "association": value,
        })
    return pd.DataFrame(rows, columns=CONTRADICTION_COLUMNS)


def trend_changes(scorecard: object) -> pd.DataFrame:
    """Per numeric factor with two bins or more: its fitted trend, how often the points and
    the lift's shrunk rates of its trend's bins (those backed by 30 leads or more; thinner
    bins score as levels of their own) change direction. Columns: factor, trend, split,
    points_direction_changes, shrunk_direction_changes."""
    encoder, points = scorecard.encoder_, scorecard.slot_points_
    evidence, shapes = scorecard.trusted_.evidence, scorecard.trusted_.shapes
    rows = []
    for j, factor in enumerate(encoder.factors_):
        if factor.kind != "numeric" or factor.n_bins < 2:
            continue
        lo = int(encoder.offsets_[j])
        backed = max(THIN_LEADS, scorecard.min_leads)
        bins = [s for s in range(lo, lo + factor.n_bins) if evidence.leads[s] >= backed]
        shape, split = shapes.get(factor.name, ("free", None))
        rows.append({"factor": factor.name, "trend": shape, "split": split,
                     "points_direction_changes": direction_changes(points[bins]),
                     "shrunk_direction_changes": direction_changes(evidence.shrunk[bins])})
    return pd.DataFrame(rows, columns=["factor", "trend", "split", "points_direction_changes",
                                       "shrunk_direction_changes"])
