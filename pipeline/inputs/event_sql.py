"""The SQL of the event aggregation, one text for DuckDB and Spark (:class:`Dialect`).

* :func:`load_snapshots`: parse and check the snapshots into DuckDB's table ``snaps``;
* :func:`aggregate_sql`: the single pass over the log, one row per lead (``agg``);
* :func:`output_sql`: the per-lead feature columns in the documented order.

The pass joins each event to its lead once (Spark: a broadcast join, the log is never
shuffled for it), gives it small integer codes for its name and group (no join with a
mapping table, no string comparison per aggregate) and computes every feature as a filtered
aggregate of that one ``GROUP BY``. The active days are a bitmap of the days since the lead's
creation, 62 days per BIGINT word (``bit_or`` per word, ``bit_count`` after), instead of a
``count(DISTINCT day)``: no per-(lead, day) hash table (DuckDB) and no row-doubling ``Expand``
and shuffle by (lead, day) (Spark). When the longest creation-to-snapshot span needs more
than :data:`MAX_DAY_WORDS` words the distinct count is used instead (the same number).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb
import pandas as pd

from pipeline.errors import UserError
from pipeline.inputs.event_engines import Dialect, sql_literal
from pipeline.inputs.event_spec import (
    OTHER_GROUP,
    EventSpec,
    decay_column,
    half_life_column,
    slugify,
    window_column,
)

SNAPSHOT_COLUMNS = ("lead_id", "created_at", "snapshot_at")
US_PER_DAY = 86_400_000_000
DAYS_PER_WORD = 62  # bits 0..61 of a BIGINT: never the sign bit
MAX_DAY_WORDS = 24  # spans up to 1,488 days as a bitmap; longer ones: count(DISTINCT day)


def name_column(i: int) -> str:
    """Column of the i-th event name's count in ``agg``."""
    return f"_n__{i}"


def load_snapshots(con: duckdb.DuckDBPyConnection, snapshots: pd.DataFrame) -> int:
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
    ts = Dialect("duckdb").timestamp
    con.register("snaps_raw", raw)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE snaps AS
        SELECT _row, CAST(lead_id AS VARCHAR) AS lead_id,
               created_at IS NOT NULL AND {ts('"created_at"')} IS NULL AS bad_created,
               snapshot_at IS NOT NULL AND {ts('"snapshot_at"')} IS NULL AS bad_snap,
               {ts('"created_at"')} AS created_at,
               {ts('"snapshot_at"')} AS snapshot_at
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


def day_words(con: duckdb.DuckDBPyConnection) -> int | None:
    """BIGINT words the active-day bitmap needs for DuckDB's ``snaps`` (a used event lies on
    one of the calendar days ``0..span`` after creation); None: too many, count distinct."""
    span = con.execute(
        "SELECT max(date_diff('day', CAST(created_at AS DATE), CAST(snapshot_at AS DATE))) "
        "FROM snaps"
    ).fetchall()[0][0]
    words = 0 if span is None else int(span) // DAYS_PER_WORD + 1
    return words if words <= MAX_DAY_WORDS else None


def _code(column: str, codes: Mapping[str, int], default: int | None) -> str:
    """``column`` as a small integer: the code of its value (``default`` for any other)."""
    other = "CAST(NULL AS INT)" if default is None else str(default)
    if not codes:
        return other
    whens = " ".join(f"WHEN {sql_literal(v)} THEN {c}" for v, c in codes.items())
    return f"CASE {column} {whens} ELSE {other} END"


def aggregate_sql(spec: EventSpec, dialect: Dialect, names: Sequence[str],
                  words: int | None) -> str:
    """The single pass: every event row is classified and aggregated per lead (``_row``).

    ``names``: the distinct event names of the log (each gets a count column
    :func:`name_column`); ``words``: the active-day bitmap's size (:func:`day_words`).
    """
    q = dialect.ident
    group_code = {g: i for i, g in enumerate(spec.groups)}
    by_event = {str(e): group_code[str(g)] for e, g in spec.event_groups.items()}
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
        key = group_code[spec.key_group]
        aggs += [f"count(*) FILTER (WHERE used AND ecode = {i}) AS {name_column(i)}"
                 for i in range(len(names))]
        aggs.append("min(age_us) FILTER (WHERE used) AS _min_age_us")
        if words is None:
            aggs.append("count(DISTINCT CASE WHEN used THEN CAST(ts AS DATE) END) AS _days_active")
        for k in range(words or 0):
            low = k * DAYS_PER_WORD
            # the position is clamped: an engine may compute it for rows the filter drops
            bit = dialect.bit(f"LEAST(GREATEST(day - {low}, 0), {DAYS_PER_WORD - 1})")
            aggs.append(f"bit_or({bit}) FILTER (WHERE used AND day >= {low} "
                        f"AND day < {low + DAYS_PER_WORD}) AS _days_{k}")
        aggs += [
            f"count(*) FILTER (WHERE used AND gcode = {key} "
            f"AND since_us < {7 * US_PER_DAY}) AS _week_key",
            f"min(since_us) FILTER (WHERE used AND gcode = {key}) AS _first_key_us",
        ]
        for g in spec.groups:
            for w in spec.windows:
                aggs.append(
                    f"count(*) FILTER (WHERE used AND gcode = {group_code[g]} "
                    f"AND age_us <= {w * US_PER_DAY}) AS {q(window_column(g, w))}"
                )
    for g, h in spec.half_lives.items():
        aggs.append(_decay_agg(group_code[g], h, q(decay_column(g))))
    for g, hs in spec.grid.items():
        for h in hs:
            aggs.append(_decay_agg(group_code[g], h, q(half_life_column(g, h))))
    select = ",\n  ".join(aggs)
    ts = "src." + q("timestamp")
    day = (dialect.days_between("CAST(s.created_at AS DATE)", f"CAST({ts} AS DATE)")
           if spec.full and words else "0")
    ecode = _code("src.event", {n: i for i, n in enumerate(names)}, None) if spec.full else "0"
    return f"""
    WITH e AS (
      SELECT {dialect.broadcast("s")} s._row,
             {ecode} AS ecode,
             {_code("src.event", by_event, group_code[OTHER_GROUP])} AS gcode,
             {ts} AS ts,
             {ts} IS NULL AS bad_ts,
             {dialect.micros_between(ts, "s.snapshot_at")} AS age_us,
             {dialect.micros_between("s.created_at", ts)} AS since_us,
             {day} AS day
      FROM events AS src
      LEFT JOIN snaps AS s ON src.lead_id = s.lead_id
    ), f AS (
      SELECT *, COALESCE(NOT bad_ts AND _row IS NOT NULL AND since_us >= 0 AND age_us > 0,
                         false) AS used,
             CAST(age_us AS DOUBLE) / {US_PER_DAY} AS age_days
      FROM e
    )
    SELECT _row,
      {select}
    FROM f
    GROUP BY _row
    """


def _decay_agg(group_code: int, half_life: float, alias: str) -> str:
    return (
        f"sum(pow(0.5, age_days / CAST({float(half_life)!r} AS DOUBLE))) "
        f"FILTER (WHERE used AND gcode = {group_code}) AS {alias}"
    )


def output_sql(spec: EventSpec, event_names: list[str], dialect: Dialect,
               name_cols: Mapping[str, str], words: int | None) -> tuple[str, list[str]]:
    """Final per-lead columns in the documented order, one row per snapshot lead.

    ``name_cols``: each event name's count column of ``agg`` (a name without one is 0).
    """
    q = dialect.ident
    cols: list[tuple[str, str]] = []
    if spec.full:
        by_slug: dict[str, list[str]] = {}
        for name in event_names:
            by_slug.setdefault(slugify(name), []).append(name)
        for slug in sorted(by_slug):
            terms = [f"COALESCE(a.{name_cols[n]}, 0)" if n in name_cols else "0"
                     for n in sorted(by_slug[slug])]
            cols.append((f"n_{slug}", f"CAST({' + '.join(terms)} AS BIGINT)"))
        for g in spec.groups:
            for w in spec.windows:
                name = window_column(g, w)
                cols.append((name, f"COALESCE(a.{q(name)}, 0)"))
        k = slugify(spec.key_group)
        if words is None:
            days = "COALESCE(a._days_active, 0)"
        else:
            # bit_count is a TINYINT in DuckDB: each word's count is widened before adding
            days = " + ".join(f"CAST(COALESCE(bit_count(a._days_{i}), 0) AS BIGINT)"
                              for i in range(words)) or "CAST(0 AS BIGINT)"
        cols += [
            ("days_since_last_event", f"CAST(a._min_age_us AS DOUBLE) / {US_PER_DAY}"),
            ("days_active", days),
            (f"velocity_{k}", "CAST(COALESCE(a._week_key, 0) AS DOUBLE) / 7"),
            (f"days_to_first_{k}", f"CAST(a._first_key_us AS DOUBLE) / {US_PER_DAY}"),
        ]
    for g in spec.half_lives:
        name = decay_column(g)
        cols.append((name, f"COALESCE(a.{q(name)}, 0.0)"))
    for g, hs in spec.grid.items():
        for h in hs:
            name = half_life_column(g, h)
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
