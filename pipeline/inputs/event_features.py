"""Event features at scoring time: the model's learned decay applied at an as-of date.

Only two columns of the leads file (id and creation time) are read, through DuckDB, so a
leads file larger than memory is fine here as it is in the streaming scorer.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.model.rules import PointsRules

if TYPE_CHECKING:
    from pipeline.inputs.features import FeatureSettings


def _source(path: Path) -> str:
    """A DuckDB table expression reading ``path`` (CSV as text, or Parquet), path quoted."""
    quoted = Path(path).as_posix().replace("'", "''")
    if Path(path).suffix.lower() in (".parquet", ".pq"):
        return f"read_parquet('{quoted}')"
    return f"read_csv('{quoted}', all_varchar=true, header=true, ignore_errors=true)"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _naive_utc(ts: pd.Timestamp) -> pd.Timestamp:
    """A timezone-aware time as naive UTC (event times are compared naive)."""
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _leads_with_created(config: Config, leads: Path | None = None, *,
                        first_per_id: bool = True, only_ids: Collection[str] | None = None,
                        since: pd.Timestamp | None = None) -> pd.DataFrame:
    """``lead_id, created_at`` (naive UTC) of every lead with a parseable creation time;
    with ``only_ids``, of those leads only; with ``since`` (naive UTC), of the leads created
    at/after it only. A Parquet file's rows are picked in Arrow before pandas sees them
    (:func:`pipeline.inputs.changed_rows.parquet_rows`: row groups whose creation times all
    fall before ``since`` are not read)."""
    path = Path(leads) if leads is not None else Path(config.data.leads)
    id_col, created_col = config.data.id_name, config.data.created_at_column
    if created_col is None:
        raise UserError("event features need data.created_at_column (the lead creation time)")
    if not path.exists():
        raise UserError(f"{path}: file not found")
    from pipeline.inputs.reader import read_options, read_table, table_format

    options = read_options(config)
    raw = None
    if table_format(path) == "parquet" and not options.row_ids:
        from pipeline.inputs.changed_rows import parquet_rows

        try:  # only the two columns, as stored (a timestamp stays a timestamp)
            raw = parquet_rows(path, id_col, created_col, only_ids=only_ids, since=since)
        except Exception:  # noqa: BLE001 - the one reader below says what is wrong
            raw = None
    if raw is None:  # the one reader (data.delimiter / encoding / decimal, row_id)
        raw = read_table(path, strict=False, options=options).frame
    columns = [str(c) for c in raw.columns]
    absent = [c for c in (id_col, created_col) if c not in columns]
    if absent:
        raise UserError(f"{path}: column(s) {absent} not found (needed for event features)",
                        hint=f"columns found: {', '.join(columns[:20])}")
    frame = creation_times(raw[id_col], raw[created_col], config.data.missing_values,
                           first_per_id=first_per_id)
    if only_ids is not None:  # exact, on the ids as pandas strips them
        frame = frame[frame["lead_id"].isin(only_ids)]
    if since is not None:
        frame = frame[frame["created_at"] >= since]
    return frame


def creation_times(ids: pd.Series, created: pd.Series, missing_values: list[str], *,
                   first_per_id: bool = True) -> pd.DataFrame:
    """``lead_id, created_at`` (naive UTC) of every lead with an id and a parseable creation
    time (text, datetime or timezone-aware values), first row per id (every row when not
    ``first_per_id``)."""
    tokens = set(missing_values) | {""}
    if pd.api.types.is_datetime64_any_dtype(created):
        stamps = pd.to_datetime(created, utc=True)
    else:  # str(value).strip(), tokens missing: vectorised, then parsed
        text = created.astype("str").str.strip()
        text = text.where(~text.isin(tokens))
        stamps = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    lead_ids = ids.astype("str").str.strip()  # missing: NaN, dropped below
    frame = pd.DataFrame({"lead_id": lead_ids.to_numpy(),
                          "created_at": stamps.dt.tz_localize(None).astype("datetime64[ns]")
                         .to_numpy()}).dropna()
    return frame.drop_duplicates("lead_id") if first_per_id else frame


def newest_event_time(events: Path | pd.DataFrame, *, engine: str = "duckdb",
                      master: str | None = None) -> pd.Timestamp:
    """The data's "now": the newest event timestamp (default as-of date for scoring); on
    Spark (``engine``) the log is read there."""
    if engine != "duckdb":
        from pipeline.inputs.event_engines import run_event_sql

        newest = run_event_sql("SELECT max(`timestamp`) AS t FROM events", events,
                               engine=engine, master=master)["t"].iloc[0]
        value = None if pd.isna(newest) else newest
    elif isinstance(events, pd.DataFrame):
        if "timestamp" not in events.columns:
            raise UserError("events: column 'timestamp' not found",
                            hint="the event log has columns lead_id, event, timestamp")
        stamps = pd.to_datetime(events["timestamp"], errors="coerce", utc=True, format="mixed")
        value = stamps.max()
        value = None if pd.isna(value) else value.tz_localize(None)
    else:
        with duckdb.connect() as con:
            value = con.execute(f"SELECT max(try_cast(timestamp AS TIMESTAMP)) FROM "
                                f"{_source(events)}").fetchone()[0]
    if value is None:
        raise UserError(f"{'events' if isinstance(events, pd.DataFrame) else events}: "
                        "no parseable timestamps in the event log")
    return pd.Timestamp(value)


def event_table_at(created: pd.DataFrame, events: Path | pd.DataFrame, rules: PointsRules,
                   settings: FeatureSettings, *, as_of: pd.Timestamp | None,
                   engine: str = "duckdb", master: str | None = None) -> pd.DataFrame:
    """Per-lead event features (index: lead id) at ``as_of`` (default: the newest event) with
    the table's half-lives and event rules (CRM counts), for the leads of ``created``
    (``lead_id, created_at``) created by then: leads created after ``as_of`` get no row.
    ``engine`` / ``master``: where the log is aggregated (``events.engine``, ``events.master``)."""
    from pipeline.inputs.events import aggregate_events

    as_of = (_naive_utc(pd.Timestamp(as_of)) if as_of is not None
             else newest_event_time(events, engine=engine, master=master))
    snapshots = created.assign(snapshot_at=as_of)
    snapshots = snapshots[snapshots["created_at"] <= as_of]
    decayed_made = set(settings.event_columns())
    if rules.event_rules and not any(c in decayed_made for c in rules.input_columns()):
        # the CRM representation only: its counts, no decayed aggregation
        from pipeline.inputs.crm_events import count_events, rule_specs

        return count_events(events, snapshots, rule_specs(rules.event_rules), engine=engine,
                            master=master).set_index("lead_id")
    result = aggregate_events(events, snapshots, event_groups=settings.event_to_group,
                              half_lives=dict(rules.decay_half_life_days),
                              windows=tuple(settings.windows), key_group=settings.key_group,
                              engine=engine, master=master)
    table = result.features.set_index("lead_id")
    if rules.event_rules:
        from pipeline.inputs.crm_events import count_events, rule_specs

        counts = count_events(events, snapshots, rule_specs(rules.event_rules),
                              engine=engine, master=master)
        table = table.join(counts.set_index("lead_id"))
    return table


def scoring_event_table(leads: pd.DataFrame, events: Path | pd.DataFrame, rules: PointsRules,
                        settings: FeatureSettings, *, as_of: pd.Timestamp | None
                        ) -> pd.DataFrame:
    """:func:`event_table_at` for the leads of a frame (its id and creation-time columns)."""
    absent = [c for c in (settings.id_column, settings.created_at_column)
              if c is None or c not in leads.columns]
    if absent:
        raise UserError(f"the leads lack column(s) {absent} needed for event features",
                        hint="event features need the lead id and creation time "
                             "(data.id_column, data.created_at_column)")
    created = creation_times(leads[settings.id_column], leads[settings.created_at_column],
                             settings.missing_values)
    return event_table_at(created, events, rules, settings, as_of=as_of)


def event_features_for_scoring(config: Config, events: Path, rules: PointsRules, *,
                               as_of: pd.Timestamp | None, leads: Path | None = None,
                               only_ids: Collection[str] | None = None) -> pd.DataFrame:
    """Per-lead event features (index: lead id) at ``as_of`` with the model's half-lives.

    ``leads`` is the file being scored (default: the config's leads file): its ids and
    creation times (only these two columns are read) define the snapshot of each lead.
    Leads created after ``as_of`` get no row. ``only_ids`` (``--since``): the rows of these
    leads only, equal to the whole file's rows for them: a lead's features are made from its
    own events and snapshot, and the columns the points table reads do not depend on the
    other leads (``decayed_<group>``, ``velocity_<key>``, ... and the CRM counts).
    """
    from pipeline.inputs.features import FeatureSettings

    return event_table_at(_leads_with_created(config, leads, only_ids=only_ids), events, rules,
                          FeatureSettings.from_config(config), as_of=as_of,
                          engine=config.events.engine, master=config.events.master)


def changed_since(config: Config, events: Path, since: pd.Timestamp, *,
                  leads: Path | None = None) -> set[str]:
    """Lead ids with an event at/after ``since`` or created at/after it (incremental scoring).

    Parquet files are filtered by Arrow on their row groups' statistics (an event log
    sorted by time, or leads appended as they come, read only their recent row groups)."""
    from pipeline.inputs.changed_rows import event_ids_since

    since = _naive_utc(since)
    found = event_ids_since(Path(events), since)
    if found is None:
        with duckdb.connect() as con:
            rows = con.execute(
                f"SELECT DISTINCT CAST(lead_id AS VARCHAR) FROM {_source(events)} "
                "WHERE try_cast(timestamp AS TIMESTAMP) >= ?", [since.to_pydatetime()]
            ).fetchall()
        found = [r[0] for r in rows]
    changed = {str(r).strip() for r in found if r is not None}
    # any row of an id created at/after since (a repeated id's later rows are rejects anyway)
    frame = _leads_with_created(config, leads, first_per_id=False, since=since)
    changed |= set(frame["lead_id"])
    return changed
