"""File I/O at the edges: reading lead tables with clear errors, atomic writes, run locks.

Every path that reads the leads (training, ``score``, the DuckDB and Spark engines, drift,
verify, event scoring) goes through one reader, set by the config's ``data`` keys:

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

A plain UTF-8 comma file still takes Arrow's fast path (when it has one record per line);
the others go through the ``csv`` module, record by record (:func:`csv_records`): a record
that a stray quote made swallow the following leads is split back into its lines, each a
malformed row with its line number, so no lead vanishes into another's field. A gzip, zip
(``.xlsx``) or Parquet file named ``.csv`` is refused saying what it is; fields may be up to
16 MB; a quoted decimal-comma column in a comma file is warned about.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import LockedError, UserError
from pipeline.inputs.records import (
    DELIMITER_WORDS,
    check_text_file,
    csv_records,
    read_header,
)
from pipeline.inputs.text_format import (
    AUTO,
    finish_text,
    is_utf8_codec,
    resolve_delimiter,
    resolve_encoding,
    sniff_decimal,
    with_row_ids,
)
from pipeline.outputs import atomic_path

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class ReadOptions:
    """How to read a leads file (the ``data`` keys of the config; ``auto`` means decide per file).

    ``row_ids``: the file has no id column (``data.id_column: null``): the reader adds
    ``row_id``, the 1-based data row number as text. ``id_column`` is never given the decimal
    conversion (an id such as ``1.234`` stays as written); ``missing_values`` do not count
    against a column being numeric when the decimal is sniffed.
    """

    delimiter: str = AUTO
    encoding: str = AUTO
    decimal: str = AUTO
    row_ids: bool = False
    id_column: str | None = None
    missing_values: tuple[str, ...] = ("",)


def read_options(config: object) -> ReadOptions:
    """The :class:`ReadOptions` of a :class:`pipeline.config.Config` (its ``data`` section)."""
    data = config.data  # type: ignore[attr-defined]
    return ReadOptions(delimiter=data.delimiter, encoding=data.encoding, decimal=data.decimal,
                       row_ids=data.id_column is None, id_column=data.id_name,
                       missing_values=tuple(data.missing_values))


@dataclass(frozen=True)
class BadRow:
    """A raw input row that could not be read (kept so it can be listed in a rejects file)."""

    line: int
    reason: str
    raw: str


@dataclass(frozen=True)
class RawTable:
    """A table read as text: every cell a string (or missing), plus the rows that could not
    be parsed. Row numbers count data rows from 1 (header and blank lines excluded)."""

    frame: pd.DataFrame
    bad_rows: list[BadRow] = field(default_factory=list)
    path: Path | None = None
    rows: np.ndarray | None = None  # 1-based data row number of each row (None: 1, 2, 3...)


def table_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".csv" or suffix in (".txt", ".tsv", ""):
        return "csv"
    raise UserError(f"{path}: unsupported file type '{suffix}'", hint="use .csv or .parquet")


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
    if not path.exists():
        raise UserError(f"{path}: file not found",
                        hint="check the path (relative to the config root)")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a .csv or .parquet file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: file is empty", hint="expected a header row and one row per lead")
    if table_format(path) == "parquet":
        frame = _read_parquet_as_text(path)
        rows = np.arange(1, len(frame) + 1)
        return RawTable(with_row_ids(frame, rows, path) if options.row_ids else frame, path=path)
    return _read_csv_as_text(path, strict=strict, options=options)


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



def _delimiter_word(delimiter: str) -> str:
    """``comma``, ``semicolon``, ``tab``, ``pipe`` or the character quoted."""
    return DELIMITER_WORDS[delimiter][:-1] if delimiter in DELIMITER_WORDS else repr(delimiter)


def _read_csv_as_text(path: Path, *, strict: bool, options: ReadOptions) -> RawTable:
    """Every cell as text. A well-formed UTF-8 file is read by Arrow's CSV reader (fast,
    columns of the pandas ``str`` dtype); any other file (another encoding, a malformed
    record) goes through the ``csv`` module, which lists each record whose field count differs
    from the header's as a :class:`BadRow` (pandas would silently pad short rows). Both give
    the same table: decimal commas rewritten and ``row_id`` added as the options say."""
    check_text_file(path)
    delimiter = resolve_delimiter(path, options)
    fast = (_read_csv_with_arrow(path, delimiter)
            if options.encoding == AUTO or is_utf8_codec(options.encoding) else None)
    if fast is not None:
        table = RawTable(fast, [], path)
        rows = np.arange(1, len(fast) + 1)
    else:
        encoding = resolve_encoding(path, options.encoding)
        table = _read_csv_with_csv_module(path, strict=strict, delimiter=delimiter,
                                          encoding=encoding)
        rows = table.rows
    decimal = sniff_decimal(table.frame, delimiter, options, path)
    frame = finish_text(table.frame, rows, decimal=decimal, options=options, path=path)
    return RawTable(frame, table.bad_rows, path, rows)


def _read_csv_with_arrow(path: Path, delimiter: str = ",") -> pd.DataFrame | None:
    """The table as text columns, or None when the file needs the careful reader (malformed
    rows, a header problem, text that is not UTF-8, anything Arrow refuses): that reader says
    what is wrong."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), None)
    except (UnicodeDecodeError, csv.Error):
        return None
    if not header or len(set(header)) != len(header) or len(header) < 2:
        return None
    malformed = []

    def on_invalid(row: object) -> str:
        malformed.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.large_string() for name in header},  # pandas' own
                strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowException, OSError, ValueError):
        return None
    if malformed or table.column_names != header or table.num_rows == 0 \
            or table.num_rows + 1 != physical_lines(path):
        return None  # blank lines, a record over several lines (a stray quote?), a lone CR
    return table.to_pandas()


def well_formed_csv(path: Path, delimiter: str = ",") -> bool:
    """Whether a UTF-8 CSV is one record per line, every record as wide as a header of
    distinct names: streamed by Arrow (nothing held in memory), so an engine reading the
    file itself (DuckDB, Spark) is only given files the careful reader would read the same
    way; any other file goes through the careful reader first."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    malformed = []

    def on_invalid(row: object) -> str:
        malformed.append(row)
        return "skip"

    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), None)
        if not header or len(set(header)) != len(header) or len(header) < 2:
            return False
        reader = pacsv.open_csv(
            path, parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                                   invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.large_string() for name in header}))
        rows = sum(batch.num_rows for batch in reader)
    except (pa.ArrowException, OSError, ValueError, UnicodeDecodeError, csv.Error):
        return False
    return not malformed and rows > 0 and rows + 1 == physical_lines(path)


def physical_lines(path: Path) -> int:
    """The number of lines of a file (a last line without its line break counts)."""
    count, last = 0, b"\n"
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _read_csv_with_csv_module(path: Path, *, strict: bool, delimiter: str = ",",
                              encoding: str = "utf-8-sig") -> RawTable:
    """One pass of the ``csv`` module, record by record, keeping the 1-based data row number
    of each row (blank lines are not rows; malformed records are)."""
    records: list[list[str]] = []
    rows: list[int] = []
    bad: list[BadRow] = []
    row = 0
    try:
        with open(path, encoding=encoding, newline="") as handle:
            header, after = read_header(handle, delimiter, path)
            width = len(header)
            for fields, line, swallowed in csv_records(handle, delimiter, width, path=path,
                                                       start=after):
                if not fields:
                    continue
                if swallowed is not None:
                    for at, line_fields in swallowed.line_fields:
                        row += 1
                        bad.append(BadRow(line=at, reason=swallowed.reason,
                                          raw=_raw(line_fields, delimiter)))
                    continue
                row += 1
                if len(fields) == width:
                    records.append(fields)
                    rows.append(row)
                else:
                    bad.append(BadRow(line=line,
                                      reason=f"row has {len(fields)} fields, expected {width}",
                                      raw=_raw(fields, delimiter)))
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: cannot be read as {encoding} (data.encoding): {exc.reason} "
                        f"(byte 0x{exc.object[exc.start]:02x})",
                        hint="set data.encoding to the file's encoding (latin-1 reads any byte)"
                        ) from None
    if bad and strict:
        first = bad[0]
        more = (f" ({len(bad)} malformed rows in all, lines "
                f"{', '.join(str(b.line) for b in bad[:5])}{' ...' if len(bad) > 5 else ''})"
                if len(bad) > 1 else "")
        what = (f"line {first.line} has {first.reason.split(' has ')[-1]}"
                if first.reason.startswith("row has ") else first.reason)
        raise UserError(f"{path}: malformed CSV: {what}{more}",
                        hint="every row needs as many fields as the header "
                        f"(a stray {_delimiter_word(delimiter)} or quote?)")
    if not records and not bad:
        raise UserError(f"{path}: has a header but no rows", hint="expected one row per lead")
    frame = pd.DataFrame(records, columns=[str(c) for c in header], dtype=object)
    return RawTable(frame, bad, path, np.asarray(rows, dtype=np.int64))


def _raw(fields: list[str], delimiter: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerow(fields)
    return buffer.getvalue().rstrip("\r\n")


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
