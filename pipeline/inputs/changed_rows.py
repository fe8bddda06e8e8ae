"""The rows incremental scoring (``--since``) needs, picked in Arrow from Parquet files.

Parquet keeps the minimum and maximum of each column per row group: a filter on a
timestamp skips every row group that ends before it without reading it (an event log
written in time order, or leads appended as they arrive, are read only at their end). Ids
are picked in Arrow too, so only the chosen rows become pandas. Each function gives up
(returns None) on a file it cannot read this way (CSV, other column types): the caller then
reads the file as it always does, with the same result.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

EVENT_ID, EVENT_TIME = "lead_id", "timestamp"


def is_text(kind: pa.DataType) -> bool:
    """Arrow text, plain or dictionary-encoded (read by pandas as the same strings)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def stripped_ids(ids: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Ids as text without surrounding whitespace (as scoring reads them); null stays null."""
    return pc.utf8_trim_whitespace(pc.cast(ids, pa.string()))


def id_mask(ids: pa.Array | pa.ChunkedArray, wanted: pa.Array) -> pa.Array | pa.ChunkedArray:
    """Per row: is the stripped id one of ``wanted`` (text)? Null ids: no."""
    return pc.fill_null(pc.is_in(stripped_ids(ids), value_set=wanted), False)


def _at_or_after(kind: pa.DataType, since: pd.Timestamp) -> pa.Scalar:
    """``since`` (naive UTC) as a scalar comparable with a timestamp column of type ``kind``:
    nanoseconds (Arrow compares across units), in the column's time zone if it has one (the
    same instant)."""
    return pa.scalar(pd.Timestamp(since).as_unit("ns").value, pa.timestamp("ns", tz=kind.tz))


def parquet_rows(path: Path, id_column: str, created_column: str, *,
                 only_ids: Collection[str] | None = None,
                 since: pd.Timestamp | None = None) -> pd.DataFrame | None:
    """The id and creation-time columns of a Parquet file as stored, as pandas; with
    ``only_ids``, the rows whose stripped text id is one of them (plus, for ids that are not
    text, every row: the caller picks them in pandas); with ``since`` (naive UTC) and a
    timestamp column, the rows created at/after it (row groups by their statistics, then
    rows). None when the file lacks either column."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    if id_column not in schema.names or created_column not in schema.names:
        return None
    created_type = schema.field(created_column).type
    where = None
    if since is not None and pa.types.is_timestamp(created_type):
        where = pc.field(created_column) >= _at_or_after(created_type, since)
    table = pq.read_table(path, columns=[id_column, created_column], filters=where)
    if only_ids is not None and is_text(schema.field(id_column).type):
        wanted = pa.array(sorted(only_ids), type=pa.string())
        table = table.filter(id_mask(table.column(id_column), wanted))
    return table.to_pandas()


def event_ids_since(path: Path, since: pd.Timestamp) -> list[str | None] | None:
    """The distinct ids of the events of a Parquet log at/after ``since`` (naive UTC), as
    stored; None unless the log has a text ``lead_id`` and a naive ``timestamp`` column (the
    caller asks DuckDB, which casts whatever the log holds)."""
    import pyarrow.parquet as pq

    if path.suffix.lower() not in (".parquet", ".pq"):
        return None
    try:
        schema = pq.read_schema(path)
    except Exception:  # noqa: BLE001 - DuckDB's reading says what is wrong
        return None
    if EVENT_ID not in schema.names or EVENT_TIME not in schema.names:
        return None
    kind = schema.field(EVENT_TIME).type
    if not (pa.types.is_timestamp(kind) and kind.tz is None and
            is_text(schema.field(EVENT_ID).type)):
        return None
    table = pq.read_table(path, columns=[EVENT_ID],
                          filters=pc.field(EVENT_TIME) >= _at_or_after(kind, since))
    return pc.unique(pc.cast(table.column(EVENT_ID), pa.string())).to_pylist()
