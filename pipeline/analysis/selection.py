"""Which attributes become scoring factors, and why each other one does not.

Rules, applied to each column in this order (the first that matches gives the reason):

1. declared leaky (filled in by sales after contact) -> ``leak: declared ...``;
2. single-attribute AUC above ``leakage_auc`` -> ``leak: single-attribute AUC ...``;
3. all missing / a single value -> ``all missing`` / ``constant``;
4. a partial leak: being filled (non-missing vs missing), or one level with at least
   :data:`LEAK_MIN_LEADS` leads, almost decides the label -> ``leak: filled for ...`` /
   ``leak: every lead with <column>=<level> ... won``. "Almost decides" (see
   :func:`_decides`) needs both: the minority outcome is at most :data:`LEAK_PURITY` of
   those leads, *and* so pure a group is very improbable at the overall rate (binomial
   tail below :data:`LEAK_TAIL_P`). A real but strong attribute (98.6 % of 140 leads
   converting) fails the first; a small level without a single win at a 2 % base rate
   (expected by chance) fails the second. The single-attribute AUC misses such columns:
   a column filled only for some won leads ranks the rest no better than chance;
5. the best level (largest ``|shrunk_diff_pp|`` among levels with at least ``min_leads``
   leads; all levels if none has that many) moves the close rate by less than
   ``min_lift_pp`` -> ``weak: best level ...``; a level that lowers the rate counts as
   much as one that raises it;
6. the association with conversion is not significant -> ``weak: not significant ...``:
   one chi-square test of independence of the column's levels (as in the lift table)
   vs conversion per candidate column (those that pass rules 1-4), see
   :func:`pipeline.analysis.lift_stats.independence_test`; the p-values are Holm-adjusted over the
   candidates and a column passes when its adjusted p-value is at most ``significance``.
   Holm bounds the chance of keeping *any* column without a real association by
   ``significance`` (family-wise error), so on data without signal no factor is kept in
   95 % of runs at the default 0.05, however many columns are offered. ``significance``
   of 1 switches the test off;
7. greedy by descending information value: association above ``max_association`` with an
   already kept column -> ``duplicate of <other> ...``;
8. beyond ``max_factors`` kept columns -> ``not in the top N by information value``;
9. otherwise kept.

The report gives each column's adjusted p-value (``p_adjusted``; NaN for a column stopped
by rules 1-4, or when the test is switched off).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.analysis.associations import missing_mask, pairwise_associations, target_associations
from pipeline.analysis.lift import lift_table
from pipeline.analysis.lift_levels import MISSING_LABEL, check_target, level_frame
from pipeline.analysis.lift_stats import holm, independence_test

REPORT_COLUMNS = ["column", "kept", "reason", "p_adjusted"]

#: A group (a level, or the filled cells) needs this many leads to be judged a leak.
LEAK_MIN_LEADS = 20
#: ... its minority outcome (wins, or losses) must be at most this share of its leads ...
LEAK_PURITY = 0.01
#: ... and at least that pure a group must be this improbable at the overall rate.
LEAK_TAIL_P = 1e-6
#: Fewest simulated tables of a sparse independence test (see :func:`_draws`).
MIN_DRAWS = 9999


@dataclass(frozen=True)
class SelectionSettings:
    """Thresholds of the factor selection (defaults mirror ``analysis:`` in defaults.yaml)."""

    max_factors: int = 20
    min_lift_pp: float = 5.0
    max_association: float = 0.8
    leakage_auc: float = 0.85
    declared_leaky: tuple[str, ...] = ()
    min_leads: int = 30
    significance: float = 0.05

    def __post_init__(self) -> None:
        if self.max_factors < 1:
            raise ValueError(f"max_factors must be >= 1, got {self.max_factors!r}")
        if self.min_lift_pp < 0:
            raise ValueError(f"min_lift_pp must be >= 0, got {self.min_lift_pp!r}")
        if not 0 < self.max_association <= 1:
            raise ValueError(f"max_association must be in (0, 1], got {self.max_association!r}")
        if not 0.5 <= self.leakage_auc <= 1:
            raise ValueError(f"leakage_auc must be in [0.5, 1], got {self.leakage_auc!r}")
        if self.min_leads < 1:
            raise ValueError(f"min_leads must be >= 1, got {self.min_leads!r}")
        if not 0 < self.significance <= 1:
            raise ValueError(f"significance must be in (0, 1], got {self.significance!r}")
        if isinstance(self.declared_leaky, str):
            raise TypeError(
                f"declared_leaky must be a tuple of column names, got the string "
                f"{self.declared_leaky!r}"
            )


@dataclass(frozen=True)
class SelectionResult:
    """Kept columns (in input order) and a ``column, kept, reason, p_adjusted`` row per
    input column."""

    kept: list[str]
    report: pd.DataFrame


def select_factors(
    X: pd.DataFrame,
    y: pd.Series,
    groups: Mapping[str, str],
    settings: SelectionSettings,
    *,
    lift: pd.DataFrame | None = None,
    associations: pd.DataFrame | None = None,
    pairwise: pd.DataFrame | None = None,
) -> SelectionResult:
    """Apply the selection rules (module docstring) to every column of ``X``.

    ``lift``, ``associations`` and ``pairwise`` may pass precomputed tables from
    :func:`pipeline.analysis.lift.lift_table`,
    :func:`pipeline.analysis.associations.target_associations`
    and :func:`pipeline.analysis.associations.pairwise_associations`; missing ones are computed
    here with ``settings.min_leads`` (pairwise only for the columns still in the race).
    ``kept`` is in input column order; the report has one row per input column, in order.
    A ``declared_leaky`` name that is not a column of ``X`` (already excluded upstream) is
    ignored: it gets no report row.
    """
    check_target(X, y)
    columns = [str(c) for c in X.columns]
    levels = None
    if lift is None or associations is None or pairwise is None:
        levels = level_frame(X, min_leads=settings.min_leads)
    if lift is None:
        lift = lift_table(X, y, groups, min_leads=settings.min_leads, levels=levels)
    if associations is None:
        assert levels is not None
        associations = target_associations(X, y, level_frame=levels[0])
    _require(lift, "lift", "attribute", columns)
    _require_columns(lift, "lift", ["level", "leads", "conversions", "shrunk_diff_pp"])
    _require(associations, "associations", "attribute", columns)
    assoc = associations.set_index("attribute")

    rows = {c: lift[lift["attribute"] == c] for c in columns}
    reasons: dict[str, str] = {}
    for column in columns:
        reason = _early_reason(X[column], column, assoc.loc[column], settings)
        if reason is None:
            reason = _leak_reason(rows[column], column)
        if reason is not None:
            reasons[column] = reason
    tested = [c for c in columns if c not in reasons]
    p_adjusted, tests = _significance(rows, tested, settings)
    for column in tested:
        reason = _weak_reason(rows[column], settings)
        if reason is None and p_adjusted.get(column, 0.0) > settings.significance:
            n_levels = int((rows[column]["leads"] > 0).sum())
            how = " (simulated)" if tests[column] == "simulated" else ""
            reason = (f"weak: not significant (p = {p_adjusted[column]:.2g} adjusted, "
                      f"chi2 test over {n_levels} levels{how})")
        if reason is not None:
            reasons[column] = reason

    candidates = [c for c in columns if c not in reasons]
    iv = {c: _iv(assoc.loc[c, "information_value"]) for c in candidates}
    ranked = sorted(candidates, key=lambda c: (-iv[c], columns.index(c)))
    if pairwise is None and len(ranked) > 1:
        assert levels is not None
        pairwise = pairwise_associations(X, level_frame=levels[0], columns=ranked)
    strength = _pair_lookup(pairwise)

    kept: list[str] = []
    for column in ranked:
        twin = _strongest_twin(column, kept, strength, settings.max_association)
        if twin is not None:
            other, measure, value = twin
            symbol = "|r|" if measure == "pearson" else "V"
            reasons[column] = f"duplicate of {other} ({symbol}={value:.2f})"
        elif len(kept) >= settings.max_factors:
            reasons[column] = f"not in the top {settings.max_factors} by information value"
        else:
            kept.append(column)
            best = _best_level(rows[column], settings.min_leads)
            reasons[column] = f"kept: IV {iv[column]:.2f}, best level {best:+.1f} pp"

    kept_set = set(kept)
    report = pd.DataFrame(
        {
            "column": columns,
            "kept": [c in kept_set for c in columns],
            "reason": [reasons[c] for c in columns],
            "p_adjusted": [p_adjusted.get(c, np.nan) for c in columns],
        },
        columns=REPORT_COLUMNS,
    )
    return SelectionResult(kept=[c for c in columns if c in kept_set], report=report)


# ------------------------------------------------------------------------ helpers


def _early_reason(
    series: pd.Series, column: str, assoc: pd.Series, settings: SelectionSettings
) -> str | None:
    if column in settings.declared_leaky:
        return "leak: declared filled in after sales contact"
    auc = float(assoc["single_auc"])
    if auc > settings.leakage_auc:
        return f"leak: single-attribute AUC {auc:.2f} > {settings.leakage_auc:.2f}"
    missing = missing_mask(series)
    if missing.all():
        return "all missing"
    # with a missing cell and a present one there are two levels: only a full column can be
    # constant
    if not missing.any() and _single_value(series):
        return "constant"
    return None


def _leak_reason(rows: pd.DataFrame, column: str) -> str | None:
    """``leak: ...`` when being filled, or one level, almost decides the label (rule 4)."""
    leads = rows["leads"].to_numpy(dtype=np.int64)
    wins = rows["conversions"].to_numpy(dtype=np.int64)
    total, total_wins = int(leads.sum()), int(wins.sum())
    if total == 0:
        return None
    rate = total_wins / total
    levels = rows["level"].astype(str).to_numpy()
    filled = levels != MISSING_LABEL
    if filled.any() and not filled.all():
        n, k = int(leads[filled].sum()), int(wins[filled].sum())
        if n < total and _decides(k, n, rate):
            return f"leak: filled for {n} leads, {_outcome_count(k, n)}"
    for level, n, k in zip(levels, leads, wins, strict=True):
        if _decides(int(k), int(n), rate):
            return f"leak: {_outcome_phrase(int(k), int(n), column, level)}"
    return None


def _decides(wins: int, leads: int, rate: float) -> bool:
    """Whether ``wins`` of ``leads`` almost decides the label at the overall ``rate``.

    Needs at least :data:`LEAK_MIN_LEADS` leads, a minority outcome of at most
    :data:`LEAK_PURITY` of them, and that purity (or more) improbable by chance: the
    binomial tail ``P(X >= wins)`` (mostly won) or ``P(X <= wins)`` (mostly lost) with
    ``X ~ Binomial(leads, rate)`` below :data:`LEAK_TAIL_P`.
    """
    if leads < LEAK_MIN_LEADS or not 0.0 < rate < 1.0:
        return False
    won = wins * 2 >= leads
    minority = leads - wins if won else wins
    if minority > LEAK_PURITY * leads:
        return False
    tail = stats.binom.sf(wins - 1, leads, rate) if won else stats.binom.cdf(wins, leads, rate)
    return bool(tail < LEAK_TAIL_P)


def _outcome_count(wins: int, leads: int) -> str:
    """``"311 of them won"`` / ``"all of them lost"``: the majority outcome of a group."""
    won = wins * 2 >= leads
    count = wins if won else leads - wins
    verb = "won" if won else "lost"
    return f"all of them {verb}" if count == leads else f"{count} of them {verb}"


def _outcome_phrase(wins: int, leads: int, column: str, level: str) -> str:
    """``every lead with c=v (49 leads) won`` / ``48 of the 49 leads with c=v lost``."""
    won = wins * 2 >= leads
    count = wins if won else leads - wins
    verb = "won" if won else "lost"
    if count == leads:
        return f"every lead with {column}={level} ({leads} leads) {verb}"
    return f"{count} of the {leads} leads with {column}={level} {verb}"


def _significance(
    rows: dict[str, pd.DataFrame], tested: list[str], settings: SelectionSettings
) -> tuple[dict[str, float], dict[str, str]]:
    """Holm-adjusted p-value of the independence test of each ``tested`` column (rule 6),
    and how each was computed; nothing when ``significance`` is 1 (the test is off)."""
    if settings.significance >= 1 or not tested:
        return {}, {}
    draws = _draws(len(tested), settings.significance)
    results = [
        independence_test(rows[c]["conversions"].to_numpy(), rows[c]["leads"].to_numpy(),
                          draws=draws)
        for c in tested
    ]
    adjusted = holm([p for _, p, _ in results])
    return (
        {c: float(p) for c, p in zip(tested, adjusted, strict=True)},
        {c: how for c, (_, _, how) in zip(tested, results, strict=True)},
    )


def _draws(n_tests: int, significance: float) -> int:
    """Simulated tables per sparse test: enough that the smallest simulated p-value,
    ``1 / (draws + 1)``, Holm-adjusted over ``n_tests`` stays 20 times below
    ``significance`` (a strongly associated column with a rare level is never dropped
    for want of draws); at least 9,999."""
    return max(MIN_DRAWS, math.ceil(20 * n_tests / significance) - 1)


def _single_value(series: pd.Series) -> bool:
    """Whether a column without missing cells holds a single distinct value."""
    values = series.to_numpy()
    if values.dtype.kind in "biuf":
        return bool((values == values[0]).all())
    return series.astype(object).nunique() == 1


def _best_level(rows: pd.DataFrame, min_leads: int) -> float:
    """Signed ``shrunk_diff_pp`` of the level that moves the rate most (big levels first)."""
    big = rows[rows["leads"] >= min_leads]
    pool = big if len(big) else rows
    diffs = pool["shrunk_diff_pp"].to_numpy(dtype=float)
    if diffs.size == 0 or np.isnan(diffs).all():
        return 0.0
    return float(diffs[np.nanargmax(np.abs(diffs))])


def _weak_reason(rows: pd.DataFrame, settings: SelectionSettings) -> str | None:
    best = abs(_best_level(rows, settings.min_leads))
    if best < settings.min_lift_pp:
        return (
            f"weak: best level changes the close rate by {best:.1f} pp "
            f"< {settings.min_lift_pp:g} pp"
        )
    return None


def _iv(value: object) -> float:
    v = float(value)  # type: ignore[arg-type]
    return v if np.isfinite(v) else -np.inf


def _pair_lookup(pairwise: pd.DataFrame | None) -> dict[frozenset[str], tuple[str, float]]:
    if pairwise is None or pairwise.empty:
        return {}
    out: dict[frozenset[str], tuple[str, float]] = {}
    for a, b, measure, value in pairwise[
        ["attribute_a", "attribute_b", "measure", "value"]
    ].itertuples(index=False):
        out[frozenset((str(a), str(b)))] = (str(measure), abs(float(value)))
    return out


def _strongest_twin(
    column: str,
    kept: list[str],
    strength: dict[frozenset[str], tuple[str, float]],
    threshold: float,
) -> tuple[str, str, float] | None:
    """The kept column most associated with ``column`` above ``threshold``, if any."""
    best: tuple[str, str, float] | None = None
    for other in kept:
        measure, value = strength.get(frozenset((column, other)), ("", float("nan")))
        if np.isfinite(value) and value > threshold and (best is None or value > best[2]):
            best = (other, measure, value)
    return best


def _require_columns(table: pd.DataFrame, name: str, needed: list[str]) -> None:
    absent = [c for c in needed if c not in table.columns]
    if absent:
        raise ValueError(f"{name} table lacks columns {absent}, got {list(table.columns)}")


def _require(table: pd.DataFrame, name: str, key: str, columns: list[str]) -> None:
    if key not in table.columns:
        raise ValueError(f"{name} table needs a {key!r} column, got {list(table.columns)}")
    have = set(table[key].astype(str))
    missing = [c for c in columns if c not in have]
    if missing:
        raise ValueError(f"{name} table has no rows for columns {missing}")
