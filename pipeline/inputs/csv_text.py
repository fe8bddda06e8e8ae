"""A CSV file as a text table, with every malformed record found and named.

A plain UTF-8 comma file takes Arrow's fast path (when it has one record per line); the others
go through the ``csv`` module, record by record (:func:`pipeline.inputs.records.csv_records`):
a record that a stray quote made swallow the following leads is split back into its lines,
each a malformed row with its line number, so no lead vanishes into another's field. A gzip,
zip (``.xlsx``) or Parquet file named ``.csv`` is refused saying what it is; fields may be up
to 16 MB; a quoted decimal-comma column in a comma file is warned about. The delimiter,
encoding and decimal separator are decided as :mod:`pipeline.inputs.text_format` says.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import UserError
from pipeline.inputs.raw_tables import BadRow, RawTable, ReadOptions
from pipeline.inputs.records import (
    DELIMITER_WORDS,
    check_text_file,
    numbered_records,
    read_header,
)
from pipeline.inputs.text_format import (
    AUTO,
    finish_text,
    is_utf8_codec,
    resolve_delimiter,
    resolve_encoding,
    sniff_decimal,
)


def _delimiter_word(delimiter: str) -> str:
    """``comma``, ``semicolon``, ``tab``, ``pipe`` or the character quoted."""
    return DELIMITER_WORDS[delimiter][:-1] if delimiter in DELIMITER_WORDS else repr(delimiter)


def read_csv_as_text(path: Path, *, strict: bool, options: ReadOptions) -> RawTable:
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


def _arrow_header(path: Path, delimiter: str) -> list[str] | None:
    """The header Arrow's reader is given a file with: two or more distinct names read as
    UTF-8 (None otherwise: the careful reader says what is wrong)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), None)
    except (UnicodeDecodeError, csv.Error):
        return None
    if not header or len(set(header)) != len(header) or len(header) < 2:
        return None
    return header


def _arrow_options(header: list[str], delimiter: str, malformed: list[object],
                   **convert: bool) -> dict[str, object]:
    """Arrow's parse and convert options for a text table: every column text (pandas' own
    ``large_string``), every malformed record appended to ``malformed`` and skipped."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def on_invalid(row: object) -> str:
        malformed.append(row)
        return "skip"

    return {"parse_options": pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                                invalid_row_handler=on_invalid),
            "convert_options": pacsv.ConvertOptions(
                column_types={name: pa.large_string() for name in header}, **convert)}


def _read_csv_with_arrow(path: Path, delimiter: str = ",") -> pd.DataFrame | None:
    """The table as text columns, or None when the file needs the careful reader (malformed
    rows, a header problem, text that is not UTF-8, anything Arrow refuses): that reader says
    what is wrong."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = _arrow_header(path, delimiter)
    if header is None:
        return None
    malformed: list[object] = []
    try:
        table = pacsv.read_csv(path, **_arrow_options(header, delimiter, malformed,
                                                       strings_can_be_null=False,
                                                       quoted_strings_can_be_null=False))
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

    malformed: list[object] = []
    try:
        header = _arrow_header(path, delimiter)
        if header is None:
            return False
        reader = pacsv.open_csv(path, **_arrow_options(header, delimiter, malformed))
        rows = sum(batch.num_rows for batch in reader)
    except (pa.ArrowException, OSError, ValueError):
        return False
    return not malformed and rows > 0 and rows + 1 == physical_lines(path)


def physical_lines(path: Path, *, block_size: int = 1 << 20) -> int:
    """The number of lines of a file as the ``csv`` module numbers them: LF, CRLF and a lone
    CR each end one (a last line without its line break counts)."""
    count, last = 0, b"\n"
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(block_size), b""):
            count += block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")
            if last == b"\r" and block[:1] == b"\n":  # a CRLF split between two blocks
                count -= 1
            last = block[-1:]
    return count + (last not in (b"\n", b"\r"))


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
            for row, fields, line, swallowed in numbered_records(handle, delimiter, width,
                                                                 path=path, start=after):
                if swallowed is not None:
                    bad.append(BadRow(line=line, reason=swallowed, raw=_raw(fields, delimiter)))
                elif len(fields) == width:
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
