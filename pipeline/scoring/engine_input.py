"""Input checks shared by the SQL scoring engines (DuckDB, Spark): the file, a plain copy
when the engine cannot read it as it is, the columns they need; their counts."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from pipeline.errors import NothingScoredError, UserError
from pipeline.inputs.raw_tables import check_data_file
from pipeline.inputs.reader import ReadOptions, table_format, well_formed_csv
from pipeline.inputs.text_format import AUTO, is_utf8_codec, resolve_delimiter, utf8_problem
from pipeline.model.rules import PointsRules
from pipeline.scoring.batch import ScoringSummary


def check_input(input_path: Path) -> Path:
    """``input_path`` as a Path, when it is a non-empty CSV or Parquet file."""
    input_path = check_data_file(Path(input_path), missing_hint="check the --input path")
    table_format(input_path)
    return input_path


def plain_input(source: Path, options: ReadOptions) -> bool:
    """Whether the SQL engines can read ``source`` as it is: Parquet, or a comma-separated
    UTF-8 CSV with decimal points, and an id column in the file (``data.id_column`` set)."""
    if options.row_ids:
        return False
    if table_format(source) == "parquet":
        return True
    if options.decimal == ",":
        return False
    if options.encoding != AUTO and not is_utf8_codec(options.encoding):
        return False
    return resolve_delimiter(source, options) == "," and utf8_problem(source) is None \
        and well_formed_csv(source)


def write_plain_copy(source: Path, options: ReadOptions, folder: Path) -> Path:
    """``source`` read by the pipeline's own reader (delimiter, encoding, decimal commas,
    ``row_id``) and written to ``folder`` as Parquet text columns, for the SQL engines.

    A malformed CSV record stops here with its line (as the DuckDB engine does on the
    original file) rather than vanishing from the copy."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.scoring.input_batches import iter_batches

    target = folder / "leads.parquet"
    writer = None
    try:
        for batch in iter_batches(source, batch_size=200_000, id_column=options.id_column,
                                  options=options):
            if batch.bad:
                row, _, reason = batch.bad[0]
                raise UserError(f"{source}: data row {row}: {reason}",
                                hint="score this file with --engine pandas: it lists "
                                "malformed rows in the rejects")
            frame = batch.frame.astype(object)
            table = pa.Table.from_pandas(frame, preserve_index=False,
                                         schema=pa.schema([(str(c), pa.string())
                                                           for c in frame.columns]))
            if writer is None:
                writer = pq.ParquetWriter(target, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return target


@contextlib.contextmanager
def readable_source(source: Path, options: ReadOptions | None) -> Iterator[Path]:
    """``source``, or a plain Parquet copy of it when an SQL engine could not read it right
    as it is (see :func:`plain_input`)."""
    if options is None or plain_input(source, options):
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="lead-scoring-input-") as tmp:
        yield write_plain_copy(source, options, Path(tmp))


def refuse_remote(options: ReadOptions | None) -> None:
    """A Spark input that is not a local file cannot be sniffed nor converted: explicit
    settings it cannot honour are refused (``auto`` reads it as comma-separated UTF-8)."""
    if options is None:
        return
    if options.row_ids:
        raise UserError("data.id_column is null: the spark engine numbers rows only of a local "
                        "file", hint="give the file an id column, or score a local copy")
    if options.decimal == ",":
        raise UserError("data.decimal ',' is not supported by the spark engine on a cluster "
                        "path", hint="convert the file first, or score a local copy")
    if options.delimiter not in (AUTO, ","):
        raise UserError(f"data.delimiter {options.delimiter!r} is not supported by the spark "
                        "engine on a cluster path", hint="convert the file to commas first, "
                        "or score a local copy")
    if options.encoding != AUTO and not is_utf8_codec(options.encoding):
        raise UserError(f"data.encoding {options.encoding!r} is not supported by the spark "
                        "engine on a cluster path", hint="convert the file to UTF-8 first, "
                        "or score a local copy")


def required_columns(rules: PointsRules, id_column: str) -> list[str]:
    """Columns an SQL engine needs in the input: the id, every factor and the gate columns."""
    return [id_column, *rules.input_columns()]


def check_columns(rules: PointsRules, columns: Sequence[str], *, id_column: str, engine: str,
                  source: Path) -> None:
    """Raise a :class:`UserError` naming each column the SQL engines cannot derive."""
    present = set(columns)
    if id_column not in present:
        raise UserError(f"{source}: id column {id_column!r} not found in the input",
                        hint=f"columns found: {', '.join(list(columns)[:20])}")
    missing = [c for c in rules.input_columns() if c not in present]
    if missing:
        raise UserError(
            f"{source}: the {engine} engine needs every factor (and spam-gate) column in the "
            f"input; missing: {', '.join(missing)}",
            hint="derived signals and event features are computed by --engine pandas only: "
                 "score with --engine pandas, or add these columns to the file first")


def summary(rows: int, scored: int, sdr_ready: int, reasons: dict[str, int],
             unseen: dict[str, int]) -> ScoringSummary:
    """The counts as the pandas engine reports them (zero counts left out)."""
    return ScoringSummary(rows=rows, scored=scored, rejected=rows - scored, sdr_ready=sdr_ready,
                          unseen={k: v for k, v in unseen.items() if v},
                          reasons={k: v for k, v in reasons.items() if v})


def nothing_scored(source: Path, summary: ScoringSummary) -> NothingScoredError:
    """The error for an input whose every row was rejected, with the reasons."""
    top = ", ".join(f"{k}: {v}" for k, v in sorted(summary.reasons.items(), key=lambda kv: -kv[1]))
    return NothingScoredError(f"{source}: no lead could be scored ({summary.rejected} rejected: "
                              f"{top})", hint="see the rejects for each row's reason")


