"""A well-formed UTF-8 CSV file streamed by Arrow's CSV reader, batch by batch, as text.

The careful reader (the ``csv`` module, record by record) accounts for every malformed
record; this one is the fast path for files that have none. It gives the same frames (every
cell as text, empty fields as ``""``, blank lines skipped, data rows numbered from 1), and
stops with :class:`CarefulReadNeeded` the moment the file turns out to need the careful
reader (a record with the wrong number of fields, bytes that are not UTF-8, anything Arrow
refuses), so the caller can start again with it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

BLOCK_BYTES = 8 << 20  # bytes Arrow parses at a time


class CarefulReadNeeded(Exception):  # noqa: N818 - a signal to switch readers, not an error
    """The file needs the careful reader (raised before or between batches)."""


def csv_header(path: Path, delimiter: str) -> list[str] | None:
    """The header when Arrow can read the file as the careful reader would (UTF-8, distinct
    names, at least two columns), else None."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            while header == []:
                header = next(reader, None)
    except (UnicodeDecodeError, csv.Error):
        return None
    if not header or len(set(header)) != len(header) or len(header) < 2:
        return None
    return header


def arrow_csv_frames(path: Path, header: list[str], *, batch_size: int, delimiter: str,
                     columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """Frames of at most ``batch_size`` rows (the ``columns`` of the header, else all),
    every cell as pandas ``str``; raises :class:`CarefulReadNeeded` on the first record the
    careful reader would treat otherwise."""
    wanted = header if columns is None else [c for c in header if c in set(columns)]

    def on_invalid(row: object) -> str:
        raise CarefulReadNeeded(f"malformed record: {row}")

    try:
        reader = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=True),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.large_string() for name in header},
                include_columns=wanted, strings_can_be_null=False,
                quoted_strings_can_be_null=False))
        if reader.schema.names != wanted:
            raise CarefulReadNeeded("Arrow read another header")
        pending: list[pa.RecordBatch] = []
        held = total = 0
        for batch in reader:
            pending.append(batch)
            held += batch.num_rows
            total += batch.num_rows
            while held >= batch_size:
                table = pa.Table.from_batches(pending)
                yield table.slice(0, batch_size).to_pandas()
                rest = table.slice(batch_size)
                pending, held = rest.to_batches(), rest.num_rows
        if held:
            yield pa.Table.from_batches(pending).to_pandas()
        if total == 0:
            raise CarefulReadNeeded("no rows: the careful reader says so")
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise CarefulReadNeeded(str(exc)) from None
