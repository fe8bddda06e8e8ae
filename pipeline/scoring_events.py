"""Event features at scoring time: the model's learned decay applied at an as-of date."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.rules import PointsRules


def _leads_with_created(config: Config) -> pd.DataFrame:
    from pipeline.io import read_table
    from pipeline.validate import normalise_missing

    raw = read_table(config.data.leads, strict=False).frame
    id_col, created_col = config.data.id_column, config.data.created_at_column
    if created_col is None or created_col not in raw.columns:
        raise UserError("event features need data.created_at_column in the leads file")
    frame = normalise_missing(raw[[id_col, created_col]], config.data.missing_values)
    created = pd.to_datetime(frame[created_col], errors="coerce", utc=True, format="mixed")
    return pd.DataFrame({"lead_id": frame[id_col].astype(str),
                         "created_at": created.dt.tz_localize(None).astype("datetime64[ns]")}
                        ).dropna().drop_duplicates("lead_id")


def newest_event_time(events: Path) -> pd.Timestamp:
    """The data's "now": the newest event timestamp (default as-of date for scoring)."""
    source = f"read_csv_auto('{events.as_posix()}', all_varchar=true)" \
        if events.suffix.lower() == ".csv" else f"read_parquet('{events.as_posix()}')"
    with duckdb.connect() as con:
        value = con.execute(f"SELECT max(try_cast(timestamp AS TIMESTAMP)) FROM {source}"
                            ).fetchone()[0]
    if value is None:
        raise UserError(f"{events}: no parseable timestamps in the event log")
    return pd.Timestamp(value)


def event_features_for_scoring(config: Config, events: Path, rules: PointsRules, *,
                               as_of: pd.Timestamp | None) -> pd.DataFrame:
    """Per-lead event features (index: lead id) at ``as_of`` with the model's half-lives."""
    from pipeline.events import aggregate_events

    leads = _leads_with_created(config)
    as_of = as_of if as_of is not None else newest_event_time(events)
    snapshots = leads.assign(snapshot_at=as_of)
    snapshots = snapshots[snapshots["created_at"] <= as_of]
    result = aggregate_events(events, snapshots, event_groups=config.events.event_to_group,
                              half_lives=dict(rules.decay_half_life_days),
                              windows=tuple(config.events.windows),
                              key_group=config.events.key_group)
    return result.features.set_index("lead_id")


def changed_since(config: Config, events: Path, since: pd.Timestamp) -> set[str]:
    """Lead ids with an event at/after ``since`` or created/updated at/after it."""
    source = f"read_csv_auto('{events.as_posix()}', all_varchar=true)" \
        if events.suffix.lower() == ".csv" else f"read_parquet('{events.as_posix()}')"
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT DISTINCT CAST(lead_id AS VARCHAR) FROM {source} "
            "WHERE try_cast(timestamp AS TIMESTAMP) >= ?", [since.to_pydatetime()]).fetchall()
    changed = {r[0] for r in rows}
    leads = _leads_with_created(config)
    changed |= set(leads.loc[leads["created_at"] >= since, "lead_id"])
    return changed
