"""Event features at scoring time: the model's learned decay applied at an as-of date.

Only two columns of the leads file (id and creation time) are read, through DuckDB, so a
leads file larger than memory is fine here as it is in the streaming scorer.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.rules import PointsRules


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


def _leads_with_created(config: Config, leads: Path | None = None) -> pd.DataFrame:
    """``lead_id, created_at`` (naive UTC) of every lead with a parseable creation time."""
    path = Path(leads) if leads is not None else Path(config.data.leads)
    id_col, created_col = config.data.id_name, config.data.created_at_column
    if created_col is None:
        raise UserError("event features need data.created_at_column (the lead creation time)")
    if not path.exists():
        raise UserError(f"{path}: file not found")
    from pipeline.io import read_options, read_table

    # the leads go through the one reader (data.delimiter / encoding / decimal, row_id)
    raw = read_table(path, strict=False, options=read_options(config)).frame
    columns = [str(c) for c in raw.columns]
    absent = [c for c in (id_col, created_col) if c not in columns]
    if absent:
        raise UserError(f"{path}: column(s) {absent} not found (needed for event features)",
                        hint=f"columns found: {', '.join(columns[:20])}")
    frame = pd.DataFrame({"lead_id": raw[id_col].astype(object),
                          "created_at": raw[created_col].astype(object)})
    tokens = set(config.data.missing_values) | {""}
    created_text = frame["created_at"].astype(object).map(
        lambda v: None if v is None or str(v).strip() in tokens else str(v).strip())
    created = pd.to_datetime(created_text, errors="coerce", utc=True, format="mixed")
    ids = frame["lead_id"].astype(object).map(
        lambda v: None if v is None or not str(v).strip() else str(v).strip())
    return pd.DataFrame({"lead_id": ids,
                         "created_at": created.dt.tz_localize(None).astype("datetime64[ns]")}
                        ).dropna().drop_duplicates("lead_id")


def newest_event_time(events: Path) -> pd.Timestamp:
    """The data's "now": the newest event timestamp (default as-of date for scoring)."""
    with duckdb.connect() as con:
        value = con.execute(f"SELECT max(try_cast(timestamp AS TIMESTAMP)) FROM {_source(events)}"
                            ).fetchone()[0]
    if value is None:
        raise UserError(f"{events}: no parseable timestamps in the event log")
    return pd.Timestamp(value)


def event_features_for_scoring(config: Config, events: Path, rules: PointsRules, *,
                               as_of: pd.Timestamp | None, leads: Path | None = None
                               ) -> pd.DataFrame:
    """Per-lead event features (index: lead id) at ``as_of`` with the model's half-lives.

    ``leads`` is the file being scored (default: the config's leads file): its ids and
    creation times define the snapshot of each lead. Leads created after ``as_of`` get no row.
    """
    from pipeline.events import aggregate_events

    frame = _leads_with_created(config, leads)
    as_of = _naive_utc(as_of) if as_of is not None else newest_event_time(events)
    snapshots = frame.assign(snapshot_at=as_of)
    snapshots = snapshots[snapshots["created_at"] <= as_of]
    result = aggregate_events(events, snapshots, event_groups=config.events.event_to_group,
                              half_lives=dict(rules.decay_half_life_days),
                              windows=tuple(config.events.windows),
                              key_group=config.events.key_group)
    return result.features.set_index("lead_id")


def changed_since(config: Config, events: Path, since: pd.Timestamp, *,
                  leads: Path | None = None) -> set[str]:
    """Lead ids with an event at/after ``since`` or created at/after it (incremental scoring)."""
    since = _naive_utc(since)
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT DISTINCT CAST(lead_id AS VARCHAR) FROM {_source(events)} "
            "WHERE try_cast(timestamp AS TIMESTAMP) >= ?", [since.to_pydatetime()]).fetchall()
    changed = {str(r[0]).strip() for r in rows if r[0] is not None}
    frame = _leads_with_created(config, leads)
    changed |= set(frame.loc[frame["created_at"] >= since, "lead_id"])
    return changed
