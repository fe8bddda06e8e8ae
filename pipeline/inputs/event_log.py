"""The event log read carefully before DuckDB touches it: one clear error, then warnings.

The header (and the encoding, and whether the file is text at all) is read by the careful
reader (:mod:`pipeline.inputs.reader`): a log without ``timestamp`` is one message naming the
file, not a DuckDB binder error. Then one DuckDB pass counts what would be silently odd:

* no events at all (every lead scores as if it had no activity);
* events dated after now: the default ``--as-of`` is the newest event, so a 2099 typo
  would move every lead's decay to 2099; it becomes the newest event not after now, and the
  warning names the file, the count and the dates;
* event names in no ``events.groups`` (ignored by the features), with the first names;
* times with a UTC offset beside times without one: the offsets are converted to UTC and the
  naive times are taken as UTC, which is wrong when they were written in local time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from pipeline.errors import UserError
from pipeline.inputs.raw_tables import check_data_file
from pipeline.inputs.reader import ReadOptions, table_format
from pipeline.inputs.records import read_header, shorten
from pipeline.inputs.text_format import resolve_delimiter, resolve_encoding

EVENT_COLUMNS = ("lead_id", "event", "timestamp")
#: a time of day followed by a UTC offset or Z (a bare date's "-02" is not an offset)
OFFSET_PATTERN = r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|z|UTC|[+-]\d{2}(:?\d{2})?)$"


def event_log_header(path: Path) -> list[str]:
    """The column names of an event log, read by the careful reader (CSV or Parquet)."""
    check_data_file(path, what="event log", missing_hint="set data.events",
                    empty_hint="expected a header lead_id,event,timestamp and one row per event")
    if table_format(path) == "parquet":
        import pyarrow.parquet as pq

        with open(path, "rb") as handle:
            if handle.read(4) != b"PAR1":
                raise UserError(f"{path}: not a Parquet file (it starts like a text file)",
                                hint="rename it to .csv if it is CSV")
        try:
            return [str(name) for name in pq.read_schema(path).names]
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise UserError(f"{path}: cannot read Parquet: {shorten(str(exc), 200)}") from None
    options = ReadOptions()
    encoding = resolve_encoding(path, options.encoding)
    delimiter = resolve_delimiter(path, options)
    with open(path, encoding=encoding, newline="") as handle:
        header, _ = read_header(handle, delimiter, path)
    return [c.strip() for c in header]


@dataclass(frozen=True)
class EventLogCheck:
    """What :func:`check_event_log` found: the warnings to print and, when ``--as-of`` was
    not given, the scoring time to use instead of the newest event (``as_of``: the newest
    event not after now when some are dated after now; now when the log is empty; None: the
    newest event, as usual)."""

    warnings: list[str]
    as_of: pd.Timestamp | None


def check_event_log(path: str | Path, event_to_group: Mapping[str, str], *,
                    default_as_of: bool, now: datetime | None = None) -> EventLogCheck:
    """Refuse an event log without the needed columns; return warnings (see module doc).

    ``default_as_of``: ``--as-of`` was not given, so the newest event would be the scoring
    time: events dated after ``now`` are left out of the default (and the warning says so);
    an empty log is scored as of ``now``."""
    import duckdb

    path = Path(path)
    header = event_log_header(path)
    missing = [c for c in EVENT_COLUMNS if c not in header]
    if missing:
        raise UserError(f"{path}: the event log lacks column(s) {missing} (it has "
                        f"{shorten(header, 120)})",
                        hint="the event log has one row per event: lead_id, event, timestamp")
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    quoted = path.as_posix().replace("'", "''")
    source = (f"read_parquet('{quoted}')" if table_format(path) == "parquet" else
              f"read_csv('{quoted}', all_varchar=true, header=true, ignore_errors=true)")
    try:
        with duckdb.connect() as con:
            total, future, newest, past = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE ts > $now), max(ts), "
                "max(ts) FILTER (WHERE ts <= $now) FROM (SELECT "
                f"try_cast(timestamp AS TIMESTAMP) AS ts FROM {source})",
                {"now": now}).fetchone()
            names = con.execute(f"SELECT CAST(event AS VARCHAR) AS name, count(*) FROM {source} "
                                "GROUP BY name ORDER BY count(*) DESC, name").fetchall()
            kind = con.execute(f"DESCRIBE SELECT timestamp FROM {source}").fetchone()[1]
            if kind.startswith(("TIMESTAMP", "DATE")):  # typed times: no text offsets to mix
                with_offset, without_offset = 0, 0
            else:  # text: each value says whether it carries an offset
                with_offset, without_offset = con.execute(
                    "SELECT count(*) FILTER (WHERE regexp_matches(t, $offset)), "
                    "count(*) FILTER (WHERE NOT regexp_matches(t, $offset)) FROM (SELECT "
                    f"trim(CAST(timestamp AS VARCHAR)) AS t FROM {source} "
                    "WHERE timestamp IS NOT NULL)", {"offset": OFFSET_PATTERN}).fetchone()
    except duckdb.Error as exc:
        raise UserError(f"{path}: cannot read the event log: "
                        f"{shorten(str(exc).splitlines()[0], 200)}") from None
    warnings = []
    as_of = None
    if total == 0:
        warnings.append(f"{path}: the event log has no events: every lead scores as if it had "
                        "no activity")
        as_of = pd.Timestamp(now) if default_as_of else None
    if future and default_as_of:
        as_of = pd.Timestamp(past if past is not None else now)
        warnings.append(f"{path}: {future:,} events are dated after now (newest "
                        f"{pd.Timestamp(newest)}): scored as of the newest event before now "
                        f"({as_of}), so those events are left out; pass --as-of to choose, or "
                        "fix the dates")
    if with_offset and without_offset:
        warnings.append(f"{path}: time zones are mixed: {with_offset:,} timestamps carry a UTC "
                        f"offset and {without_offset:,} do not; the offsets are converted to "
                        "UTC and the times without one are taken as UTC (write every time "
                        "with its offset, or every time in UTC)")
    if event_to_group:
        unknown = [(name, n) for name, n in names if name not in event_to_group]
        if unknown:
            listed = ", ".join(f"{shorten(name, 40)}: {n:,}" for name, n in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            warnings.append(f"{path}: {sum(n for _, n in unknown):,} events have names in no "
                            f"events.groups (they count in no group): {listed}{more}")
    return EventLogCheck(warnings, as_of)


EVENT_WARNINGS = {
    "unparseable_timestamps": "events with an unparseable timestamp were ignored",
    "events_unknown_lead": "events for leads that are not in the leads file were ignored",
    "events_before_creation": "events dated before their lead was created were ignored",
}


def event_warnings(diagnostics: Mapping[str, int], source: str) -> list[str]:
    """Warning lines for the event-log problems that ``aggregate_events`` counted.

    ``diagnostics`` is :attr:`pipeline.inputs.features.FeatureSet.event_diagnostics`; one line per
    non-zero problem, with the count and the share of all events, naming the file.
    """
    total = int(diagnostics.get("events_total", 0))
    lines = []
    for key, what in EVENT_WARNINGS.items():
        count = int(diagnostics.get(key, 0))
        if count:
            share = f" ({count / total:.1%} of {total:,})" if total else ""
            lines.append(f"{source}: {count:,} {what}{share}")
    return lines
