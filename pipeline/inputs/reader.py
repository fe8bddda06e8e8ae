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

import codecs
import contextlib
import csv
import fcntl
import hashlib
import io
import itertools
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config_sections import ROW_ID_COLUMN
from pipeline.errors import LockedError, UserError
from pipeline.inputs.records import (
    DELIMITER_WORDS,
    check_text_file,
    csv_records,
    read_header,
    shorten,
)
from pipeline.outputs import atomic_path

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
AUTO = "auto"
SNIFFED_DELIMITERS = (",", ";", "\t", "|")  # in order of preference on a tie
SNIFF_BYTES = 16 * 1024  # the header and first lines the delimiter is sniffed from
SNIFF_RECORDS = 50  # at most this many records of them
UTF8_BOM = b"\xef\xbb\xbf"
FALLBACK_ENCODING = "cp1252"  # what Excel writes on a Western European Windows
CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")  # bytes cp1252 gives no character
# as pipeline.inputs.validate.MOSTLY_NUMERIC: a column this share numbers is numeric
MOSTLY_NUMBERS = 0.9
# a number written with a decimal comma: 3,5  1.234,56  -0,5  1.234 (dot-grouped thousands)
COMMA_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?")
# a number written with a decimal point (what pandas and Arrow read): 3.5  -0.25  1e-3  12
POINT_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
THOUSANDS_ONLY = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+")  # 1.234: a point or a thousands dot
COMMA_PROBE = 2000  # rows a column must show a comma in to be checked for decimal commas


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


def utf8_problem(path: Path) -> tuple[int, int] | None:
    """(byte, line) of the first byte that is not UTF-8, or None for a UTF-8 file.

    The whole file is decoded incrementally (1 MiB at a time), so a bad byte near the end is
    found before anything is written, not half-way through scoring.
    """
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
                return data[start], lines_before + data[:start].count(b"\n") + 1
            if not block:
                return None
            lines_before += block.count(b"\n")


def check_utf8(path: Path) -> None:
    """Fail with the line number when a file is not UTF-8 (a latin-1 CRM export, say)."""
    problem = utf8_problem(path)
    if problem is not None:
        byte, line = problem
        raise UserError(
            f"{path}: not UTF-8 text (byte 0x{byte:02x} on line {line})",
            hint="set data.encoding to the file's encoding (auto reads cp1252; latin-1 reads "
            "any byte), or re-save the file as UTF-8 (iconv -f latin1 -t utf-8 in.csv > out.csv)",
        )


def _cp1252_problem(path: Path) -> tuple[int, int] | None:
    """(byte, line) of the first byte cp1252 leaves undefined, or None."""
    lines_before = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            at = next((i for i, b in enumerate(block) if b in CP1252_UNDEFINED), None) \
                if CP1252_UNDEFINED & set(block) else None
            if at is not None:
                return block[at], lines_before + block[:at].count(b"\n") + 1
            lines_before += block.count(b"\n")
    return None


_warned: set[tuple[str, int, int]] = set()


def warn_once(path: Path, message: str) -> None:
    """Print ``warning: message`` on stderr, once per file (and version of it) per process:
    training reads the leads twice (to train, then to score them)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _warned:
        _warned.add(key)
        print(f"warning: {message}", file=sys.stderr, flush=True)


def is_utf8_codec(encoding: str) -> bool:
    """Whether ``encoding`` names UTF-8 (``utf8``, ``UTF-8``, ``utf-8-sig``...)."""
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


def resolve_encoding(path: Path, requested: str = AUTO) -> str:
    """The Python codec to read ``path`` with (``data.encoding``).

    ``auto``: UTF-8, with or without a byte-order mark; a file that is not UTF-8 is read as
    cp1252 (Excel's Western European encoding, which every latin-1 letter reads the same in)
    with a warning naming the file. An explicit encoding is used as is (UTF-8 with a BOM
    skipped); an explicit UTF-8 on a file that is not fails with the byte and its line.
    A gzip, zip (``.xlsx``) or other binary file is refused first, naming what it is.
    """
    check_text_file(path)
    if requested != AUTO:
        if not is_utf8_codec(requested):
            return requested
        check_utf8(path)
        return "utf-8-sig"
    problem = utf8_problem(path)
    if problem is None:
        return "utf-8-sig"
    with open(path, "rb") as handle:
        has_bom = handle.read(3) == UTF8_BOM
    byte, line = problem
    if has_bom or _cp1252_problem(path) is not None:
        raise UserError(
            f"{path}: not UTF-8 text (byte 0x{byte:02x} on line {line})"
            + (" although it starts with a UTF-8 byte-order mark" if has_bom else
               ", nor cp1252"),
            hint="set data.encoding to the file's encoding (e.g. latin-1), or re-save the file "
            "as UTF-8")
    warn_once(path, f"{path} is not UTF-8; read as {FALLBACK_ENCODING} "
                    "(set data.encoding to silence this)")
    return FALLBACK_ENCODING


def _sample_text(path: Path, encoding: str) -> tuple[str, bool]:
    """The first :data:`SNIFF_BYTES` of the file as text, and whether that is the whole file.
    Undecodable bytes become U+FFFD: the delimiters looked for are ASCII."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES + 1)
    complete = len(head) <= SNIFF_BYTES
    codec = "utf-8-sig" if encoding == AUTO or is_utf8_codec(encoding) else encoding
    return head[:SNIFF_BYTES].decode(codec, errors="replace"), complete


def sniff_delimiter(sample: str, *, complete: bool) -> str:
    """The field separator among ``,`` ``;`` tab ``|`` that best explains ``sample``.

    Each candidate parses the sample with the ``csv`` module (quotes respected, so a ``;``
    inside a quoted field does not count); one that gives the header at least two fields wins
    by the share of records with as many fields as the header, then by the header's width,
    then by the order above. A cut-off last record is left out. No candidate: ``,``.
    """
    best, best_key = ",", (-1.0, 0)
    for delimiter in SNIFFED_DELIMITERS:
        if delimiter not in sample:
            continue
        reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
        try:
            records = [r for r in itertools.islice(reader, SNIFF_RECORDS + 1) if r]
        except csv.Error:
            continue
        if len(records) > SNIFF_RECORDS:
            records = records[:SNIFF_RECORDS]
        elif not complete and len(records) > 1:
            records = records[:-1]
        if not records or len(records[0]) < 2:
            continue
        width, rows = len(records[0]), records[1:]
        agree = sum(len(r) == width for r in rows) / len(rows) if rows else 1.0
        if (agree, width) > best_key:
            best, best_key = delimiter, (agree, width)
    return best


def resolve_delimiter(path: Path, options: ReadOptions) -> str:
    """``data.delimiter``: the explicit one, or the one sniffed from the file's first lines."""
    if options.delimiter != AUTO:
        return options.delimiter
    sample, complete = _sample_text(path, options.encoding)
    return sniff_delimiter(sample, complete=complete)


def _present_counts(series: pd.Series, missing: tuple[str, ...]) -> pd.Series:
    """How many rows hold each distinct value of ``series``, stripped, blanks and missing
    tokens left out (one regular expression per distinct value, not per row)."""
    counts = series.dropna().astype(str).str.strip().value_counts()
    return counts[~counts.index.isin([*missing, ""])]


def comma_decimal_column(series: pd.Series, missing: tuple[str, ...] = ("",)) -> bool:
    """Numbers with a decimal comma: most present values read as such (``3,5``, ``1.234,56``,
    plain integers) and at least one has a comma."""
    counts = _present_counts(series, missing)
    if counts.empty:
        return False
    values = counts.index.to_series()
    like = values.map(lambda v: COMMA_NUMBER.fullmatch(v) is not None).to_numpy()
    with_comma = values.str.contains(",", regex=False).to_numpy()
    return counts[like].sum() >= MOSTLY_NUMBERS * counts.sum() and bool((like & with_comma).any())


def point_decimal_column(series: pd.Series, missing: tuple[str, ...] = ("",)) -> bool:
    """Numbers with a decimal point: most present values read as numbers the usual way and
    at least one has a point that cannot be a thousands dot (``0.5``, not ``1.234``)."""
    counts = _present_counts(series, missing)
    if counts.empty:
        return False
    values = counts.index.to_series()
    like = values.map(lambda v: POINT_NUMBER.fullmatch(v) is not None).to_numpy()
    fraction = values.map(lambda v: "." in v and THOUSANDS_ONLY.fullmatch(v) is None).to_numpy()
    return counts[like].sum() >= MOSTLY_NUMBERS * counts.sum() and bool((like & fraction).any())


def sniff_decimal(frame: pd.DataFrame, delimiter: str, options: ReadOptions, path: Path) -> str:
    """``data.decimal``: the explicit one, or ``auto`` decided for this file.

    A comma-separated file has a decimal point. Otherwise the separator is ``,`` when some
    numeric-looking column writes its numbers with a decimal comma and none with a decimal
    point; columns of both kinds are ambiguous and refused, naming them and the key.
    """
    if options.decimal != AUTO:
        return options.decimal
    if delimiter == ",":
        warn_comma_decimals(frame, options, path)
        return "."
    columns = [c for c in frame.columns if c != options.id_column]
    commas = [c for c in columns if comma_decimal_column(frame[c], options.missing_values)]
    if not commas:
        return "."
    points = [c for c in columns if point_decimal_column(frame[c], options.missing_values)]
    if points:
        raise UserError(
            f"{path}: columns {commas[:5]} have numbers with a decimal comma, columns "
            f"{points[:5]} with a decimal point: which one does the file use?",
            hint="set data.decimal to ',' or '.'")
    return ","


def warn_comma_decimals(frame: pd.DataFrame, options: ReadOptions, path: Path) -> None:
    """A comma-separated file has a decimal point; a column of quoted ``"3,5"`` numbers would
    silently be text (a category): warn, naming the columns and the key that reads them."""
    columns = []
    for column in frame.columns:
        if column == options.id_column:
            continue
        series = frame[column]
        try:  # a column of decimal commas has them from its first rows on: look there first
            has_comma = bool(series.iloc[:COMMA_PROBE].str.contains(",", regex=False).any())
        except (AttributeError, TypeError):
            continue
        if has_comma and comma_decimal_column(series, options.missing_values):
            columns.append(str(column))
    if columns:
        example = next(v for v in frame[columns[0]] if isinstance(v, str) and "," in v)
        warn_once(path, f"{path}: columns {shorten(columns, 120)} hold numbers written with a "
                        f"comma (e.g. {shorten(example, 20)!r}) in a comma-separated file: they "
                        "are read as text (categories); if the comma is the decimal separator, "
                        "set data.decimal: ',' to read them as numbers")


def _point_number(value: object) -> object:
    """``1.234,56`` -> ``1234.56``, ``3,5`` -> ``3.5``; anything else unchanged."""
    if not isinstance(value, str) or ("," not in value and "." not in value):
        return value
    text = value.strip()
    if COMMA_NUMBER.fullmatch(text) is None:
        return value
    return text.replace(".", "").replace(",", ".")


def with_decimal_points(frame: pd.DataFrame, keep: str | None = None) -> pd.DataFrame:
    """Every value written with a decimal comma rewritten with a decimal point (thousands
    dots dropped), as text: the rest of the pipeline reads numbers the usual way, so training
    and scoring see the same values. Other values (text, ``0.5``) are left as written, so a
    numeric column with a stray word is still reported by validation. ``keep``: a column
    left alone (the id). Each distinct value is rewritten once."""
    out = {}
    for column in frame.columns:
        series = frame[column]
        if column == keep:
            out[column] = series
            continue
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        rewritten = [_point_number(v) for v in uniques]
        if all(a is b for a, b in zip(rewritten, uniques, strict=True)):
            out[column] = series
            continue
        table = np.array([*rewritten, None], dtype=object)
        out[column] = pd.Series(table.take(codes), index=frame.index, dtype=series.dtype)
    return pd.DataFrame(out, index=frame.index)


def with_row_ids(frame: pd.DataFrame, rows: np.ndarray, path: Path) -> pd.DataFrame:
    """``frame`` with ``row_id`` first: each row's 1-based data row number as text (the ids of
    a file without an id column, ``data.id_column: null``; the same number as ``row`` in the
    rejects). A file that already has a ``row_id`` column is refused rather than shadowed."""
    if ROW_ID_COLUMN in frame.columns:
        raise UserError(
            f"{path}: data.id_column is null, so the rows are numbered in a column "
            f"{ROW_ID_COLUMN!r}, but the file already has a column {ROW_ID_COLUMN!r}",
            hint=f"set data.id_column: {ROW_ID_COLUMN} if it holds unique ids, or rename it")
    ids = pd.Series([str(int(r)) for r in rows], index=frame.index, dtype=object)
    return pd.concat([ids.rename(ROW_ID_COLUMN).to_frame(), frame], axis=1)


def finish_text(frame: pd.DataFrame, rows: np.ndarray, *, decimal: str, options: ReadOptions,
                path: Path) -> pd.DataFrame:
    """The last steps of every CSV reading path: decimal commas rewritten (``decimal`` is
    ``,``), ``row_id`` added (``options.row_ids``)."""
    if decimal == ",":
        frame = with_decimal_points(frame, keep=options.id_column)
    return with_row_ids(frame, rows, path) if options.row_ids else frame


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
