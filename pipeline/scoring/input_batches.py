"""The leads file read in batches of text rows: CSV record by record (a malformed record is a
bad row with its position, never dropped) or through Arrow when the file allows, Parquet by
row groups, optionally only the rows of some ids (``--since``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.errors import UserError
from pipeline.inputs.changed_rows import id_mask
from pipeline.inputs.reader import ReadOptions, table_format
from pipeline.inputs.records import wrong_delimiter
from pipeline.inputs.text_format import (
    AUTO,
    finish_text,
    is_utf8_codec,
    resolve_delimiter,
    sniff_decimal,
    with_row_ids,
)
from pipeline.scoring.arrow_csv import arrow_csv_frames, csv_header


@dataclass(frozen=True)
class RawBatch:
    """A batch of input rows read as text.

    ``rows`` holds the 1-based data-row number (header excluded, blank lines not counted) of
    each row of ``frame``; ``bad`` lists the malformed rows of this stretch of the file as
    (data-row number, lead id if recognisable, reason): they are rejects, never dropped.
    """

    frame: pd.DataFrame
    rows: np.ndarray
    bad: list[tuple[int, str | None, str]]
    skipped: int = 0  # rows left out by ``only_ids`` (see iter_batches)


def iter_batches(path: Path, *, batch_size: int, id_column: str | None = None,
                 options: ReadOptions | None = None, columns: list[str] | None = None,
                 fast: bool = False, only_ids: pa.Array | None = None) -> Iterator[RawBatch]:
    """Yield :class:`RawBatch` es of at most ``batch_size`` rows from a CSV or Parquet file.

    CSV is read with the standard ``csv`` module, record by record (quoted newlines welcome),
    so every record is accounted for: a record with a different number of fields than the
    header becomes a bad row with its position instead of vanishing. Raises
    :class:`UserError` for files that cannot be read at all (not UTF-8, wrong delimiter,
    Parquet that is not Parquet, a header without rows).

    ``options`` (``data.delimiter`` / ``encoding`` / ``decimal``, ``row_id`` for a file
    without ids) are honoured as :func:`pipeline.inputs.reader.read_table` honours them; an ``auto``
    decimal is decided on the first batch and kept for the rest of the file. ``columns``:
    read only these (those the file has).

    ``fast``: a UTF-8 CSV file is streamed by Arrow instead
    (:mod:`pipeline.scoring.arrow_csv`), which raises
    :class:`~pipeline.scoring.arrow_csv.CarefulReadNeeded` when the file turns out to have
    a malformed record: the caller then starts again without ``fast``.

    ``only_ids`` (Parquet with ids): keep only the rows whose stripped id is one of these,
    chosen in Arrow before any row becomes pandas (``RawBatch.skipped`` counts the others).
    """
    options = options or ReadOptions()
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if table_format(path) == "parquet":
        for batch in _parquet_batches(path, batch_size, columns, only_ids, id_column):
            yield (RawBatch(with_row_ids(batch.frame, batch.rows, path), batch.rows, batch.bad)
                   if options.row_ids else batch)
        return
    if fast and (options.encoding == AUTO or is_utf8_codec(options.encoding)):
        delimiter = resolve_delimiter(path, options)
        header = csv_header(path, delimiter)
        if header is not None:
            # an auto decimal is decided on every column, as the careful reader does
            projected = columns if options.decimal != AUTO or delimiter == "," else None
            yield from _fast_csv_batches(path, header, batch_size, delimiter, options, projected)
            return
    yield from _csv_batches(path, batch_size, id_column, options)


def _fast_csv_batches(path: Path, header: list[str], batch_size: int, delimiter: str,
                      options: ReadOptions, columns: list[str] | None) -> Iterator[RawBatch]:
    """:func:`pipeline.scoring.arrow_csv.arrow_csv_frames` as raw batches (rows numbered
    from 1: the file has no malformed record, or the reader stops)."""
    wrong_delimiter(path, header, delimiter)
    decimal: str | None = None
    first = 1
    for frame in arrow_csv_frames(path, header, batch_size=batch_size, delimiter=delimiter,
                                  columns=columns):
        numbers = np.arange(first, first + len(frame))
        if decimal is None:
            decimal = sniff_decimal(frame, delimiter, options, path)
        yield RawBatch(finish_text(frame, numbers, decimal=decimal, options=options, path=path),
                       numbers, [])
        first += len(frame)


def _parquet_batches(path: Path, batch_size: int, columns: list[str] | None,
                     only_ids: pa.Array | None = None, id_column: str | None = None
                     ) -> Iterator[RawBatch]:
    import pyarrow.parquet as pq

    with open(path, "rb") as handle:
        if handle.read(4) != b"PAR1":
            raise UserError(f"{path}: not a Parquet file (it starts like a text file)",
                            hint="rename it to .csv if it is CSV, or re-export it as Parquet")
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise UserError(f"{path}: cannot read Parquet: {exc}") from None
    if parquet.metadata.num_rows == 0:
        raise UserError(f"{path}: has columns but no rows", hint="expected one row per lead")
    first = 1
    if columns is not None:
        names = set(parquet.schema_arrow.names)
        columns = [c for c in dict.fromkeys(columns) if c in names]
    if only_ids is not None and id_column in parquet.schema_arrow.names:
        yield from _picked_rows(parquet, batch_size, columns, only_ids, id_column)
        return
    for batch in parquet.iter_batches(batch_size=batch_size, columns=columns):
        rows = np.arange(first, first + batch.num_rows)
        first += batch.num_rows
        yield RawBatch(batch.to_pandas(), rows, [], 0)


def _picked_rows(parquet: Any, batch_size: int, columns: list[str] | None, only_ids: pa.Array,
                 id_column: str) -> Iterator[RawBatch]:
    """The rows of ``only_ids`` (stripped text ids), numbered as in the whole file: each row
    group's id column is read first; its other columns only when it holds a chosen id (batch
    by batch), and only the chosen rows are kept, gathered into batches of ``batch_size``.
    ``RawBatch.skipped`` counts the others (a last empty batch carries those after the last
    chosen row)."""
    names = list(columns if columns is not None else parquet.schema_arrow.names)
    others = [c for c in names if c != id_column]
    first, skipped = 1, 0
    pending: list[tuple[pa.Table, np.ndarray]] = []
    for group in range(parquet.metadata.num_row_groups):
        size = parquet.metadata.row_group(group).num_rows
        ids = parquet.read_row_group(group, columns=[id_column]).column(0)
        picked = np.flatnonzero(id_mask(ids, only_ids).to_numpy())
        skipped += size - len(picked)
        if len(picked):
            chosen = {id_column: ids.take(picked)}
            if others:
                parts, start = [], 0
                for batch in parquet.iter_batches(batch_size=batch_size, row_groups=[group],
                                                  columns=others):
                    here = picked[(picked >= start) & (picked < start + batch.num_rows)]
                    if len(here):
                        parts.append(batch.take(pa.array(here - start)))
                    start += batch.num_rows
                rest = pa.Table.from_batches(parts)
                chosen.update({c: rest.column(c) for c in others})
            pending.append((pa.table({c: chosen[c] for c in names}), first + picked))
        first += size
        if sum(len(rows) for _, rows in pending) >= batch_size or (
                pending and group == parquet.metadata.num_row_groups - 1):
            table = pa.concat_tables([t for t, _ in pending])
            rows = np.concatenate([r for _, r in pending])
            pending = []
            for at in range(0, len(rows), batch_size):
                if len(rows) - at < batch_size and group < parquet.metadata.num_row_groups - 1:
                    pending = [(table.slice(at), rows[at:])]  # the rest waits for more rows
                    break
                yield RawBatch(table.slice(at, batch_size).to_pandas(), rows[at:at + batch_size],
                               [], skipped)
                skipped = 0
    if skipped:
        schema = parquet.schema_arrow
        empty = pa.schema([schema.field(c) for c in names]).empty_table().to_pandas()
        yield RawBatch(empty, np.empty(0, dtype=np.int64), [], skipped)


def _csv_batches(path: Path, batch_size: int, id_column: str | None,
                 options: ReadOptions) -> Iterator[RawBatch]:
    from pipeline.inputs.records import numbered_records, read_header
    from pipeline.inputs.text_format import resolve_delimiter, resolve_encoding

    delimiter = resolve_delimiter(path, options)
    encoding = resolve_encoding(path, options.encoding)  # reads the whole file once
    decimal: str | None = None

    def finished(records: list[list[str]], rows: list[int],
                 bad: list[tuple[int, str | None, str]]) -> RawBatch:
        nonlocal decimal
        frame = pd.DataFrame(records, columns=header, dtype=object)
        numbers = np.asarray(rows, dtype=np.int64)
        if decimal is None and records:
            decimal = sniff_decimal(frame, delimiter, options, path)
        frame = finish_text(frame, numbers, decimal=decimal or ".", options=options, path=path)
        return RawBatch(frame, numbers, bad)

    try:
        with open(path, encoding=encoding, newline="") as handle:
            header, after = read_header(handle, delimiter, path)
            width = len(header)
            id_at = header.index(id_column) if id_column in header else None
            records: list[list[str]] = []
            rows: list[int] = []
            bad: list[tuple[int, str | None, str]] = []
            row = 0
            for row, fields, line, swallowed in numbered_records(handle, delimiter, width,
                                                                 path=path, start=after):
                if swallowed is not None:  # each line a stray quote swallowed is a reject
                    bad.append((row, str(row) if options.row_ids else _ragged_id(fields, id_at),
                                f"malformed row: {swallowed} (line {line})"))
                elif len(fields) == width:
                    records.append(fields)
                    rows.append(row)
                else:
                    bad.append((row, str(row) if options.row_ids else _ragged_id(fields, id_at),
                                f"malformed row: {len(fields)} fields, expected {width} "
                                f"(line {line} of the file)"))
                if len(records) >= batch_size:
                    yield finished(records, rows, bad)
                    records, rows, bad = [], [], []
            if row == 0:
                raise UserError(f"{path}: has a header but no rows",
                                hint="expected one row per lead")
            if records or bad:
                yield finished(records, rows, bad)
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: cannot be read as {encoding} (data.encoding): {exc.reason}",
                        hint="set data.encoding to the file's encoding (latin-1 reads any byte)"
                        ) from None


def _ragged_id(fields: list[str], id_at: int | None) -> str | None:
    """The id of a malformed row, read at the id column's position (a guess, for the user)."""
    if id_at is None or id_at >= len(fields):
        return None
    return fields[id_at].strip() or None
