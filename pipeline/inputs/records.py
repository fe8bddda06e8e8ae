"""CSV records line by line: what the careful reader builds on (:mod:`pipeline.inputs.reader`).

* :func:`csv_records` yields each record with its first physical line; a record that a
  stray quote made swallow the following leads is split back into its lines;
* :func:`read_header` reads and checks the header (wrong delimiter, repeated names);
* :func:`check_text_file` refuses a gzip, zip (``.xlsx``) or other binary file named ``.csv``;
* :func:`shorten` cuts a value shown in a message to about 80 characters.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UserError

LINE_BREAK = re.compile(r"\r\n?|\n")  # what the csv module (newline="") ends a line at
FIELD_LIMIT = 16 << 20  # characters in one CSV field (the csv module's default: 128 KB)
DELIMITER_WORDS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "pipes"}


BINARY_KINDS = (  # magic bytes of files that are not CSV text whatever their name says
    (b"\x1f\x8b", "a gzip file", "decompress it first (gunzip -k FILE)"),
    (b"PK\x03\x04", "a zip file (an .xlsx workbook is one)",
     "unzip it, or save the sheet as CSV (File > Save as > CSV UTF-8)"),
    (b"PAR1", "a Parquet file", "name it .parquet"),
    (b"SQLite format 3", "an SQLite database", "export the table as CSV"),
    (b"%PDF", "a PDF document", "export the data as CSV"),
    (b"BZh", "a bzip2 file", "decompress it first (bunzip2 -k FILE)"),
    (b"\xfd7zXZ", "an xz file", "decompress it first (unxz -k FILE)"),
)


def check_text_file(path: Path) -> None:
    """Refuse a compressed or binary file named like a CSV, saying what it is."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    for magic, what, hint in BINARY_KINDS:
        if head.startswith(magic):
            raise UserError(f"{path}: is {what}, not CSV text", hint=hint)


def wrong_delimiter(path: Path, header: list[str], delimiter: str = ",") -> None:
    """A one-column header holding another of ``,`` ``;`` tab ``|`` means the delimiter in use
    (``data.delimiter``) is not the file's."""
    if len(header) > 1:
        return
    text = header[0] if header else ""
    for sep, name in DELIMITER_WORDS.items():
        if sep != delimiter and sep in text:
            shown = "tab" if sep == "\t" else sep
            raise UserError(
                f"{path}: the header has one column but contains {name}: wrong delimiter",
                hint=f"set data.delimiter to auto (or {shown!r}), or save the file with "
                f"{DELIMITER_WORDS.get(delimiter, repr(delimiter))} as the delimiter",
            )


@dataclass(frozen=True)
class Swallowed:
    """A record over lines ``first_line``-``last_line`` that swallowed leads: its
    continuation lines each read as a full row (a stray quote opened a field that ran over
    them), or it spans lines and has the wrong number of fields. ``line_fields``: each
    non-blank line read on its own, so that no lead vanishes into another lead's field."""

    first_line: int
    last_line: int
    line_fields: list[tuple[int, list[str]]]

    @property
    def reason(self) -> str:
        return (f"a quote opened on line {self.first_line} runs to line {self.last_line}, "
                f"taking lines {self.first_line}-{self.last_line} as one record (a stray \"?)")


def _line_fields(line: str, delimiter: str) -> list[str]:
    """The fields of one physical line read on its own (``[]`` for a blank line)."""
    return next(csv.reader([line], delimiter=delimiter), [])


def csv_records(handle: io.TextIOBase, delimiter: str, width: int | None = None, *,
                path: Path | None = None, start: int = 1
                ) -> Iterator[tuple[list[str], int, Swallowed | None]]:
    """``(fields, line, swallowed)`` for every CSV record of ``handle`` (opened with
    ``newline=""``), header first; ``line``: its first physical line (1-based; ``start`` is
    the number of the handle's next line).

    ``width`` (the header's field count; None: taken from the first record) decides which
    records spanning several lines swallowed leads (``swallowed`` not None, see
    :class:`Swallowed`): a quoted field may hold line breaks, but a record whose continuation
    lines each read as a full row, or whose field count is wrong, is split back into its
    lines (rebuilt from its text: inside a runaway quote the lines are kept verbatim). A
    field over :data:`FIELD_LIMIT` is an error naming ``path`` and the line."""
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)
    reader = csv.reader(handle, delimiter=delimiter)
    first = start
    try:
        for fields in reader:
            last = start - 1 + reader.line_num
            if last == first or not fields:  # the common case: one record, one line
                yield fields, first, None
                first = last + 1
                continue
            if width is None:
                width = len(fields)
            per_line = [_line_fields(text, delimiter)
                        for text in LINE_BREAK.split(delimiter.join(fields))]
            swallowed = None
            if len(fields) != width or any(len(f) == width for f in per_line[1:]):
                swallowed = Swallowed(first, last, [(first + i, f) for i, f in
                                                    enumerate(per_line) if f])
            yield fields, first, swallowed
            first = last + 1
    except csv.Error as exc:
        raise UserError(f"{path}: line {first}: {exc}",
                        hint="a stray quote can make one field run over the rest of the "
                        "file; fix the quote or split the file") from None


def read_header(handle: io.TextIOBase, delimiter: str, path: Path) -> tuple[list[str], int]:
    """The header of a CSV (blank lines before it skipped), checked: one column holding
    another delimiter, repeated names. Returns it and the number of the line after it; the
    handle is left there."""
    for fields, line, _ in csv_records(handle, delimiter, path=path):
        if fields:
            wrong_delimiter(path, fields, delimiter)
            check_header(path, fields)
            return fields, line + 1
    raise UserError(f"{path}: file is empty", hint="expected a header row and one row per lead")


def check_header(path: Path, header: list[str]) -> None:
    """Refuse a header that repeats a column name (every reading path)."""
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise UserError(f"{path}: the header repeats column names {shorten(duplicated)}",
                        hint="every column needs its own name")


def shorten(value: object, limit: int = 80) -> str:
    """``repr``-like text of ``value`` cut to about ``limit`` characters (messages never
    echo a 5 MB cell)."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def numbered_records(handle: io.TextIOBase, delimiter: str, width: int, *, path: Path,
                     start: int) -> Iterator[tuple[int, list[str], int, str | None]]:
    """``(row, fields, line, swallowed)`` for every lead record after the header: ``row`` the
    1-based data row number (blank lines are no rows; each line a stray quote swallowed is
    one), ``line`` its first physical line, ``swallowed`` why a stray quote swallowed it (else
    None; a record whose field count is not ``width`` is the caller's to judge). The one
    numbering that training's rejects and scoring's rejects share."""
    row = 0
    for fields, line, swallowed in csv_records(handle, delimiter, width, path=path, start=start):
        if not fields:
            continue
        if swallowed is not None:
            for at, line_fields in swallowed.line_fields:
                row += 1
                yield row, line_fields, at, swallowed.reason
            continue
        row += 1
        yield row, fields, line, None
