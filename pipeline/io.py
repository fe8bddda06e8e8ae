"""File I/O at the edges: reading lead tables with clear errors, atomic writes, run locks."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import LockedError, UserError

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class BadRow:
    """A raw input row that could not be read (kept so it can be listed in a rejects file)."""

    line: int
    reason: str
    raw: str


@dataclass(frozen=True)
class RawTable:
    """A table read as text: every cell a string (or missing), plus the rows that could not
    be parsed."""

    frame: pd.DataFrame
    bad_rows: list[BadRow] = field(default_factory=list)
    path: Path | None = None


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


def read_table(path: str | Path, *, strict: bool = True) -> RawTable:
    """Read a CSV or Parquet file with every value as text.

    ``strict`` (training) fails on the first malformed row; otherwise (scoring) malformed
    rows are returned in ``bad_rows`` so that they can be listed with their reason.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found",
                        hint="check the path (relative to the config root)")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a .csv or .parquet file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: file is empty", hint="expected a header row and one row per lead")
    if table_format(path) == "parquet":
        return RawTable(_read_parquet_as_text(path), path=path)
    return _read_csv_as_text(path, strict=strict)


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


def check_utf8(path: Path) -> None:
    """Fail with the line number when a file is not UTF-8 (a latin-1 CRM export, say).

    The whole file is decoded incrementally (1 MiB at a time), so a bad byte near the end is
    found before anything is written, not half-way through scoring.
    """
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    lines_before = 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(1 << 20)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                pending = decoder.getstate()[0] if exc.start >= len(block) else b""
                data = pending + block
                start = max(0, min(exc.start, len(data) - 1))
                line = lines_before + data[:start].count(b"\n") + 1
                raise UserError(
                    f"{path}: not UTF-8 text (byte 0x{data[start]:02x} on line {line})",
                    hint="re-save the file as UTF-8 (CRM exports are often latin-1: "
                    "iconv -f latin1 -t utf-8 in.csv > out.csv)",
                ) from None
            if not block:
                return
            lines_before += block.count(b"\n")


def wrong_delimiter(path: Path, header: list[str]) -> None:
    """A one-column header holding ``;``, tabs or ``|`` means the file is not comma-separated."""
    if len(header) > 1:
        return
    text = header[0] if header else ""
    for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
        if sep in text:
            raise UserError(
                f"{path}: the header has one column but contains {name}: wrong delimiter",
                hint="save the file with commas as the delimiter",
            )


def _read_csv_as_text(path: Path, *, strict: bool) -> RawTable:
    """Every cell as text. A well-formed file is read by Arrow's CSV reader (fast, columns of
    the pandas ``str`` dtype); any malformed record sends the file through the ``csv`` module,
    which lists each record whose field count differs from the header's as a
    :class:`BadRow` (pandas would silently pad short rows)."""
    fast = _read_csv_with_arrow(path)  # Arrow checks the text is UTF-8 as it reads
    if fast is not None:
        return RawTable(fast, [], path)
    check_utf8(path)
    return _read_csv_with_csv_module(path, strict=strict)


def _read_csv_with_arrow(path: Path) -> pd.DataFrame | None:
    """The table as text columns, or None when the file needs the careful reader (malformed
    rows, a header problem, anything Arrow refuses): that reader says what is wrong."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
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
            parse_options=pacsv.ParseOptions(newlines_in_values=True,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.large_string() for name in header},  # pandas' own
                strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowException, OSError, ValueError):
        return None
    if malformed or table.column_names != header or table.num_rows == 0:
        return None
    return table.to_pandas()


def _read_csv_with_csv_module(path: Path, *, strict: bool) -> RawTable:
    """One pass of the ``csv`` module, record by record."""
    records: list[list[str]] = []
    bad: list[BadRow] = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        while header == []:
            header = next(reader, None)
        if header is None:
            raise UserError(f"{path}: file is empty", hint="expected a header row")
        wrong_delimiter(path, header)
        duplicated = sorted({c for c in header if header.count(c) > 1})
        if duplicated:
            raise UserError(f"{path}: the header repeats column names {duplicated}",
                            hint="every column needs its own name")
        width = len(header)
        for fields in reader:
            if not fields:
                continue
            if len(fields) == width:
                records.append(fields)
            else:
                buffer = io.StringIO()
                csv.writer(buffer).writerow(fields)
                bad.append(BadRow(line=reader.line_num,
                                  reason=f"row has {len(fields)} fields, expected {width}",
                                  raw=buffer.getvalue().rstrip("\r\n")))
    if bad and strict:
        first = bad[0]
        more = (f" ({len(bad)} malformed rows in all, lines "
                f"{', '.join(str(b.line) for b in bad[:5])}{' ...' if len(bad) > 5 else ''})"
                if len(bad) > 1 else "")
        raise UserError(f"{path}: malformed CSV: line {first.line} has "
                        f"{first.reason.split(' has ')[-1]}{more}",
                        hint="every row needs as many fields as the header "
                        "(a stray comma or quote?)")
    if not records and not bad:
        raise UserError(f"{path}: has a header but no rows", hint="expected one row per lead")
    frame = pd.DataFrame(records, columns=[str(c) for c in header], dtype=object)
    return RawTable(frame, bad, path)


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (lineage tag)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target`` atomically.

    A run killed half-way leaves at most a hidden ``.tmp`` file, never a partial output.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; outputs get the usual mode
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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
