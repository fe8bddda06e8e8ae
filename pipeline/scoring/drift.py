"""Drift of a scoring batch against the training leads: PSI per factor and for the score.

The population stability index compares two distributions over the same cells::

    PSI = sum_i (b_i - r_i) * ln(b_i / r_i)

with ``r_i`` / ``b_i`` the reference / batch share of cell ``i``; an empty cell gets a share
of ``EPSILON`` so the log stays finite. The cells of a factor are the outcomes its points
table defines (each level or numeric bin, then ``(missing)``, then ``(unseen)``: see
:func:`pipeline.scoring.factor_lookup.factor_slot_codes`), so drift is measured on exactly
what the scorer sees. The total score uses ``bins`` quantile bins of the reference total.

Verdicts follow the usual reading of PSI: ``stable`` below 0.1, ``watch`` from 0.1 to 0.25,
``retrain`` above 0.25.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.model.rules import PointsRules
from pipeline.scoring.factor_lookup import factor_outcome_points, factor_slot_codes
from pipeline.scoring.frame import score_frame

EPSILON = 1e-4
WATCH = 0.1
RETRAIN = 0.25
SCORE_ROW = "(score)"
COLUMNS = ["factor", "psi", "verdict", "unseen_levels", "unseen_leads"]

matplotlib.rcParams["text.parse_math"] = False  # level names are data, not TeX: "$$ budget"


@dataclass(frozen=True)
class DriftReport:
    """``table``: one row per factor (points-table order) then ``(score)``.

    Columns: ``factor``, ``psi``, ``verdict`` (stable | watch | retrain), ``unseen_levels``
    (distinct batch values the points table does not know), ``unseen_leads`` (batch leads
    with such a value). The score row counts no unseen values (0, 0).
    """

    table: pd.DataFrame
    reference_leads: int
    batch_leads: int

    @property
    def worst(self) -> str:
        """The most severe verdict of any row."""
        order = ["stable", "watch", "retrain"]
        return max(self.table["verdict"], key=order.index) if len(self.table) else "stable"


def verdict(psi: float) -> str:
    """stable (< 0.1), watch (0.1 to 0.25) or retrain (> 0.25)."""
    if psi > RETRAIN:
        return "retrain"
    if psi >= WATCH:
        return "watch"
    return "stable"


def psi(reference_counts: np.ndarray, batch_counts: np.ndarray, *,
        epsilon: float = EPSILON) -> float:
    """PSI between two count vectors over the same cells (empty cells floored at ``epsilon``)."""
    ref = np.asarray(reference_counts, dtype=float)
    bat = np.asarray(batch_counts, dtype=float)
    if ref.shape != bat.shape:
        raise ValueError(f"psi: cell counts differ in shape: {ref.shape} vs {bat.shape}")
    if ref.sum() <= 0 or bat.sum() <= 0:
        raise ValueError("psi: the reference and the batch need at least one lead each")
    r = np.maximum(ref / ref.sum(), epsilon)
    b = np.maximum(bat / bat.sum(), epsilon)
    return float(np.sum((b - r) * np.log(b / r)))


def score_bin_edges(reference_points: np.ndarray, bins: int) -> np.ndarray:
    """Inner cut points: distinct quantiles of the reference total (right-closed bins)."""
    qs = np.quantile(np.asarray(reference_points, dtype=float), np.linspace(0, 1, bins + 1))
    return np.unique(qs[1:-1])


def _check(rules: PointsRules, frame: pd.DataFrame, what: str) -> None:
    absent = [f.name for f in rules.factors if f.name not in frame.columns]
    if absent:
        from pipeline.errors import UserError

        raise UserError(f"the {what} lacks columns the points table needs: {absent}",
                        hint="drift is measured on the model's factors; pass a leads file "
                             "with the same columns as the training data")
    if len(frame) == 0:
        from pipeline.errors import UserError

        raise UserError(f"the {what} has no leads: nothing to compare")


def drift_report(rules: PointsRules, reference: pd.DataFrame, batch: pd.DataFrame, *,
                 bins: int = 10) -> DriftReport:
    """PSI per factor (over its points-table outcomes) and for the total score.

    ``reference`` is usually the training leads, ``batch`` the leads about to be scored;
    both must hold every factor column (as :func:`pipeline.scoring.frame.score_frame` reads them).
    """
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    _check(rules, reference, "reference")
    _check(rules, batch, "batch")
    rows = []
    for factor in rules.factors:
        n_cells = len(factor_outcome_points(factor))
        ref_codes = factor_slot_codes(factor, reference[factor.name], rules.missing_values)
        bat_codes = factor_slot_codes(factor, batch[factor.name], rules.missing_values)
        value = psi(np.bincount(ref_codes, minlength=n_cells),
                    np.bincount(bat_codes, minlength=n_cells))
        unseen = bat_codes == n_cells - 1 if factor.kind == "categorical" else \
            np.zeros(len(bat_codes), dtype=bool)
        levels = batch[factor.name][unseen].astype(str).nunique() if unseen.any() else 0
        rows.append({"factor": factor.name, "psi": value, "verdict": verdict(value),
                     "unseen_levels": int(levels), "unseen_leads": int(unseen.sum())})
    ref_total = score_frame(rules, reference)["points"].to_numpy()
    bat_total = score_frame(rules, batch)["points"].to_numpy()
    edges = score_bin_edges(ref_total, bins)
    n_cells = len(edges) + 1
    value = psi(np.bincount(np.searchsorted(edges, ref_total, side="left"), minlength=n_cells),
                np.bincount(np.searchsorted(edges, bat_total, side="left"), minlength=n_cells))
    rows.append({"factor": SCORE_ROW, "psi": value, "verdict": verdict(value),
                 "unseen_levels": 0, "unseen_leads": 0})
    table = pd.DataFrame(rows, columns=COLUMNS)
    return DriftReport(table, len(reference), len(batch))


def drift_chart(table: pd.DataFrame) -> Figure:
    """Horizontal bars of PSI per factor and the score, over the stable / watch / retrain bands."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    absent = [c for c in ("factor", "psi", "verdict") if c not in table.columns]
    if absent:
        raise ValueError(f"drift_chart: table lacks columns {absent}")
    colours = {"stable": "#2f9e44", "watch": "#f08c00", "retrain": "#c92a2a"}
    values = table["psi"].to_numpy(dtype=float)
    top = max(float(np.nanmax(values)) * 1.15 if len(values) else 0.0, RETRAIN * 1.4)
    fig = Figure(figsize=(8.0, 1.4 + 0.35 * max(len(table), 1)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.axvspan(0, WATCH, color=colours["stable"], alpha=0.08, label=f"stable (< {WATCH})")
    ax.axvspan(WATCH, RETRAIN, color=colours["watch"], alpha=0.12,
               label=f"watch ({WATCH}-{RETRAIN})")
    ax.axvspan(RETRAIN, top, color=colours["retrain"], alpha=0.08, label=f"retrain (> {RETRAIN})")
    positions = np.arange(len(table))
    ax.barh(positions, values, color=[colours.get(v, "#7b8794") for v in table["verdict"]])
    for y, v in zip(positions, values, strict=True):
        ax.text(v, y, f" {v:.3f}", va="center", fontsize=8)
    ax.set_yticks(positions, table["factor"].astype(str))
    ax.invert_yaxis()
    ax.set_xlim(0, top)
    ax.set_xlabel("population stability index (PSI)")
    ax.set_title("Drift of the batch against the reference")
    ax.legend(loc="lower right", fontsize=8)
    return fig
