"""File I/O at the edges: reading lead tables with clear errors, atomic writes, run locks.

Every path that reads the leads (training, ``score``, the DuckDB and Spark engines, drift,
verify, event scoring) goes through one reader, :func:`read_table`, set by the config's
``data`` keys (:class:`ReadOptions`, :mod:`pipeline.inputs.raw_tables`):

* ``delimiter``: ``auto`` sniffs ``,`` ``;`` tab ``|`` from the header and first lines (quotes
  respected); an explicit character is used as is;
* ``encoding``: ``auto`` reads UTF-8 with or without a BOM, else cp1252 with a warning naming
  the file; an explicit codec (``latin-1``...) is used as is;
* ``decimal``: ``auto`` is ``.`` in a comma-separated file; in a ``;``/tab/``|`` file it is
  ``,`` when numeric-looking columns write ``1.234,56`` / ``3,5`` (and none ``0.5``). With a
  decimal comma every such value is rewritten as ``1234.56`` text, so validation and scoring
  read numbers as usual and a decimal-comma column is never taken for a category;
* ``id_column: null``: the reader adds ``row_id``, the 1-based data row number as text (blank
  lines not counted, the same number as ``row`` in the rejects), which the pipeline then
  uses as the id (``Config.data.id_name``).

A CSV file is read by :mod:`pipeline.inputs.csv_text` (Arrow's fast path or the careful
``csv``-module reader that names every malformed record), a Parquet file here.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import LockedError, UserError
from pipeline.inputs.csv_text import physical_lines, read_csv_as_text, well_formed_csv
from pipeline.inputs.raw_tables import (
    TABLE_SUFFIXES,
    BadRow,
    RawTable,
    ReadOptions,
    check_data_file,
    read_options,
    table_format,
)
from pipeline.inputs.text_format import with_row_ids
from pipeline.outputs import atomic_path


@contextlib.contextmanager
def system_allocator() -> Iterator[None]:
    """While open, Arrow's new buffers come from the C library's malloc instead of its
    bundled mimalloc (the previous pool is restored after).

    For a training run that is faster: mimalloc hands freed memory back to the OS and faults
    it in again, in huge pages that the kernel zeroes 2 MB at a time (2.8 s of page clearing
    in a 1M-lead training, measured with ``perf``)."""
    import pyarrow as pa

    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def read_table(path: str | Path, *, strict: bool = True,
               options: ReadOptions | None = None) -> RawTable:
    """Read a CSV or Parquet file with every value as text.

    ``strict`` (training) fails on the first malformed row; otherwise (scoring) malformed
    rows are returned in ``bad_rows`` so that they can be listed with their reason.
    ``options`` (default: everything ``auto``) give the delimiter, encoding and decimal
    separator of a CSV file, and whether to add ``row_id`` (see :class:`ReadOptions`).
    """
    options = options or ReadOptions()
    path = Path(path)
    check_data_file(path, missing_hint="check the path (relative to the config root)")
    if table_format(path) == "parquet":
        frame = _read_parquet_as_text(path)
        rows = np.arange(1, len(frame) + 1)
        return RawTable(with_row_ids(frame, rows, path) if options.row_ids else frame, path=path)
    return read_csv_as_text(path, strict=strict, options=options)


def _read_parquet_as_text(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != b"PAR1":
        raise UserError(
            f"{path}: not a Parquet file (it starts like a text file)",
            hint="rename it to .csv if it is CSV, or re-export it as Parquet",
        )
    try:
        frame = pq.read_table(path).to_pandas()
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise UserError(f"{path}: cannot read Parquet: {exc}") from None
    return _as_text(frame)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as object strings; missing stays None (numbers keep a canonical repr).

    Each distinct value is formatted once, then rows take their text by code.
    """
    out = {}
    for column in frame.columns:
        series = frame[column]
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        if pd.api.types.is_float_dtype(series):
            texts = [str(int(v)) if float(v).is_integer() else repr(float(v)) for v in uniques]
        else:
            texts = [str(v) for v in uniques]
        table = np.array([*texts, None], dtype=object)
        out[str(column)] = pd.Series(table.take(codes), index=frame.index, dtype=object)
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (lineage tag)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def write_text_atomic(target: str | Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_bytes_atomic(target: str | Path, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_frame_atomic(target: str | Path, frame: pd.DataFrame) -> Path:
    """Write CSV or Parquet (by suffix) atomically; CSV floats with a stable format."""
    target = Path(target)
    with atomic_path(target) as tmp:
        if table_format(target) == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False, lineterminator="\n")
    return target


@contextlib.contextmanager
def run_lock(lock_file: str | Path, *, what: str = "run") -> Iterator[None]:
    """Hold an exclusive, non-blocking lock; a second run exits with a clear message."""
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_file, "a+")  # noqa: SIM115 - held for the duration of the context
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LockedError(
                f"another {what} is already running ({holder}; lock file {lock_file})",
                hint="wait for it to finish; this run did nothing",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()


# the reader's names that live in the modules it reads with, importable from here as before
__all__ = [
    "TABLE_SUFFIXES", "BadRow", "RawTable", "ReadOptions", "atomic_path", "file_digest",
    "physical_lines", "read_options", "read_table", "run_lock", "system_allocator",
    "table_format", "well_formed_csv", "write_bytes_atomic", "write_frame_atomic",
    "write_text_atomic",
]
