"""Behaviour over time: turn a long event log into point-in-time PAIN features per lead.

Only events with ``created_at <= timestamp < snapshot_at`` count, so a feature never sees
the future of its own label. The aggregation runs in one DuckDB pass (out of core for CSV
and Parquet paths), so 50 million events fit in a few GB on a 2-core machine; or, with
``engine="spark"``, as the same SQL on Spark (:mod:`pipeline.inputs.event_engines`: Spark
first lists the distinct event names, as it has no ``histogram``).

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

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from pipeline.errors import UserError
from pipeline.inputs.event_engines import (
    Dialect,
    DuckDBEngine,
    EventEngine,
    check_engine,
    open_engine,
    sql_literal,
)

OTHER_GROUP = "other"
DIAGNOSTIC_KEYS = (
    "events_total",
    "events_used",
    "events_after_snapshot",
    "events_before_creation",
    "events_unknown_lead",
    "unparseable_timestamps",
)
EVENT_COLUMNS = ("lead_id", "event", "timestamp")
SNAPSHOT_COLUMNS = ("lead_id", "created_at", "snapshot_at")
_US_PER_DAY = 86_400_000_000


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


def slugify(name: str) -> str:
    """Column-safe name: lower case, runs of anything but ``[a-z0-9]`` become one ``_``."""
    slug = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")
    return slug or "unnamed"


def half_life_column(group: str, half_life_days: float) -> str:
    """Column of ``group``'s decayed count at one candidate half-life: ``decayed_product__hl14``."""
    return f"decayed_{slugify(group)}__hl{float(half_life_days):g}"


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
    groups = _groups(event_groups)
    spec = _Spec(
        event_groups=dict(event_groups),
        groups=groups,
        half_lives=_check_half_lives(half_lives, groups, "half_lives"),
        windows=_check_windows(windows),
        key_group=_check_key_group(key_group, groups),
        grid=_check_grid(extra_half_life_grid, groups),
        full=True,
    )
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
    groups = _groups(event_groups)
    spec = _Spec(
        event_groups=dict(event_groups),
        groups=groups,
        half_lives=_check_half_lives(half_lives, groups, "half_lives"),
        windows=(),
        key_group="",
        grid={},
        full=False,
    )
    return _run(events, snapshots, spec, memory_limit=memory_limit, engine=engine, master=master)


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class _Spec:
    event_groups: dict[str, str]
    groups: list[str]
    half_lives: dict[str, float]
    windows: tuple[int, ...]
    key_group: str
    grid: dict[str, tuple[float, ...]]
    full: bool


def _groups(event_groups: Mapping[str, str]) -> list[str]:
    groups = sorted({str(g) for g in event_groups.values()} | {OTHER_GROUP})
    slugs: dict[str, str] = {}
    for g in groups:
        other = slugs.setdefault(slugify(g), g)
        if other != g:
            raise UserError(
                f"event_groups: group names must stay distinct after slugify, "
                f"{other!r} and {g!r} both become {slugify(g)!r}"
            )
    return groups


def _positive_float(value: Any, where: str) -> float:
    message = f"{where}: half-life must be a positive number of days, got {value!r}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UserError(message) from None
    if not (math.isfinite(x) and x > 0):
        raise UserError(message)
    return x


def _check_half_lives(half_lives: Mapping[str, float], groups: list[str], name: str) -> dict:
    unknown = sorted(set(half_lives) - set(groups))
    if unknown:
        raise UserError(
            f"{name}: unknown group(s) {unknown}; groups are the values of event_groups "
            f"plus {OTHER_GROUP!r}: {groups}"
        )
    return {g: _positive_float(h, f"{name}[{g!r}]") for g, h in sorted(half_lives.items())}


def _check_windows(windows: Sequence[int]) -> tuple[int, ...]:
    out = []
    for w in windows:
        whole = isinstance(w, int | float | np.integer) and not isinstance(w, bool)
        if not (whole and math.isfinite(w) and float(w).is_integer() and w > 0):
            raise UserError(f"windows: each must be a positive whole number of days, got {w!r}")
        out.append(int(w))
    if len(set(out)) != len(out):
        raise UserError(f"windows: must not repeat, got {list(windows)}")
    return tuple(sorted(out))


def _check_key_group(key_group: str, groups: list[str]) -> str:
    if key_group not in groups:
        raise UserError(f"key_group: must be one of the groups {groups}, got {key_group!r}")
    return key_group


def _check_grid(
    grid: Mapping[str, Sequence[float]] | None, groups: list[str]
) -> dict[str, tuple[float, ...]]:
    if not grid:
        return {}
    unknown = sorted(set(grid) - set(groups))
    if unknown:
        raise UserError(f"extra_half_life_grid: unknown group(s) {unknown}; groups are {groups}")
    out = {}
    for g in sorted(grid):
        values = {
            f"{_positive_float(h, f'extra_half_life_grid[{g!r}]'):g}": float(h) for h in grid[g]
        }
        out[g] = tuple(sorted(values.values()))
    return out


# --------------------------------------------------------------------------- SQL


def _lit(text: str) -> str:
    """A SQL string literal (both engines read doubled quotes)."""
    return sql_literal(text)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _timestamp_sql(column: str) -> str:
    """Parse to naive UTC TIMESTAMP; anything unparseable becomes NULL (never an error)."""
    return Dialect("duckdb").timestamp(_ident(column))


def _load_snapshots(con: duckdb.DuckDBPyConnection, snapshots: pd.DataFrame) -> int:
    """Parse and check the snapshots into DuckDB's table ``snaps`` (``_row`` keeps the
    input order): they are one row per lead and checked here whatever the engine."""
    if not isinstance(snapshots, pd.DataFrame):
        raise UserError(f"snapshots: expected a DataFrame, got {type(snapshots).__name__}")
    missing = [c for c in SNAPSHOT_COLUMNS if c not in snapshots.columns]
    if missing:
        raise UserError(
            f"snapshots: missing column(s) {missing}; expected {list(SNAPSHOT_COLUMNS)}, "
            f"got {list(snapshots.columns)}"
        )
    raw = pd.DataFrame(
        {
            "_row": range(len(snapshots)),
            "lead_id": snapshots["lead_id"].reset_index(drop=True),
            "created_at": snapshots["created_at"].reset_index(drop=True),
            "snapshot_at": snapshots["snapshot_at"].reset_index(drop=True),
        }
    )
    con.register("snaps_raw", raw)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE snaps AS
        SELECT _row, CAST(lead_id AS VARCHAR) AS lead_id,
               created_at IS NOT NULL AND {_timestamp_sql("created_at")} IS NULL AS bad_created,
               snapshot_at IS NOT NULL AND {_timestamp_sql("snapshot_at")} IS NULL AS bad_snap,
               {_timestamp_sql("created_at")} AS created_at,
               {_timestamp_sql("snapshot_at")} AS snapshot_at
        FROM snaps_raw
        """
    )
    con.unregister("snaps_raw")
    checks = [
        ("lead_id IS NULL", "snapshots: column 'lead_id' must not be empty"),
        ("created_at IS NULL", "snapshots: column 'created_at' must be a parseable date-time"),
        ("snapshot_at IS NULL", "snapshots: column 'snapshot_at' must be a parseable date-time"),
        (
            "snapshot_at < created_at",
            "snapshots: 'snapshot_at' must not be before 'created_at'",
        ),
    ]
    for condition, message in checks:
        bad = con.execute(f"SELECT count(*), min(_row) FROM snaps WHERE {condition}").fetchone()
        if bad and bad[0]:
            row = int(bad[1])
            values = snapshots.iloc[row][list(SNAPSHOT_COLUMNS)].to_dict()
            raise UserError(f"{message}; {bad[0]} row(s), first at position {row}: {values}")
    dup = con.execute(
        "SELECT lead_id, count(*) FROM snaps GROUP BY lead_id HAVING count(*) > 1 "
        "ORDER BY lead_id LIMIT 5"
    ).fetchall()
    if dup:
        raise UserError(
            f"snapshots: column 'lead_id' must be unique (one snapshot per lead), "
            f"repeated: {[d[0] for d in dup]}"
        )
    return len(snapshots)


def _name_col(i: int) -> str:
    """Column of the i-th event name's count where there is no histogram (Spark)."""
    return f"_n__{i}"


def _aggregate_sql(spec: _Spec, dialect: Dialect, names: Sequence[str] | None = None) -> str:
    """The single pass: every event row is classified and aggregated per lead.

    The per-event counts are DuckDB's ``histogram(event)``; without one (Spark) each name of
    ``names`` gets a filtered count.
    """
    q = dialect.ident
    aggs = [
        "count(*) AS _total",
        "count(*) FILTER (WHERE bad_ts) AS _unparseable",
        "count(*) FILTER (WHERE NOT bad_ts AND _row IS NULL) AS _unknown",
        "count(*) FILTER (WHERE NOT bad_ts AND _row IS NOT NULL AND since_us < 0) AS _before",
        "count(*) FILTER (WHERE NOT bad_ts AND _row IS NOT NULL AND since_us >= 0 "
        "AND age_us <= 0) AS _after",
        "count(*) FILTER (WHERE used) AS _used",
    ]
    if spec.full:
        key = _lit(spec.key_group)
        if dialect.has_histogram:
            aggs.append("histogram(event) FILTER (WHERE used) AS _hist")
        else:
            aggs += [f"count(*) FILTER (WHERE used AND event = {_lit(n)}) AS {_name_col(i)}"
                     for i, n in enumerate(names or ())]
        aggs += [
            "min(age_us) FILTER (WHERE used) AS _min_age_us",
            "count(DISTINCT CASE WHEN used THEN CAST(ts AS DATE) END) AS _days_active",
            f"count(*) FILTER (WHERE used AND grp = {key} "
            f"AND since_us < {7 * _US_PER_DAY}) AS _week_key",
            f"min(since_us) FILTER (WHERE used AND grp = {key}) AS _first_key_us",
        ]
        for g in spec.groups:
            for w in spec.windows:
                aggs.append(
                    f"count(*) FILTER (WHERE used AND grp = {_lit(g)} "
                    f"AND age_us <= {w * _US_PER_DAY}) AS {q(_window_col(g, w))}"
                )
    for g, h in spec.half_lives.items():
        aggs.append(_decay_agg(g, h, q(f"decayed_{slugify(g)}")))
    for g, hs in spec.grid.items():
        for h in hs:
            aggs.append(_decay_agg(g, h, q(_grid_col(g, h))))
    select = ",\n  ".join(aggs)
    return f"""
    WITH e AS (
      SELECT s._row,
             src.event,
             COALESCE(m.grp, {_lit(OTHER_GROUP)}) AS grp,
             src.{q("timestamp")} AS ts,
             src.{q("timestamp")} IS NULL AS bad_ts,
             {dialect.micros_between("src." + q("timestamp"), "s.snapshot_at")} AS age_us,
             {dialect.micros_between("s.created_at", "src." + q("timestamp"))} AS since_us
      FROM events AS src
      LEFT JOIN snaps AS s ON src.lead_id = s.lead_id
      LEFT JOIN group_map AS m ON src.event = m.event
    ), f AS (
      SELECT *, COALESCE(NOT bad_ts AND _row IS NOT NULL AND since_us >= 0 AND age_us > 0,
                         false) AS used,
             CAST(age_us AS DOUBLE) / {_US_PER_DAY} AS age_days
      FROM e
    )
    SELECT _row,
      {select}
    FROM f
    GROUP BY _row
    """


def _decay_agg(group: str, half_life: float, alias: str) -> str:
    return (
        f"sum(pow(0.5, age_days / CAST({float(half_life)!r} AS DOUBLE))) "
        f"FILTER (WHERE used AND grp = {_lit(group)}) AS {alias}"
    )


def _window_col(group: str, w: int) -> str:
    return f"n_{slugify(group)}_{w}d"


def _grid_col(group: str, h: float) -> str:
    return half_life_column(group, h)


def _output_sql(spec: _Spec, event_names: list[str], dialect: Dialect,
                name_cols: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """Final per-lead columns in the documented order, one row per snapshot lead.

    ``name_cols``: each event name's count column of ``agg`` where there is no histogram.
    """
    q = dialect.ident
    cols: list[tuple[str, str]] = []
    if spec.full:
        by_slug: dict[str, list[str]] = {}
        for name in event_names:
            by_slug.setdefault(slugify(name), []).append(name)
        for slug in sorted(by_slug):
            if dialect.has_histogram:
                terms = [f"COALESCE(a._hist[{_lit(n)}], 0)" for n in sorted(by_slug[slug])]
            else:
                terms = [f"COALESCE(a.{(name_cols or {})[n]}, 0)" if n in (name_cols or {})
                         else "0" for n in sorted(by_slug[slug])]
            cols.append((f"n_{slug}", f"CAST({' + '.join(terms)} AS BIGINT)"))
        for g in spec.groups:
            for w in spec.windows:
                name = _window_col(g, w)
                cols.append((name, f"COALESCE(a.{q(name)}, 0)"))
        k = slugify(spec.key_group)
        cols += [
            ("days_since_last_event", f"CAST(a._min_age_us AS DOUBLE) / {_US_PER_DAY}"),
            ("days_active", "COALESCE(a._days_active, 0)"),
            (f"velocity_{k}", "CAST(COALESCE(a._week_key, 0) AS DOUBLE) / 7"),
            (f"days_to_first_{k}", f"CAST(a._first_key_us AS DOUBLE) / {_US_PER_DAY}"),
        ]
    for g in spec.half_lives:
        name = f"decayed_{slugify(g)}"
        cols.append((name, f"COALESCE(a.{q(name)}, 0.0)"))
    for g, hs in spec.grid.items():
        for h in hs:
            name = _grid_col(g, h)
            cols.append((name, f"COALESCE(a.{q(name)}, 0.0)"))
    names = [c[0] for c in cols]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(
            f"events: feature names collide after slugify: {dupes}; rename the events "
            f"or groups so that each column name is produced once"
        )
    body = ",\n  ".join(f"{expr} AS {q(name)}" for name, expr in cols) or "s._row"
    sql = f"""
    SELECT {body}
    FROM snaps AS s LEFT JOIN agg AS a ON s._row = a._row
    ORDER BY s._row
    """
    return sql, names


def _event_names(eng: EventEngine, spec: _Spec, names: list[str], totals: Sequence[Any]
                 ) -> tuple[list[str], dict[str, str]]:
    """The event names seen in used events (plus the configured ones), and where there is no
    histogram the count column of each name of ``names`` (``totals``: their used counts)."""
    if not spec.full:
        return [], {}
    if eng.dialect.has_histogram:
        seen = eng.fetch(
            "SELECT DISTINCT unnest(map_keys(_hist)) AS name FROM agg WHERE _row IS NOT NULL"
        )["name"].tolist()
        return sorted({str(n) for n in seen} | set(spec.event_groups)), {}
    seen = [n for n, total in zip(names, totals, strict=True) if int(total) > 0]
    return sorted(set(seen) | set(spec.event_groups)), {n: _name_col(i) for i, n in
                                                         enumerate(names)}


def _run(
    events: pd.DataFrame | str | Path,
    snapshots: pd.DataFrame,
    spec: _Spec,
    *,
    memory_limit: str,
    engine: str = "duckdb",
    master: str | None = None,
) -> EventFeatures:
    check_engine(engine)
    with open_engine(engine, master=master, memory_limit=memory_limit) as eng:
        if isinstance(eng, DuckDBEngine):
            n = _load_snapshots(eng.con, snapshots)
        else:  # parsed and checked by DuckDB (one row per lead, in memory), then handed over
            with duckdb.connect() as con:
                con.execute("SET TimeZone = 'UTC'")
                n = _load_snapshots(con, snapshots)
                parsed = con.execute(
                    "SELECT _row, lead_id, created_at, snapshot_at FROM snaps").df()
            eng.register("snaps", parsed)
        group_map = pd.DataFrame(
            {
                "event": pd.Series(list(spec.event_groups), dtype=object),
                "grp": pd.Series([str(g) for g in spec.event_groups.values()], dtype=object),
            }
        )
        eng.register("group_map", group_map)
        eng.register_events(events)
        names: list[str] = []
        if spec.full and not eng.dialect.has_histogram:
            names = sorted(str(v) for v in eng.fetch("SELECT DISTINCT event FROM events")["event"])
        eng.create("agg", _aggregate_sql(spec, eng.dialect, names))
        name_sums = [f"COALESCE(sum({_name_col(i)}) FILTER (WHERE _row IS NOT NULL), 0)"
                     for i in range(len(names))]
        sums = eng.fetchone(
            "SELECT COALESCE(sum(_total), 0), COALESCE(sum(_used), 0), "
            "COALESCE(sum(_after), 0), COALESCE(sum(_before), 0), "
            "COALESCE(sum(_unknown), 0), COALESCE(sum(_unparseable), 0)"
            + "".join(f", {t}" for t in name_sums) + " FROM agg"
        )
        diag_row = sums[: len(DIAGNOSTIC_KEYS)]
        event_names, name_cols = _event_names(eng, spec, names, sums[len(DIAGNOSTIC_KEYS):])
        sql, out_names = _output_sql(spec, event_names, eng.dialect, name_cols)
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
