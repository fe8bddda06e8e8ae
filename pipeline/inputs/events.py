"""Behaviour over time: turn a long event log into point-in-time PAIN features per lead.

Only events with ``created_at <= timestamp < snapshot_at`` count, so a feature never sees
the future of its own label. The aggregation is one pass of one SQL text
(:mod:`pipeline.inputs.event_sql`) on DuckDB (out of core for CSV and Parquet paths) or, with
``engine="spark"``, on Spark (:mod:`pipeline.inputs.event_engines`); both first list the
distinct event names. The parameters are checked in :mod:`pipeline.inputs.event_spec`.

Features (one row per snapshot lead, same order and index, ``lead_id`` first):

* ``n_<event>``: count of each event (names slugified to ``[a-z0-9_]``);
* ``n_<group>_<w>d``: events of the group with ``snapshot_at - w days <= timestamp``;
* ``days_since_last_event`` (NaN when none) and ``days_active`` (distinct UTC calendar days);
* ``velocity_<key_group>``: key-group events in the first 7 days after ``created_at``
  (and before ``snapshot_at``) divided by 7;
* ``days_to_first_<key_group>``: days from ``created_at`` to the first key-group event;
* ``decayed_<group>``: sum of ``0.5 ** (age_days / half_life)`` over the group's events,
  ``age_days = (snapshot_at - timestamp)`` in exact seconds / 86400;
* ``decayed_<group>__hl<h>``: the same for each extra candidate half-life (for
  :func:`pipeline.inputs.decay.choose_half_lives`).

Events whose name is not in ``event_groups`` belong to the group ``other``. Timestamps are
naive UTC or ISO strings (an explicit offset is converted to UTC) at microsecond resolution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from pipeline.errors import UserError
from pipeline.inputs.event_engines import DuckDBEngine, check_engine, open_engine
from pipeline.inputs.event_spec import (
    OTHER_GROUP,
    EventSpec,
    decay_spec,
    full_spec,
    half_life_column,
    slugify,
)
from pipeline.inputs.event_sql import (
    SNAPSHOT_COLUMNS,
    aggregate_sql,
    day_words,
    load_snapshots,
    name_column,
    output_sql,
)

__all__ = [
    "DIAGNOSTIC_KEYS",
    "EVENT_COLUMNS",
    "OTHER_GROUP",
    "SNAPSHOT_COLUMNS",
    "EventFeatures",
    "aggregate_events",
    "decayed_counts_as_of",
    "half_life_column",
    "slugify",
]

DIAGNOSTIC_KEYS = (
    "events_total",
    "events_used",
    "events_after_snapshot",
    "events_before_creation",
    "events_unknown_lead",
    "unparseable_timestamps",
)
EVENT_COLUMNS = ("lead_id", "event", "timestamp")


@dataclass(frozen=True)
class EventFeatures:
    """Per-lead event features and counts of the events that were (not) used.

    ``diagnostics`` keys: events_total, events_used, events_after_snapshot,
    events_before_creation, events_unknown_lead, unparseable_timestamps. Each event is
    counted once, in that order of precedence: unparseable timestamp, unknown lead, before
    creation, after snapshot, used; so the last five add up to ``events_total``.
    """

    features: pd.DataFrame
    diagnostics: dict[str, int]


def aggregate_events(
    events: pd.DataFrame | str | Path,
    snapshots: pd.DataFrame,
    *,
    event_groups: Mapping[str, str],
    half_lives: Mapping[str, float],
    windows: Sequence[int] = (7, 30, 90),
    key_group: str = "product",
    extra_half_life_grid: Mapping[str, Sequence[float]] | None = None,
    memory_limit: str = "4GB",
    engine: str = "duckdb",
    master: str | None = None,
) -> EventFeatures:
    """Point-in-time event features for each lead of ``snapshots`` (see the module docstring).

    ``events`` is a DataFrame or a CSV / Parquet path read by the engine without loading it
    into pandas; ``snapshots`` has ``lead_id, created_at, snapshot_at`` (one row per lead).
    ``engine`` is ``duckdb`` (``memory_limit`` applies) or ``spark`` (on ``master``): the
    same features either way (:mod:`pipeline.inputs.event_engines`).
    """
    check_engine(engine)
    spec = full_spec(event_groups, half_lives, windows, key_group, extra_half_life_grid)
    return _run(events, snapshots, spec, memory_limit=memory_limit, engine=engine, master=master)


def decayed_counts_as_of(
    events: pd.DataFrame | str | Path,
    leads: pd.DataFrame,
    *,
    as_of: Any,
    event_groups: Mapping[str, str],
    half_lives: Mapping[str, float],
    memory_limit: str = "4GB",
    engine: str = "duckdb",
    master: str | None = None,
) -> EventFeatures:
    """``lead_id`` and ``decayed_<group>`` at one scoring date, so quiet leads lose points.

    The same rules as :func:`aggregate_events` with ``snapshot_at = as_of`` for every lead of
    ``leads`` (columns ``lead_id, created_at``); only the decay family is computed.
    """
    check_engine(engine)
    missing = [c for c in ("lead_id", "created_at") if c not in leads.columns]
    if missing:
        raise UserError(
            f"leads: missing column(s) {missing}; expected lead_id, created_at, "
            f"got {list(leads.columns)}"
        )
    try:
        as_of_ts = pd.Timestamp(as_of)
    except (TypeError, ValueError):
        as_of_ts = pd.NaT
    if pd.isna(as_of_ts):
        raise UserError(f"as_of: must be a date-time, got {as_of!r}")
    if as_of_ts.tzinfo is not None:
        as_of_ts = as_of_ts.tz_convert("UTC").tz_localize(None)
    snapshots = pd.DataFrame(
        {
            "lead_id": leads["lead_id"],
            "created_at": leads["created_at"],
            "snapshot_at": pd.Series(as_of_ts, index=leads.index, dtype="datetime64[us]"),
        }
    )
    spec = decay_spec(event_groups, half_lives)
    return _run(events, snapshots, spec, memory_limit=memory_limit, engine=engine, master=master)


def _run(
    events: pd.DataFrame | str | Path,
    snapshots: pd.DataFrame,
    spec: EventSpec,
    *,
    memory_limit: str,
    engine: str = "duckdb",
    master: str | None = None,
) -> EventFeatures:
    check_engine(engine)
    with open_engine(engine, master=master, memory_limit=memory_limit) as eng:
        if isinstance(eng, DuckDBEngine):
            n = load_snapshots(eng.con, snapshots)
            words = day_words(eng.con)
        else:  # parsed and checked by DuckDB (one row per lead, in memory), then handed over
            with duckdb.connect() as con:
                con.execute("SET TimeZone = 'UTC'")
                n = load_snapshots(con, snapshots)
                words = day_words(con)
                parsed = con.execute(
                    "SELECT _row, lead_id, created_at, snapshot_at FROM snaps").df()
            eng.register("snaps", parsed)
        eng.register_events(events)
        names: list[str] = []
        if spec.full:
            names = sorted(str(v) for v in eng.fetch("SELECT DISTINCT event FROM events")["event"])
        eng.create("agg", aggregate_sql(spec, eng.dialect, names, words))
        name_sums = [f"COALESCE(sum({name_column(i)}) FILTER (WHERE _row IS NOT NULL), 0)"
                     for i in range(len(names))]
        sums = eng.fetchone(
            "SELECT COALESCE(sum(_total), 0), COALESCE(sum(_used), 0), "
            "COALESCE(sum(_after), 0), COALESCE(sum(_before), 0), "
            "COALESCE(sum(_unknown), 0), COALESCE(sum(_unparseable), 0)"
            + "".join(f", {t}" for t in name_sums) + " FROM agg"
        )
        diag_row = sums[: len(DIAGNOSTIC_KEYS)]
        totals = sums[len(DIAGNOSTIC_KEYS):]
        event_names: list[str] = []
        if spec.full:  # the names of used events, plus the configured ones
            seen = {n for n, total in zip(names, totals, strict=True) if int(total) > 0}
            event_names = sorted(seen | set(spec.event_groups))
        name_cols = {n: name_column(i) for i, n in enumerate(names)}
        sql, out_names = output_sql(spec, event_names, eng.dialect, name_cols, words)
        body = eng.fetch(sql) if out_names else pd.DataFrame(index=range(n))
    diagnostics = {k: int(v) for k, v in zip(DIAGNOSTIC_KEYS, diag_row, strict=True)}
    columns: dict[str, Any] = {"lead_id": snapshots["lead_id"].to_numpy()}
    for name in out_names:
        is_count = name.startswith("n_") or name == "days_active"
        columns[name] = (
            body[name].to_numpy(dtype="int64")
            if is_count
            else body[name].to_numpy(dtype="float64", na_value=np.nan)
        )
    features = pd.DataFrame(columns, index=snapshots.index)
    return EventFeatures(features=features, diagnostics=diagnostics)
