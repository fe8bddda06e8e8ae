"""Scored leads to a file: CSV or Parquet, batch by batch, with pyarrow.

Parquet holds the reason codes as ``list<dictionary<string>>`` (each piece's text once per
file chunk, a row holds small integers); CSV holds them as the text ``"a; b; c"``.
:func:`read_scored` reads either back as the same frame.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.inputs.reader import table_format


class ScoresWriter:
    """Append batches to a CSV or Parquet temp file with pyarrow (schema fixed by the first
    batch). CSV: booleans as ``True`` / ``False``, reason pieces joined by ``"; "``."""

    def __init__(self, path: Path, fmt: str):
        self.path = path
        self.format = fmt
        self._writer = None
        self._schema: pa.Schema | None = None

    def write(self, frame: pd.DataFrame, *, reason_codes: pa.Array | None = None) -> None:
        """Append ``frame`` (+ ``reason_codes`` as pieces, a column of their own)."""
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if reason_codes is not None:
            table = table.append_column("reason_codes", reason_codes)
        if self.format == "csv":
            table = _csv_ready(table)
        if self._writer is None:
            self._schema = table.schema
            if self.format == "parquet":
                import pyarrow.parquet as pq

                self._writer = pq.ParquetWriter(self.path, table.schema)
            else:
                import pyarrow.csv as pacsv

                self._writer = pacsv.CSVWriter(self.path, table.schema)
        self._writer.write_table(table.cast(self._schema))

    def close(self, empty_columns: list[str]) -> None:
        if self._writer is not None:
            self._writer.close()
        elif self.format == "parquet":
            pd.DataFrame(columns=empty_columns).to_parquet(self.path, index=False)
        else:
            pd.DataFrame(columns=empty_columns).to_csv(self.path, index=False)


def _csv_ready(table: pa.Table) -> pa.Table:
    """Columns as the CSV shows them: booleans as Python writes them, lists joined."""
    for i, spec in enumerate(table.schema):
        column = table.column(i)
        if pa.types.is_boolean(spec.type):
            column = pc.if_else(column, "True", "False")
        elif pa.types.is_list(spec.type):
            column = joined_pieces(column)
        else:
            continue
        table = table.set_column(i, spec.name, column)
    return table


def joined_pieces(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Reason pieces (``list<dictionary<string>>``, as Parquet holds them) as the text
    ``"a; b; c"`` (see :func:`pipeline.scoring.reasons.reason_texts`)."""
    value_type = column.type.value_type
    if pa.types.is_dictionary(value_type):
        column = column.cast(pa.list_(value_type.value_type))
    return pc.binary_join(column, "; ")


def read_scored(path: Path) -> pd.DataFrame:
    """A scored-leads file written by :func:`score_file` as a frame, the reason pieces of a
    Parquet file joined into the text a CSV holds."""
    import pyarrow.parquet as pq

    if table_format(Path(path)) != "parquet":
        return pd.read_csv(path, dtype=str).pipe(_typed_scores)
    table = pq.read_table(path)
    for i, spec in enumerate(table.schema):
        if pa.types.is_list(spec.type):
            table = table.set_column(i, spec.name, joined_pieces(table.column(i)))
    return table.to_pandas()


def _typed_scores(frame: pd.DataFrame) -> pd.DataFrame:
    for column in ("points", "fit", "pain"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column]).astype("int64")
    if "probability" in frame:
        frame["probability"] = pd.to_numeric(frame["probability"])
    if "sdr_ready" in frame:
        frame["sdr_ready"] = frame["sdr_ready"].eq("True")
    if "reason_codes" in frame:
        frame["reason_codes"] = frame["reason_codes"].fillna("")
    return frame
