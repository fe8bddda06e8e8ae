"""Scoring engines beyond pandas: DuckDB (out of core, one machine) and Spark (a cluster).

Both score with the points table's own SQL (the per-factor CASE and the totals of
:func:`pipeline.exports.sql.export_sql`, via
:func:`~pipeline.exports.sql.sql_factor_points` and
:func:`~pipeline.exports.sql.sql_score_totals`) after cleaning the input the way the pandas
engine
(:func:`pipeline.scoring.batch.score_file`) does:

* every text value is stripped of surrounding whitespace (Python's ``str.strip`` set), and
  ``""`` or a configured missing token becomes NULL;
* a row is rejected, with a reason, when its id is missing, when its id already appeared
  on an earlier row, or when a numeric factor holds text that is not a number (checked with
  one regular expression plus ``try_cast``, so ``"1_000"``, ``"1d"`` or ``"nan"`` are
  rejected as pandas rejects them);
* everything else is scored: scored + rejected = input rows, the same leads and the same
  points as the pandas engine. The spam gate (``rules.spam_gate``: the points table's) and
  grades apply too.

How the work is kept small (the results are those of cleaning and scoring row by row):

* categorical factors: most raw values are exactly a level. One hash join on a small table of
  the factor's levels (those that are their own cleaned text) gives them their points with
  no cleaning at all; only the other values (padded text, missing tokens, unseen levels,
  non-text values, taken as canonical text: ``1.0`` -> ``'1'``) are cleaned row by row and
  looked up again on the cleaned text. Same points as ``export_sql``'s CASE, without up to
  200 WHENs per row; the rows carry unseen flags for the unseen counts;
* numeric factors: one CASE per column over DOUBLE values, missing tokens compared as
  numbers before as text (no value is cast to text); numeric text that already reads as a
  number (one regular expression) needs no stripping;
* DuckDB trims text only when its first or last character could be whitespace: trimming
  with the 25-character set is slow and rarely needed;
* duplicate ids: distinct 64-bit hashes of the ids are counted first; only when one repeats
  does ``GROUP BY id HAVING count(*) > 1`` find the repeated ids with their first rows, and
  only the later rows of those ids are marked (no window sorting every row).

DuckDB scans the file once into a narrow table (row, id, reason, fit, pain, gate, unseen
flags), counts on it and COPYs the scored and rejected rows out of it. Spark runs one job
counting repeated ids, one writing the scores with every count observed on the way
(``Observation``: no counting pass) and one writing the rejects when asked for; a single
Parquet file is numbered by ``_metadata.row_index``, not by a counting pass. Observing the
unseen counts between the categorical and the numeric work also cuts Spark's generated code
in two methods each small enough for the JIT compiler (a method over 8000 bytes of bytecode
runs interpreted, several times slower): very wide points tables can still go over, for
which ``-XX:-DontCompileHugeMethods`` in the driver's Java options is the remedy.

What they do not do (use ``--engine pandas``): derive profile signals from raw columns
(``email_domain_type``, ``name_spam``, ``seniority``), aggregate the event log into behaviour
features, and write reason codes. The input must already hold every factor column the points
table reads; :func:`score_with_engine` names the missing ones. Rows come out in no particular
order. A malformed CSV row (wrong number of fields) stops the DuckDB engine with an error
rather than being listed as a reject.

Spark runs on ``local[2]`` unless ``LEAD_SCORING_SPARK_MASTER`` (or ``master=``) names
another master; with a ``local`` master the part files are gathered into the one output file,
otherwise ``output`` is written as a Spark directory (HDFS/S3 paths welcome).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import NothingScoredError, UserError
from pipeline.exports.sql import sql_identifier, sql_string
from pipeline.inputs.reader import (
    ReadOptions,
    atomic_path,
    read_options,
    table_format,
    well_formed_csv,
    write_text_atomic,
)
from pipeline.inputs.text_format import AUTO, is_utf8_codec, resolve_delimiter, utf8_problem
from pipeline.model.rules import PointsRules
from pipeline.scoring.batch import REJECT_COLUMNS, ScoringSummary
from pipeline.scoring.sql import (
    REASON,
    ROW,
    CheckedQuery,
    categoricals,
    duplicate_reason,
    duplicates_sql,
    ids_sql,
    levels_sql,
    repeated_ids_sql,
    scored_select,
    unseen_columns,
)

ENGINES = ("pandas", "duckdb", "spark")
SPARK_MASTER_ENV = "LEAD_SCORING_SPARK_MASTER"
DEFAULT_SPARK_MASTER = "local[2]"
SCORE_COLUMNS = ["points", "fit", "pain", "probability", "sdr_ready"]
REASON_KINDS = ("missing id", "duplicate id", "unparseable value")


def score_with_engine(engine: str, cfg: Any, rules: PointsRules, input_path: Path, output: Path,
                      rejects: Path | None, *, master: str | None = None) -> ScoringSummary:
    """Score ``input_path`` into ``output`` (+ ``rejects``) with ``engine``; counts as pandas.

    ``cfg`` (the model's config) supplies ``data.id_column`` and the feature settings; the
    spam gate is the points table's (``rules.spam_gate``). The pandas engine derives the
    profile signals; event features must be in the file (``lead-scoring score`` adds them
    from the event log).
    """
    id_column = cfg.data.id_name
    options = read_options(cfg)
    if engine == "pandas":
        from pipeline.inputs.features import FeatureSettings
        from pipeline.scoring.batch import score_file

        return score_file(rules, Path(input_path), Path(output), rejects_path=rejects,
                          id_column=id_column, settings=FeatureSettings.from_config(cfg),
                          options=options)
    if engine == "duckdb":
        return score_duckdb(rules, input_path, output, rejects, id_column=id_column,
                            options=options)
    if engine == "spark":
        return score_spark(rules, input_path, output, rejects, id_column=id_column,
                           master=master, options=options)
    raise UserError(f"unknown engine {engine!r}", hint=f"use one of {', '.join(ENGINES)}")


def _check_input(input_path: Path) -> Path:
    """``input_path`` as a Path, when it is a non-empty CSV or Parquet file."""
    input_path = Path(input_path)
    if not input_path.exists():
        raise UserError(f"{input_path}: file not found")
    if input_path.stat().st_size == 0:
        raise UserError(f"{input_path}: file is empty",
                        hint="expected a header and one row per lead")
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

    from pipeline.scoring.batch import iter_batches

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
def _readable_source(source: Path, options: ReadOptions | None) -> Iterator[Path]:
    """``source``, or a plain Parquet copy of it when an SQL engine could not read it right
    as it is (see :func:`plain_input`)."""
    if options is None or plain_input(source, options):
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="lead-scoring-input-") as tmp:
        yield write_plain_copy(source, options, Path(tmp))


def _refuse_remote(options: ReadOptions | None) -> None:
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


def _summary(rows: int, scored: int, sdr_ready: int, reasons: dict[str, int],
             unseen: dict[str, int]) -> ScoringSummary:
    """The counts as the pandas engine reports them (zero counts left out)."""
    return ScoringSummary(rows=rows, scored=scored, rejected=rows - scored, sdr_ready=sdr_ready,
                          unseen={k: v for k, v in unseen.items() if v},
                          reasons={k: v for k, v in reasons.items() if v})


def _nothing_scored(source: Path, summary: ScoringSummary) -> NothingScoredError:
    """The error for an input whose every row was rejected, with the reasons."""
    top = ", ".join(f"{k}: {v}" for k, v in sorted(summary.reasons.items(), key=lambda kv: -kv[1]))
    return NothingScoredError(f"{source}: no lead could be scored ({summary.rejected} rejected: "
                              f"{top})", hint="see the rejects for each row's reason")


# ------------------------------------------------------------------------------ DuckDB


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
    checked_source = _check_input(input_path)
    with _readable_source(checked_source, options) as readable:
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
                raise _nothing_scored(shown, _summary(rows, 0, 0, reasons, unseen))
            sdr_ready = _duckdb_write_scores(con, scored_select(
                rules, id_column=id_column, dialect="duckdb", gate=gate, table="checked"),
                Path(output))
            if rejects is not None:
                _duckdb_write_rejects(con, id_column, Path(rejects))
        finally:
            con.close()
    return _summary(rows, scored, sdr_ready, reasons, unseen)


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


# ------------------------------------------------------------------------------ Spark


def spark_master(master: str | None = None) -> str:
    """``master``, else ``$LEAD_SCORING_SPARK_MASTER``, else ``local[2]``."""
    return master or os.environ.get(SPARK_MASTER_ENV) or DEFAULT_SPARK_MASTER


def spark_session(master: str | None = None, *, app_name: str = "lead-scoring",
                  shuffle_partitions: int | None = None) -> Any:
    """A SparkSession (reused when one is active), UI off, few shuffle partitions locally."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    chosen = spark_master(master)
    builder = (SparkSession.builder.master(chosen).appName(app_name)
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC"))
    if chosen.startswith("local"):  # Python workers (pyfunc UDFs) run this interpreter
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if shuffle_partitions is None and chosen.startswith("local"):
        shuffle_partitions = 4
    if shuffle_partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    return builder.getOrCreate()


def _spark_read(spark: Any, source: str, fmt: str) -> Any:
    """The input file; a single Parquet file comes numbered by ``_metadata.row_index``
    (no counting pass), when this Spark has it."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    if fmt == "parquet":
        frame = spark.read.parquet(source)
        if len(frame.inputFiles()) == 1:  # row_index counts within a file
            try:
                return frame.select("*", (F.col("_metadata.row_index") + 1).alias(ROW))
            except AnalysisException:
                pass
        return frame
    return (spark.read.option("header", True).option("inferSchema", False)
            .option("multiLine", True).option("escape", '"').csv(source))


def _spark_numbered(spark: Any, frame: Any) -> Any:
    """``frame`` with ``__row``, its 1-based position (kept when ``frame`` has it already).

    ``monotonically_increasing_id`` within each partition plus the sizes of the partitions
    before it; one partition (e.g. a multi-line CSV file) needs no counting pass.
    """
    from pyspark.sql import functions as F

    if ROW in frame.columns:
        return frame
    marked = frame.withColumn("__mid", F.monotonically_increasing_id())
    if frame.rdd.getNumPartitions() == 1:
        return marked.withColumn(ROW, F.col("__mid") + 1).drop("__mid")
    marked = marked.withColumn("__part", F.shiftright("__mid", 33))
    sizes = sorted(marked.groupBy("__part").count().collect())
    offsets, start = [], 0
    for part, count in sizes:
        offsets.append((int(part), start))
        start += int(count)
    offset_frame = spark.createDataFrame(offsets or [(0, 0)], "__part long, __offset long")
    return (marked.join(F.broadcast(offset_frame), "__part")
            .withColumn(ROW, F.col("__offset") + F.col("__mid") - F.shiftleft("__part", 33) + 1)
            .drop("__part", "__offset", "__mid"))


def _spark_checked(spark: Any, frame: Any, rules: PointsRules, *, id_column: str
                   ) -> tuple[Any, Any, bool]:
    """(checked, unseen, gate): every row as (row, id, reason, fit, pain[, gate], flags).

    Runs one job, the count of repeated ids: the duplicate join is planned only when some id
    may repeat. ``unseen`` is the Observation that gets the unseen counts of the first action.
    """
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    check_columns(rules, list(types), id_column=id_column, engine="spark", source=Path("input"))
    gate = rules.spam_gate
    tag = id(frame)
    view, front_view = f"lead_scoring_src_{tag}", f"lead_scoring_front_{tag}"
    _spark_numbered(spark, frame).createOrReplaceTempView(view)
    query = CheckedQuery(rules, types, _spark_levels(spark, rules, tag), id_column, "spark",
                         gate)
    unseen = Observation()
    flags = [F.count_if(F.col(flag)).alias(flag) for flag in unseen_columns(rules).values()]
    spark.sql(query.front(view)).observe(unseen, *flags or [F.count(F.lit(1)).alias("rows")]) \
        .createOrReplaceTempView(front_view)
    checked = spark.sql(query.back(f"{front_view} AS c"))
    ids = ids_sql(rules, types, id_column=id_column, dialect="spark", table=view)
    if spark.sql(repeated_ids_sql(id_column, "spark", f"({ids}) AS ids")).collect()[0][0]:
        checked = _spark_mark_duplicates(spark, checked, id_column)
    return checked, unseen, gate


def _spark_levels(spark: Any, rules: PointsRules, tag: int) -> list[str]:
    """Register each categorical factor's levels table (inline VALUES: no job); their names."""
    names = []
    for i, factor in enumerate(categoricals(rules)):
        names.append(f"lead_scoring_levels{i}_{tag}")
        spark.sql(levels_sql(factor, rules, "spark")).createOrReplaceTempView(names[-1])
    return names


def _spark_mark_duplicates(spark: Any, checked: Any, id_column: str) -> Any:
    """``checked`` with the duplicate reason on every row whose id appeared on an earlier row."""
    ident = sql_identifier(id_column, dialect="spark")
    view = f"lead_scoring_checked_{id(checked)}"
    checked.createOrReplaceTempView(view)
    keep = ", ".join(f"c.{sql_identifier(c, dialect='spark')}" for c in checked.columns
                     if c != REASON)
    return spark.sql(
        f"SELECT {keep}, CASE WHEN c.{ROW} > d.__first THEN {duplicate_reason('c.' + ident)} "
        f"ELSE c.{REASON} END AS {REASON}\n"
        f"FROM {view} AS c LEFT JOIN ({duplicates_sql(id_column, 'spark', view)}) AS d "
        f"ON c.{ident} = d.{ident}")


def _spark_scored(spark: Any, checked: Any, rules: PointsRules, *, id_column: str,
                  gate: bool) -> Any:
    """The scored rows of ``checked`` with the output columns."""
    view = f"lead_scoring_checked_{id(checked)}"
    checked.createOrReplaceTempView(view)
    return spark.sql(scored_select(rules, id_column=id_column, dialect="spark", gate=gate,
                                   table=view))


def _spark_rejects(checked: Any, id_column: str) -> Any:
    """The rejected rows of ``checked`` (row, lead_id, reason) in one partition, by row."""
    from pyspark.sql import functions as F

    return (checked.where(F.col(REASON).isNotNull())
            .select(F.col(ROW).alias("row"), F.col(id_column).alias("lead_id"),
                    F.col(REASON).alias("reason"))
            .repartition(1).sortWithinPartitions("row"))


def spark_scores(spark: Any, frame: Any, rules: PointsRules, *, id_column: str
                 ) -> tuple[Any, Any, Any]:
    """(scored, rejects, checked) DataFrames: native Spark SQL, no Python UDF.

    ``frame`` is any Spark DataFrame holding the id and the factor columns (and ``__row``,
    else rows are numbered by position: ``monotonically_increasing_id`` within each partition
    plus the sizes of the partitions before it). Row numbers of the rejects are 1-based.
    ``checked`` is every row with its reject reason (NULL when scored). Runs one job (the
    repeated-id count); nothing is cached (``checked.unpersist()`` is harmless).
    """
    checked, _, gate = _spark_checked(spark, frame, rules, id_column=id_column)
    scored = _spark_scored(spark, checked, rules, id_column=id_column, gate=gate)
    return scored, _spark_rejects(checked, id_column), checked


def score_spark(rules: PointsRules, input_path: Path | str, output: Path | str,
                rejects: Path | str | None, *, id_column: str,
                master: str | None = None, spark: Any = None,
                options: ReadOptions | None = None) -> ScoringSummary:
    """Score a CSV/Parquet file with Spark SQL; the points table runs as a native expression.

    Counts are observed while the scores are written (no separate counting pass); when
    nothing can be scored the output is not published. A local file Spark would not read as
    the ``options`` say is first copied by the pipeline's reader (:func:`plain_input`).
    """
    chosen = spark_master(master)
    local = chosen.startswith("local") if spark is None else \
        spark.sparkContext.master.startswith("local")
    if not local:
        _refuse_remote(options)
        return _score_spark(rules, input_path, output, rejects, id_column=id_column,
                            chosen=chosen, local=False, spark=spark)
    checked_source = _check_input(Path(input_path))
    with _readable_source(checked_source, options) as readable:
        return _score_spark(rules, readable, output, rejects, id_column=id_column,
                            chosen=chosen, local=True, spark=spark,
                            shown=checked_source)


def _score_spark(rules: PointsRules, input_path: Path | str, output: Path | str,
                 rejects: Path | str | None, *, id_column: str, chosen: str,
                 local: bool, spark: Any, shown: Path | None = None) -> ScoringSummary:
    """:func:`score_spark` on an input Spark reads as it is; ``shown``: the path in messages."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    source = Path(input_path)
    spark = spark or spark_session(chosen)
    frame = _spark_read(spark, str(source), table_format(source))
    checked, unseen, gate = _spark_checked(spark, frame, rules, id_column=id_column)
    counts, ready = Observation(), Observation()
    kind = F.split(F.col(REASON), ":").getItem(0)
    observed = checked.observe(counts, F.count(F.lit(1)).alias("rows"),
                               *[F.count_if(kind == k).alias(k) for k in REASON_KINDS])
    scored = _spark_scored(spark, observed, rules, id_column=id_column, gate=gate).observe(
        ready, F.count(F.lit(1)).alias("scored"),
        F.count_if(F.col("sdr_ready")).alias("sdr_ready"))

    def summary() -> ScoringSummary:
        c, r, u = counts.get, ready.get, unseen.get
        return _summary(int(c["rows"]), int(r["scored"]), int(r["sdr_ready"] or 0),
                        {k: int(c[k] or 0) for k in REASON_KINDS},
                        {name: int(u.get(flag) or 0)
                         for name, flag in unseen_columns(rules).items()})

    def check() -> None:
        if summary().scored == 0:
            raise _nothing_scored(shown or source, summary())

    _spark_write(scored, Path(output) if local else output, local=local, before_publish=check)
    if rejects is not None and local and summary().rejected == 0:  # no pass for no rows
        write_text_atomic(rejects, ",".join(REJECT_COLUMNS) + "\n")
    elif rejects is not None:
        _spark_write(_spark_rejects(checked, id_column), Path(rejects) if local else rejects,
                     local=local, fmt="csv")
    return summary()


def _spark_write(frame: Any, target: Path | str, *, local: bool, fmt: str | None = None,
                 before_publish: Callable[[], None] | None = None) -> None:
    """Write a DataFrame: one file locally (part files gathered), a directory on a cluster.

    ``before_publish`` runs once the rows are computed and before ``target`` appears (it may
    raise); on a cluster that takes a ``noop`` pass first.
    """
    fmt = fmt or table_format(Path(str(target)))
    if not local:
        if before_publish is not None:
            frame.write.format("noop").mode("overwrite").save()
            before_publish()
        writer = frame.write.mode("overwrite")
        (writer.parquet(str(target)) if fmt == "parquet"
         else writer.option("header", True).csv(str(target)))
        return
    target = Path(target)
    with tempfile.TemporaryDirectory(prefix=".spark-", dir=target.parent) as tmp:
        parts_dir = Path(tmp) / "parts"
        writer = frame.write.mode("overwrite")
        if fmt == "parquet":
            writer.parquet(str(parts_dir))
        else:
            writer.option("header", True).option("emptyValue", "").csv(str(parts_dir))
        if before_publish is not None:
            before_publish()
        with atomic_path(target) as tmp_out:
            _gather(sorted(parts_dir.glob("part-*")), tmp_out, fmt, frame.columns)


def _gather(parts: list[Path], out: Path, fmt: str, columns: list[str]) -> None:
    """Concatenate Spark part files into one CSV (one header) or one Parquet file."""
    if fmt == "parquet" and len(parts) == 1:  # the common case locally: nothing to merge
        shutil.move(parts[0], out)
        return
    if fmt == "parquet":
        import pyarrow.parquet as pq

        writer = None
        for part in parts:
            pf = pq.ParquetFile(part)
            for i in range(pf.num_row_groups):
                table = pf.read_row_group(i)
                if writer is None:
                    writer = pq.ParquetWriter(out, table.schema)
                writer.write_table(table.cast(writer.schema))
        if writer is None:
            import pandas as pd

            pd.DataFrame(columns=columns).to_parquet(out, index=False)
        else:
            writer.close()
        return
    with open(out, "wb") as sink:
        sink.write((",".join(columns) + "\n").encode())
        for part in parts:
            with open(part, "rb") as handle:
                first = handle.readline()
                if first and first.rstrip(b"\r\n") != ",".join(columns).encode():
                    sink.write(first)
                shutil.copyfileobj(handle, sink)


def spark_pyfunc_udf(spark: Any, model_uri: str, *, env_manager: str = "local") -> Any:
    """The registered pyfunc model as a Spark UDF (``models:/NAME@ALIAS``).

    Returns a UDF giving a struct of the score columns; apply it to the factor columns:
    ``frame.withColumn("score", udf(*[frame[c] for c in factors]))``. This runs Python in every
    executor (pandas + the model): simple, and much slower than :func:`spark_scores`.
    ``env_manager="local"`` uses the executors' own Python: no virtualenv is built (which
    would need network access); the executors must have ``lead-scoring`` installed.
    """
    import mlflow.pyfunc

    result_type = ("points long, fit long, pain long, probability double, sdr_ready boolean, "
                   "grade string, reason_codes string")
    return mlflow.pyfunc.spark_udf(spark, model_uri, result_type=result_type,
                                   env_manager=env_manager)
