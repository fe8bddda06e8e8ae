"""The DuckDB scoring engine: out of core, one machine (see :mod:`pipeline.scoring.engines`)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.exports.sql import sql_identifier, sql_string
from pipeline.inputs.reader import (
    ReadOptions,
    atomic_path,
    table_format,
)
from pipeline.model.rules import PointsRules
from pipeline.scoring.batch import ScoringSummary
from pipeline.scoring.engine_input import (
    check_columns,
    check_input,
    nothing_scored,
    readable_source,
    summary,
)
from pipeline.scoring.sql import (
    REASON,
    ROW,
    CheckedQuery,
    categoricals,
    duplicate_reason,
    duplicates_sql,
    levels_sql,
    repeated_ids_sql,
    scored_select,
    unseen_columns,
)


def score_duckdb(rules: PointsRules, input_path: Path, output: Path, rejects: Path | None, *,
                 id_column: str, threads: int | None = None,
                 memory_limit: str | None = None,
                 options: ReadOptions | None = None) -> ScoringSummary:
    """Score with DuckDB straight over the CSV/Parquet file (out of core); COPY the output.

    Parquet rows are numbered by ``file_row_number``; a CSV is first loaded into a temporary
    table (spilled to disk beyond ``memory_limit``) so that ``rowid`` gives file order. One
    scan of the rows fills the narrow table ``checked``; the rest reads only that. A file
    DuckDB would not read as the ``options`` say (another delimiter, encoding or decimal
    separator, no id column) is first copied by the pipeline's reader (:func:`plain_input`).
    """
    checked_source = check_input(input_path)
    with readable_source(checked_source, options) as readable:
        summary = _score_duckdb(rules, readable, output, rejects, id_column=id_column,
                                threads=threads,
                                memory_limit=memory_limit, shown=checked_source)
    return summary


def _score_duckdb(rules: PointsRules, source: Path, output: Path, rejects: Path | None, *,
                  id_column: str, threads: int | None,
                  memory_limit: str | None, shown: Path) -> ScoringSummary:
    """:func:`score_duckdb` on a file DuckDB reads as it is; ``shown``: the path in messages."""
    with tempfile.TemporaryDirectory(prefix="lead-scoring-duckdb-") as tmp:
        con = _duckdb_connect(tmp, threads=threads, memory_limit=memory_limit)
        try:
            types = _duckdb_source(con, source, shown)
            check_columns(rules, list(types), id_column=id_column, engine="duckdb",
                          source=shown)
            gate = rules.spam_gate
            query = CheckedQuery(rules, types, _duckdb_levels(con, rules), id_column,
                                 "duckdb", gate)
            con.execute(f"CREATE TEMP TABLE checked AS {query.sql('src')}")
            _duckdb_mark_duplicates(con, id_column)
            rows, scored, reasons, unseen = _duckdb_counts(con, rules)
            if scored == 0:
                raise nothing_scored(shown, summary(rows, 0, 0, reasons, unseen))
            sdr_ready = _duckdb_write_scores(con, scored_select(
                rules, id_column=id_column, dialect="duckdb", gate=gate, table="checked"),
                Path(output))
            if rejects is not None:
                _duckdb_write_rejects(con, id_column, Path(rejects))
        finally:
            con.close()
    return summary(rows, scored, sdr_ready, reasons, unseen)


def _duckdb_connect(tmp: str, *, threads: int | None, memory_limit: str | None) -> Any:
    """An in-memory DuckDB that spills to ``tmp`` beyond the memory limit."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = {sql_string(memory_limit, dialect='duckdb')}")
    con.execute(f"SET temp_directory = {sql_string(tmp, dialect='duckdb')}")
    return con


def _duckdb_source(con: Any, source: Path, shown: Path | None = None) -> dict[str, str]:
    """Create the view ``src`` (the input plus ``__row``, 1-based file order); its column types.
    ``shown``: the path named in an error (the user's file when ``source`` is its copy)."""
    import duckdb

    path = sql_string(str(source), dialect="duckdb")
    try:
        if table_format(source) == "parquet":
            con.execute(f"CREATE VIEW src AS SELECT *, file_row_number + 1 AS {ROW} "
                        f"FROM read_parquet({path}, file_row_number = true)")
        else:
            con.execute(f"CREATE TABLE src_table AS SELECT * FROM read_csv({path}, "
                        "header = true, all_varchar = true, auto_detect = true)")
            con.execute(f"CREATE VIEW src AS SELECT *, rowid + 1 AS {ROW} FROM src_table")
        described = con.execute("DESCRIBE src").fetchall()
    except duckdb.Error as exc:
        raise UserError(f"{shown or source}: DuckDB cannot read the file: {exc}",
                        hint="check the file, or score it with --engine pandas") from None
    return {row[0]: str(row[1]) for row in described}


def _duckdb_levels(con: Any, rules: PointsRules) -> list[str]:
    """Create each categorical factor's levels table (a few rows); their names."""
    names = []
    for i, factor in enumerate(categoricals(rules)):
        names.append(f"__ls_levels{i}")
        con.execute(f"CREATE TEMP TABLE {names[-1]} AS {levels_sql(factor, rules, 'duckdb')}")
    return names


def _duckdb_mark_duplicates(con: Any, id_column: str) -> None:
    """Give every row whose id appeared on an earlier row of ``checked`` the duplicate reason."""
    if not con.execute(repeated_ids_sql(id_column, "duckdb", "checked")).fetchone()[0]:
        return
    ident = sql_identifier(id_column, dialect="duckdb")
    con.execute(f"UPDATE checked SET {REASON} = {duplicate_reason('checked.' + ident)} "
                f"FROM ({duplicates_sql(id_column, 'duckdb', 'checked')}) AS d "
                f"WHERE checked.{ident} = d.{ident} AND checked.{ROW} > d.__first")


def _duckdb_counts(con: Any, rules: PointsRules
                   ) -> tuple[int, int, dict[str, int], dict[str, int]]:
    """(rows, rows scored, rejects per kind of reason, unseen per factor) of ``checked``."""
    unseen = unseen_columns(rules)
    counts = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {REASON} IS NULL)"
        + "".join(f", count(*) FILTER (WHERE {flag})" for flag in unseen.values())
        + " FROM checked").fetchone()
    reasons = dict(con.execute(f"SELECT split_part({REASON}, ':', 1), count(*) FROM checked "
                               f"WHERE {REASON} IS NOT NULL GROUP BY 1").fetchall())
    return (int(counts[0]), int(counts[1]), reasons,
            {name: int(n) for name, n in zip(unseen, counts[2:], strict=True)})


def _duckdb_write_scores(con: Any, scored_sql: str, output: Path) -> int:
    """Write the scored rows to ``output`` (CSV or Parquet); how many are SDR-ready.

    A table, not the query, is COPYed: its statistics mark the Parquet columns required.
    """
    con.execute(f"CREATE TEMP TABLE result AS {scored_sql}")
    sdr_ready = con.execute("SELECT count(*) FILTER (WHERE sdr_ready) FROM result").fetchone()
    out_fmt = "PARQUET" if table_format(output) == "parquet" else "CSV, HEADER"
    with atomic_path(output) as tmp_out:
        con.execute(f"COPY result TO {sql_string(str(tmp_out), dialect='duckdb')} "
                    f"(FORMAT {out_fmt})")
    return int(sdr_ready[0])


def _duckdb_write_rejects(con: Any, id_column: str, rejects: Path) -> None:
    """Write the rejected rows of ``checked`` (row, lead_id, reason) as CSV, by row."""
    ident = sql_identifier(id_column, dialect="duckdb")
    with atomic_path(rejects) as tmp_rej:
        con.execute(f"COPY (SELECT {ROW} AS row, {ident} AS lead_id, {REASON} AS reason "
                    f"FROM checked WHERE {REASON} IS NOT NULL ORDER BY {ROW}) TO "
                    f"{sql_string(str(tmp_rej), dialect='duckdb')} (FORMAT CSV, HEADER)")
