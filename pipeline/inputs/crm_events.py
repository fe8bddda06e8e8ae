"""Behaviour a CRM can run: capped occurrence counts in a window, learned from the event log.

The CRM representation (``events.representation: crm``) turns each event group into one
count a rule-based CRM scorer can hold: the group's events in the last ``W`` days before the
as-of date, counted up to ``K`` occurrences; and the key group's velocity into "``N`` key
events within ``D`` days of creation" (counted up to ``K``). The factor's bins then give
integer points for 0, 1, ..., K occurrences: a base and what each further occurrence adds
(:meth:`pipeline.model.rules.PointsRules.occurrence_points`). Decay is the window: an event
older than ``W`` days stops counting, which is HubSpot's "time frame" and a scheduled
subtraction in Marketo.

``W``, ``K`` and ``D`` are chosen per group by cross-validated log loss among the small grids
``events.crm_window_grid``, ``crm_cap_grid`` and ``velocity_days_grid``, with the profile
held fixed as an out-of-fold offset (as the half-lives are). :func:`compare_representations`
gives the 5-fold CV AUC of the CRM and the decayed representation on the same folds.

The counting is one SQL statement (:func:`counts_sql`) over three relations any SQL engine
can hold: ``events_typed(lead_id, event, ts)`` (naive UTC timestamps), ``snaps(lead_id,
created_at, snapshot_at)`` and nothing else; DuckDB runs it here (:func:`count_events`), and
the same text runs on Spark SQL. An event counts when ``created_at <= ts < snapshot_at``
(the rule of :mod:`pipeline.inputs.events`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from pipeline.errors import UserError
from pipeline.model.rules import EventRule

_THREADS = 2
_C = 1.0


@dataclass(frozen=True)
class CountSpec:
    """One count column: the lead's ``events`` in the window, at most ``cap`` (None: all)."""

    column: str
    events: tuple[str, ...]
    window_days: int
    anchor: str = "as_of"
    cap: int | None = None

    @classmethod
    def of_rule(cls, rule: EventRule) -> CountSpec:
        return cls(rule.factor, tuple(rule.events), rule.window_days, rule.anchor, rule.cap)


@dataclass(frozen=True)
class CrmChoice:
    """The chosen event rules, the CV log loss of every candidate (columns ``rule, group,
    window_days, cap, cv_log_loss``) and the chosen rules' CV AUC with the profile."""

    rules: list[EventRule]
    table: pd.DataFrame
    cv_auc: float


def recent_column(group: str, window_days: int) -> str:
    """The factor of a group's recent events: ``product_events_30d``."""
    return f"{group}_events_{int(window_days)}d"


def velocity_column(group: str, days: int) -> str:
    """The velocity factor: ``product_events_first_7d`` (within 7 days of creation)."""
    return f"{group}_events_first_{int(days)}d"


# --------------------------------------------------------------------------- SQL


def _lit(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def counts_sql(specs: Sequence[CountSpec], *, quote: str = '"',
               events_table: str = "events_typed") -> str:
    """The per-lead counts of ``specs`` as one SELECT over ``snaps`` and ``events_table``
    (``lead_id, event, ts``; one row per snapshot lead; a lead without events counts 0).
    ``quote`` is the identifier quote of the engine (``"`` for DuckDB, a backtick for Spark
    SQL)."""
    def ident(name: str) -> str:
        return quote + name.replace(quote, quote * 2) + quote

    if not specs:
        raise UserError("event rules: nothing to count")
    wanted = sorted({e for s in specs for e in s.events})
    columns = []
    for s in specs:
        names = ", ".join(_lit(e) for e in sorted(set(s.events)))
        bound = (f"e.ts >= s.snapshot_at - INTERVAL '{int(s.window_days)}' DAY"
                 if s.anchor == "as_of" else
                 f"e.ts < s.created_at + INTERVAL '{int(s.window_days)}' DAY")
        count = f"SUM(CASE WHEN e.event IN ({names}) AND {bound} THEN 1 ELSE 0 END)"
        count = f"COALESCE({count}, 0)"
        if s.cap is not None:
            count = f"LEAST({count}, {int(s.cap)})"
        columns.append(f"CAST({count} AS BIGINT) AS {ident(s.column)}")
    body = ",\n  ".join(columns)
    return f"""SELECT s.lead_id,
  {body}
FROM snaps AS s
LEFT JOIN (SELECT lead_id, event, ts FROM {events_table}
           WHERE event IN ({", ".join(_lit(e) for e in wanted)})) AS e
  ON e.lead_id = s.lead_id AND e.ts >= s.created_at AND e.ts < s.snapshot_at
GROUP BY s.lead_id"""


def _events_relation(con: duckdb.DuckDBPyConnection, events: pd.DataFrame | str | Path) -> None:
    """Create the view ``events_typed`` (lead_id, event text, naive UTC ts) over ``events``."""
    if isinstance(events, pd.DataFrame):
        missing = [c for c in ("lead_id", "event", "timestamp") if c not in events.columns]
        if missing:
            raise UserError(f"events: missing column(s) {missing}; expected lead_id, event, "
                            f"timestamp, got {list(events.columns)}")
        con.register("events_raw", events)
        source = "events_raw"
    else:
        path = Path(events)
        if not any(ch in str(path) for ch in "*?[") and not path.exists():
            raise UserError(f"events: file not found: {path}")
        if "".join(path.suffixes).lower().endswith((".parquet", ".pq")):
            source = f"read_parquet({_lit(path.as_posix())})"
        else:
            source = f"read_csv({_lit(path.as_posix())}, header = true, all_varchar = true)"
        names = {str(r[0]) for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        missing = [c for c in ("lead_id", "event", "timestamp") if c not in names]
        if missing:
            raise UserError(f"{path}: missing column(s) {missing}; the event log has columns "
                            f"lead_id, event, timestamp (found {sorted(names)})")
    con.execute(f"""CREATE TEMP VIEW events_typed AS
        SELECT CAST(lead_id AS VARCHAR) AS lead_id,
               COALESCE(CAST(event AS VARCHAR), '') AS event,
               TRY_CAST(TRY_CAST("timestamp" AS TIMESTAMPTZ) AS TIMESTAMP) AS ts
        FROM {source}""")


def count_events(events: pd.DataFrame | str | Path, snapshots: pd.DataFrame,
                 specs: Sequence[CountSpec], *, memory_limit: str = "4GB",
                 engine: str = "duckdb", master: str | None = None) -> pd.DataFrame:
    """Run :func:`counts_sql` on ``engine`` (``events.engine``: DuckDB, or Spark on
    ``master``): one row per lead of ``snapshots`` (``lead_id, created_at, snapshot_at``;
    naive UTC), in its order, with one int64 column per spec."""
    snaps = pd.DataFrame({
        "lead_id": snapshots["lead_id"].astype(str).to_numpy(),
        "created_at": pd.to_datetime(snapshots["created_at"]).astype("datetime64[us]").to_numpy(),
        "snapshot_at": pd.to_datetime(snapshots["snapshot_at"]).astype("datetime64[us]")
        .to_numpy()})
    if snaps["lead_id"].duplicated().any():
        raise UserError("snapshots: column 'lead_id' must be unique (one snapshot per lead)")
    if engine == "duckdb":
        with duckdb.connect() as con:
            con.execute(f"SET threads TO {_THREADS}")
            con.execute(f"SET memory_limit = {_lit(memory_limit)}")
            con.execute("SET TimeZone = 'UTC'")
            con.register("snaps", snaps)
            _events_relation(con, events)
            result = con.execute(counts_sql(specs)).df()
    else:
        from pipeline.inputs.event_engines import run_event_sql

        sql = counts_sql(specs, quote="`",
                         events_table="(SELECT lead_id, event, `timestamp` AS ts FROM events)")
        result = run_event_sql(sql, events, engine=engine, master=master,
                               tables={"snaps": snaps})
    out = result.set_index("lead_id").reindex(snaps["lead_id"])
    frame = pd.DataFrame({"lead_id": snapshots["lead_id"].to_numpy()}, index=snapshots.index)
    for s in specs:
        frame[s.column] = out[s.column].fillna(0).to_numpy(dtype="int64")
    return frame


# --------------------------------------------------------------------------- choice


def candidate_specs(groups: Mapping[str, Sequence[str]], *, windows: Sequence[int],
                    velocity_days: Sequence[int], key_group: str) -> list[CountSpec]:
    """Uncapped counts of every candidate: each group in each window, and the key group in
    each velocity span after creation."""
    specs = [CountSpec(recent_column(g, w), tuple(groups[g]), int(w))
             for g in sorted(groups) for w in windows]
    if key_group in groups:
        specs += [CountSpec(velocity_column(key_group, d), tuple(groups[key_group]), int(d),
                            "created") for d in velocity_days]
    return specs


def one_hot_counts(counts: np.ndarray, cap: int) -> np.ndarray:
    """Indicators of 1, ..., ``cap`` counted occurrences (0 is the reference)."""
    capped = np.minimum(np.asarray(counts, dtype="int64"), cap)
    return (capped[:, None] == np.arange(1, cap + 1)[None, :]).astype("float64")


def _cv_scores(x: np.ndarray, y: np.ndarray, splits: list) -> tuple[float, float]:
    """Pooled out-of-fold log loss and mean fold AUC of a small L2 logistic regression."""
    proba = np.empty(len(y), dtype="float64")
    aucs = []
    for train, test in splits:
        model = LogisticRegression(C=_C, solver="newton-cholesky", max_iter=200)
        model.fit(x[train], y[train])
        proba[test] = model.predict_proba(x[test])[:, 1]
        aucs.append(roc_auc_score(y[test], proba[test]))
    return float(log_loss(y, proba, labels=[0, 1])), float(np.mean(aucs))


def folds_of(y: np.ndarray, folds: int, seed: int) -> list:
    return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
                .split(np.zeros(len(y)), y))


def choose_crm_rules(counts: pd.DataFrame, y: np.ndarray, offset: np.ndarray, *,
                     groups: Mapping[str, Sequence[str]], windows: Sequence[int],
                     caps: Sequence[int], velocity_days: Sequence[int], key_group: str,
                     folds: int = 5, seed: int = 0) -> CrmChoice:
    """Pick each group's window and cap (and the velocity span and cap) by coordinate-wise
    search on CV log loss: every rule starts at the middle of the grids, two sweeps follow,
    each trying every candidate of one rule with the others held. ``counts`` holds the
    uncapped candidate columns of :func:`candidate_specs`; ``offset`` (n x k) the profile."""
    y = np.asarray(y, dtype="int64")
    windows, caps, spans = (sorted({int(v) for v in g}) for g in (windows, caps, velocity_days))
    rules: dict[str, list[tuple[str, int, int]]] = {}  # rule -> candidates (column, days, cap)
    for g in sorted(groups):
        rules[g] = [(recent_column(g, w), w, k) for w in windows for k in caps]
    if key_group in groups:
        rules["velocity"] = [(velocity_column(key_group, d), d, k) for d in spans for k in caps]
    splits = folds_of(y, folds, seed)
    base = np.asarray(offset, dtype="float64").reshape(len(y), -1)
    cache: dict[tuple, tuple[float, float]] = {}

    def design(choice: dict[str, tuple[str, int, int]]) -> np.ndarray:
        parts = [base] + [one_hot_counts(counts[c].to_numpy(), k)
                          for c, _, k in (choice[r] for r in rules)]
        return np.column_stack(parts)

    def score(choice: dict[str, tuple[str, int, int]]) -> tuple[float, float]:
        key = tuple(choice[r] for r in rules)
        if key not in cache:
            cache[key] = _cv_scores(design(choice), y, splits)
        return cache[key]

    choice = {r: c[len(c) // 2] for r, c in rules.items()}
    rows: list[dict] = []
    for _ in range(2):
        rows = []
        for r, candidates in rules.items():
            losses = [score({**choice, r: c})[0] for c in candidates]
            choice[r] = candidates[int(np.argmin(losses))]
            rows += [{"rule": r, "group": key_group if r == "velocity" else r,
                      "window_days": d, "cap": k, "cv_log_loss": loss}
                     for (_, d, k), loss in zip(candidates, losses, strict=True)]
    out = []
    for r, (column, days, cap) in choice.items():
        group = key_group if r == "velocity" else r
        out.append(EventRule(factor=column, events=list(groups[group]), window_days=int(days),
                             cap=int(cap), anchor="created" if r == "velocity" else "as_of"))
    table = pd.DataFrame(rows, columns=["rule", "group", "window_days", "cap", "cv_log_loss"])
    return CrmChoice(out, table, score(choice)[1])


def binned(values: pd.Series, n_bins: int = 5) -> np.ndarray:
    """Indicators of quantile bins of a numeric column, and of its missing values (how the
    points table sees a decayed feature), for :func:`compare_representations`."""
    x = values.to_numpy(dtype="float64", na_value=np.nan)
    present = ~np.isnan(x)
    parts = [(~present).astype("float64")[:, None]] if (~present).any() else []
    if present.any():
        edges = np.unique(np.quantile(x[present], np.linspace(0, 1, n_bins + 1)[1:-1]))
        codes = np.searchsorted(edges, np.where(present, x, 0.0), side="left")
        levels = np.unique(codes[present])
        parts.append(np.column_stack([(present & (codes == c)).astype("float64")
                                      for c in levels[1:]]) if len(levels) > 1
                     else np.zeros((len(x), 0)))
    return np.column_stack(parts) if parts else np.zeros((len(x), 0))


def compare_representations(crm: pd.DataFrame, rules: Sequence[EventRule],
                            decayed: pd.DataFrame, y: np.ndarray, offset: np.ndarray, *,
                            folds: int = 5, seed: int = 0) -> dict[str, float]:
    """``cv_auc_crm`` and ``cv_auc_decayed``: mean 5-fold AUC of the same small logistic
    regression on the profile offset plus the CRM counts (one level per counted occurrence)
    or plus the decayed features (quantile bins and missing, as the points table bins them),
    on the same folds; and ``cv_auc_profile`` (the profile alone)."""
    y = np.asarray(y, dtype="int64")
    splits = folds_of(y, folds, seed)
    base = np.asarray(offset, dtype="float64").reshape(len(y), -1)
    x_crm = np.column_stack([base] + [one_hot_counts(crm[r.factor].to_numpy(), r.cap)
                                      for r in rules])
    x_dec = np.column_stack([base] + [binned(decayed[c]) for c in decayed.columns])
    return {"cv_auc_crm": _cv_scores(x_crm, y, splits)[1],
            "cv_auc_decayed": _cv_scores(x_dec, y, splits)[1],
            "cv_auc_profile": _cv_scores(base, y, splits)[1]}


def rule_specs(rules: Sequence[EventRule]) -> list[CountSpec]:
    """The capped counts of ``rules`` (what a scorer reads)."""
    return [CountSpec.of_rule(r) for r in rules]


def crm_training_features(events: pd.DataFrame | str | Path, everyone: pd.DataFrame,
                          snapshots: pd.DataFrame, decayed: pd.DataFrame, y: pd.Series,
                          profile: pd.DataFrame | None, config, *,
                          rules: list[EventRule] | None = None
                          ) -> tuple[pd.DataFrame, list[EventRule], dict[str, float],
                                     pd.DataFrame | None]:
    """Training: the CRM factors of the labelled leads (``snapshots`` order, index reset),
    their rules (chosen by :func:`choose_crm_rules` unless ``rules`` is given), the CV
    comparison with the ``decayed`` features (:func:`compare_representations`; needs the
    ``profile`` offset) and the candidates' CV table. ``everyone`` holds the snapshots of
    every lead whose events are its own (undecided leads too)."""
    events_cfg = config.events
    groups = {g: list(v) for g, v in sorted(events_cfg.groups.items())}
    target = np.asarray(y, dtype="int64")
    offset = None
    if profile is not None:
        offset = profile.to_numpy(dtype="float64") if profile.shape[1] else \
            np.zeros((len(target), 1))
    table = None
    if rules is None:
        if offset is None:
            raise UserError("event rules: the CV search needs the profile offset")
        specs = candidate_specs(groups, windows=events_cfg.crm_window_grid,
                                velocity_days=events_cfg.velocity_days_grid,
                                key_group=events_cfg.key_group)
        counts = _in_order(count_events(events, everyone, specs, engine=events_cfg.engine,
                                        master=events_cfg.master), snapshots)
        choice = choose_crm_rules(counts, target, offset, groups=groups,
                                  windows=events_cfg.crm_window_grid,
                                  caps=events_cfg.crm_cap_grid,
                                  velocity_days=events_cfg.velocity_days_grid,
                                  key_group=events_cfg.key_group,
                                  folds=config.model.cv_folds, seed=config.seed)
        rules, table = choice.rules, choice.table
    final = _in_order(count_events(events, everyone, rule_specs(rules), engine=events_cfg.engine,
                                   master=events_cfg.master), snapshots)
    metrics: dict[str, float] = {}
    if offset is not None:
        metrics = compare_representations(final, rules, decayed.reset_index(drop=True), target,
                                          offset, folds=config.model.cv_folds, seed=config.seed)
    return final[[r.factor for r in rules]], list(rules), metrics, table


def _in_order(counts: pd.DataFrame, snapshots: pd.DataFrame) -> pd.DataFrame:
    """``counts`` (with ``lead_id``) in the order of ``snapshots``, index reset."""
    return (counts.drop_duplicates("lead_id").set_index("lead_id")
            .reindex(snapshots["lead_id"].astype(str)).fillna(0).astype("int64")
            .reset_index(drop=True))


def rules_summary(rules: Sequence[EventRule], metrics: Mapping[str, float]) -> str:
    """One line: ``event rules: product 30 d cap 4, product first 3 d cap 4, ...; CV AUC crm
    0.8490 vs decayed 0.8472``."""
    parts = [f"{r.factor.rsplit('_events_', 1)[0]} {'first ' if r.is_velocity else ''}"
             f"{r.window_days} d cap {r.cap}" for r in rules]
    text = "event rules: " + ", ".join(parts)
    if "cv_auc_crm" in metrics and "cv_auc_decayed" in metrics:
        text += (f"; CV AUC crm {metrics['cv_auc_crm']:.4f} vs decayed "
                 f"{metrics['cv_auc_decayed']:.4f}")
    return text
