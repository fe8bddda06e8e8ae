"""How a text table is written, decided per file: its encoding (UTF-8, else cp1252 with a
warning), field delimiter (sniffed from the first lines) and decimal separator (a decimal
comma rewritten as a point), and the ``row_id`` numbering; used by the reader
(:mod:`pipeline.inputs.reader`) and the streamed scorer."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline.config_sections import ROW_ID_COLUMN
from pipeline.errors import UserError
from pipeline.inputs.records import check_text_file, shorten

if TYPE_CHECKING:
    from pipeline.inputs.raw_tables import ReadOptions

AUTO = "auto"
SNIFFED_DELIMITERS = (",", ";", "\t", "|")  # in order of preference on a tie
SNIFF_BYTES = 16 * 1024  # the header and first lines the delimiter is sniffed from
SNIFF_RECORDS = 50  # at most this many records of them
UTF8_BOM = b"\xef\xbb\xbf"
FALLBACK_ENCODING = "cp1252"  # what Excel writes on a Western European Windows
CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")  # bytes cp1252 gives no character
# as pipeline.inputs.clean_columns.MOSTLY_NUMERIC: a column this share numbers is numeric
MOSTLY_NUMBERS = 0.9
# a number written with a decimal comma: 3,5  1.234,56  -0,5  1.234 (dot-grouped thousands)
COMMA_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?")
# a number written with a decimal point (what pandas and Arrow read): 3.5  -0.25  1e-3  12
POINT_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
THOUSANDS_ONLY = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+")  # 1.234: a point or a thousands dot
COMMA_PROBE = 2000  # rows a column must show a comma in to be checked for decimal commas


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
