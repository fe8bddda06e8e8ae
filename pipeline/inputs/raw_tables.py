"""What a read of a leads table is given and gives back: :class:`ReadOptions` (the config's
``data`` keys), :class:`RawTable` (every cell as text) with its :class:`BadRow` rejects, and the
file format a path names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import UserError
from pipeline.inputs.text_format import AUTO

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
LEADS_EMPTY_HINT = "expected a header row and one row per lead"


def check_data_file(path: Path, *, what: str = "file", missing_hint: str | None = None,
                    empty_hint: str = LEADS_EMPTY_HINT) -> Path:
    """``path`` when it names a file with something in it; else a one-line refusal naming it
    (not found, a directory, 0 bytes). Every reader of leads or events checks this first."""
    if not path.exists():
        raise UserError(f"{path}: {what} not found", hint=missing_hint)
    if path.is_dir():
        raise UserError(f"{path}: {what} is a directory, expected a .csv or .parquet file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: {what} is empty (0 bytes)", hint=empty_hint)
    return path


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
