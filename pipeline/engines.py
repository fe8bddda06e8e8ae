"""Scoring engines beyond pandas: DuckDB (out of core, one machine) and Spark (a cluster).

Both run the points table as SQL, the text of :func:`pipeline.export.export_sql`, over a view
that cleans the input the way the pandas engine (:func:`pipeline.predict.score_file`) does:

* every text value is stripped of surrounding whitespace (Python's ``str.strip`` set), and
  ``""`` or a configured missing token becomes NULL;
* a row is rejected, with a reason, when its id is missing, when its id already appeared
  on an earlier row, or when a numeric factor holds text that is not a number (checked with
  one regular expression plus ``try_cast``, so ``"1_000"``, ``"1d"`` or ``"nan"`` are
  rejected as pandas rejects them);
* everything else is scored: scored + rejected = input rows, the same leads and the same
  points as the pandas engine. The spam gate (``derived.spam_gate``) and grades apply too.

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

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import NothingScoredError, UserError
from pipeline.export import export_sql, sql_identifier, sql_string
from pipeline.io import atomic_path, table_format
from pipeline.predict import ScoringSummary
from pipeline.rules import PointsRules

ENGINES = ("pandas", "duckdb", "spark")
SPARK_MASTER_ENV = "LEAD_SCORING_SPARK_MASTER"
DEFAULT_SPARK_MASTER = "local[2]"
WHITESPACE = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
# what pandas.to_numeric accepts as a number (after stripping), and nothing else
NUMBER_PATTERN = (r"^[+-]?(([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?"
                  r"|[iI][nN][fF]([iI][nN][iI][tT][yY])?)$")
SCORE_COLUMNS = ["points", "fit", "pain", "probability", "sdr_ready"]
_ROW, _REASON, _GATE = "__row", "__reason", "__spam"


def score_with_engine(engine: str, cfg: Any, rules: PointsRules, input_path: Path, output: Path,
                      rejects: Path | None, *, master: str | None = None) -> ScoringSummary:
    """Score ``input_path`` into ``output`` (+ ``rejects``) with ``engine``; counts as pandas.

    ``cfg`` supplies ``data.id_column`` and ``derived.spam_gate``.
    """
    spam_gate = bool(getattr(getattr(cfg, "derived", None), "spam_gate", False))
    id_column = cfg.data.id_column
    if engine == "pandas":
        from pipeline.predict import score_file

        return score_file(rules, Path(input_path), Path(output), rejects_path=rejects,
                          id_column=id_column, derived=cfg.derived.model_dump(mode="json"))
    if engine == "duckdb":
        return score_duckdb(rules, input_path, output, rejects, id_column=id_column,
                            spam_gate=spam_gate)
    if engine == "spark":
        return score_spark(rules, input_path, output, rejects, id_column=id_column,
                           spam_gate=spam_gate, master=master)
    raise UserError(f"unknown engine {engine!r}", hint=f"use one of {', '.join(ENGINES)}")


def _check_input(input_path: Path) -> Path:
    input_path = Path(input_path)
    if not input_path.exists():
        raise UserError(f"{input_path}: file not found")
    if input_path.stat().st_size == 0:
        raise UserError(f"{input_path}: file is empty",
                        hint="expected a header and one row per lead")
    table_format(input_path)
    return input_path


def required_columns(rules: PointsRules, id_column: str) -> list[str]:
    """Columns an SQL engine needs in the input: the id and every factor."""
    return [id_column, *rules.factor_names()]


def check_columns(rules: PointsRules, columns: Sequence[str], *, id_column: str, engine: str,
                  source: Path) -> None:
    """Raise a :class:`UserError` naming each column the SQL engines cannot derive."""
    present = set(columns)
    if id_column not in present:
        raise UserError(f"{source}: id column {id_column!r} not found in the input",
                        hint=f"columns found: {', '.join(list(columns)[:20])}")
    missing = [c for c in rules.factor_names() if c not in present]
    if missing:
        raise UserError(
            f"{source}: the {engine} engine needs every factor column in the input; missing: "
            f"{', '.join(missing)}",
            hint="derived signals and event features are computed by --engine pandas only: "
                 "score with --engine pandas, or add these columns to the file first")


# ------------------------------------------------------------------------------ shared SQL


def _strip_expr(column: str, dialect: str) -> str:
    """A string column without surrounding whitespace (Python's ``str.strip`` set)."""
    ident = sql_identifier(column, dialect=dialect)
    chars = sql_string(WHITESPACE, dialect=dialect)
    return (f"trim({ident}, {chars})" if dialect == "duckdb"
            else f"trim(BOTH {chars} FROM {ident})")


def _text_expr(column: str, rules: PointsRules, dialect: str) -> str:
    """NULL when the (already stripped) text is empty or a missing token, else the text."""
    ident = sql_identifier(column, dialect=dialect)
    tokens = ", ".join(sql_string(t, dialect=dialect)
                       for t in dict.fromkeys(["", *rules.missing_values]))
    return f"(CASE WHEN {ident} IN ({tokens}) THEN NULL ELSE {ident} END)"


def _stripped_source(rules: PointsRules, types: dict[str, str], *, id_column: str,
                     dialect: str, table: str) -> str:
    """``table`` with its text columns stripped once (the cleaning view reads this)."""
    wanted = [id_column, *rules.factor_names()] + (["name_spam"] if "name_spam" in types
                                                   else [])
    columns = [_ROW]
    for name in dict.fromkeys(wanted):
        ident = sql_identifier(name, dialect=dialect)
        columns.append(f"{_strip_expr(name, dialect)} AS {ident}" if _is_text_type(types[name])
                       else ident)
    return f"(SELECT {', '.join(columns)} FROM {table}) AS stripped"


def _canonical_text_expr(column: str, sql_type: str, dialect: str) -> str:
    """A non-text column as the text the reference matches levels on (``1.0`` -> ``'1'``)."""
    ident = sql_identifier(column, dialect=dialect)
    text = "VARCHAR" if dialect == "duckdb" else "STRING"
    kind = sql_type.upper()
    if any(k in kind for k in ("DOUBLE", "FLOAT", "REAL", "DECIMAL")):
        return (f"(CASE WHEN {ident} = floor({ident}) AND abs({ident}) < 1e15 "
                f"THEN CAST(CAST({ident} AS BIGINT) AS {text}) ELSE CAST({ident} AS {text}) END)")
    return f"CAST({ident} AS {text})"


def _is_text_type(sql_type: str) -> bool:
    kind = sql_type.upper()
    return any(k in kind for k in ("VARCHAR", "STRING", "CHAR", "TEXT"))


def _clean_select(rules: PointsRules, types: dict[str, str], *, id_column: str, dialect: str,
                  spam_gate: bool) -> str:
    """SELECT list of the cleaning view: row, id, reason, factor columns, optional gate."""
    double = "DOUBLE"
    text = "VARCHAR" if dialect == "duckdb" else "STRING"
    pattern = sql_string(NUMBER_PATTERN, dialect=dialect)
    regex = (f"regexp_full_match({{x}}, {pattern})" if dialect == "duckdb"
             else f"{{x}} RLIKE {pattern}")
    id_ident = sql_identifier(id_column, dialect=dialect)
    id_expr = (_text_expr(id_column, rules, dialect) if _is_text_type(types[id_column])
               else f"CAST({id_ident} AS {text})")
    columns = [f"{_ROW}", f"{id_expr} AS {id_ident}"]
    checks = []
    for factor in rules.factors:
        name = factor.name
        ident = sql_identifier(name, dialect=dialect)
        is_text = _is_text_type(types[name])
        if factor.kind == "categorical":
            expr = (_text_expr(name, rules, dialect) if is_text
                    else _canonical_text_expr(name, types[name], dialect))
            columns.append(f"{expr} AS {ident}")
            continue
        if not is_text:
            columns.append(f"CAST({ident} AS {double}) AS {ident}")
            continue
        value = _text_expr(name, rules, dialect)
        good = regex.replace("{x}", value)
        columns.append(f"(CASE WHEN {good} THEN try_cast({value} AS {double}) END) AS {ident}")
        quote = sql_string(chr(39), dialect=dialect)
        shown = f"{quote} || {value} || {quote}"
        message = (f"{sql_string(f'unparseable value: column {name!r} holds ', dialect=dialect)} "
                   f"|| {shown} || {sql_string(', not a number', dialect=dialect)}")
        checks.append(f"WHEN {value} IS NOT NULL AND NOT ({good}) THEN {message}")
    reason = (f"CASE WHEN {id_expr} IS NULL THEN 'missing id' "
              f"{' '.join(checks)} ELSE NULL END")
    columns.append(f"{reason} AS {_REASON}")
    if spam_gate and "name_spam" in types:
        columns.append(f"coalesce({_text_expr('name_spam', rules, dialect)} = 'yes', false) "
                       f"AS {_GATE}")
    return ",\n  ".join(columns)


def _final_reason(id_ident: str) -> str:
    """Missing id first, then duplicates (first occurrence wins), then unparseable values."""
    return (f"CASE WHEN {id_ident} IS NULL THEN 'missing id' "
            f"WHEN row_number() OVER (PARTITION BY {id_ident} ORDER BY {_ROW}) > 1 "
            f"THEN 'duplicate id: ' || chr(39) || {id_ident} || chr(39) "
            f"|| ' already appeared earlier in the input' "
            f"ELSE {_REASON} END")


def _grade_expr(rules: PointsRules, dialect: str) -> str | None:
    if not rules.grades:
        return None
    cuts = sorted(rules.grades, key=lambda g: -g["min_points"])
    whens = " ".join(f"WHEN points >= {float(g['min_points'])!r} THEN "
                     f"{sql_string(str(g['grade']), dialect=dialect)}" for g in cuts)
    return f"CASE {whens} ELSE {sql_string(str(cuts[-1]['grade']), dialect=dialect)} END"


def _scored_select(rules: PointsRules, *, id_column: str, dialect: str, gate: bool,
                   table: str) -> str:
    """Output columns as the pandas engine writes them, from ``export_sql`` over ``table``."""
    ident = sql_identifier(id_column, dialect=dialect)
    scores = export_sql(rules, dialect=dialect, table=table)
    sdr = "s.sdr_ready AND NOT g.__spam" if gate else "s.sdr_ready"
    grade = _grade_expr(rules, dialect)
    cols = [f"s.{ident}", "s.points", "s.fit", "s.pain", "s.probability", f"{sdr} AS sdr_ready"]
    if grade:
        cols.append(f"{grade.replace('points', 's.points')} AS grade")
    join = f" JOIN {table} AS g ON g.{ident} = s.{ident}" if gate else ""
    return f"SELECT {', '.join(cols)}\nFROM ({scores}) AS s{join}"


def _unseen_sql(rules: PointsRules, dialect: str, table: str) -> list[tuple[str, str]]:
    """(factor, query) pairs: the distinct values of each categorical factor with counts.

    Counting unseen levels on the distinct values is much cheaper than a ``NOT IN`` list
    evaluated on every row.
    """
    out = []
    for factor in rules.factors:
        if factor.kind == "categorical":
            ident = sql_identifier(factor.name, dialect=dialect)
            out.append((factor.name, f"SELECT {ident}, count(*) FROM {table} "
                                     f"WHERE {ident} IS NOT NULL GROUP BY {ident}"))
    return out


def _count_unseen(rules: PointsRules, distinct: dict[str, list[tuple[Any, int]]]
                  ) -> dict[str, int]:
    levels = {f.name: f.levels for f in rules.factors}
    return {name: sum(int(n) for value, n in rows if value not in levels[name])
            for name, rows in distinct.items()}


def _summary(rows: int, scored: int, sdr_ready: int, reasons: dict[str, int],
             unseen: dict[str, int]) -> ScoringSummary:
    return ScoringSummary(rows=rows, scored=scored, rejected=rows - scored, sdr_ready=sdr_ready,
                          unseen={k: v for k, v in unseen.items() if v},
                          reasons={k: v for k, v in reasons.items() if v})


def _nothing_scored(source: Path, summary: ScoringSummary) -> NothingScoredError:
    top = ", ".join(f"{k}: {v}" for k, v in sorted(summary.reasons.items(), key=lambda kv: -kv[1]))
    return NothingScoredError(f"{source}: no lead could be scored ({summary.rejected} rejected: "
                              f"{top})", hint="see the rejects for each row's reason")


# ------------------------------------------------------------------------------ DuckDB


def score_duckdb(rules: PointsRules, input_path: Path, output: Path, rejects: Path | None, *,
                 id_column: str, spam_gate: bool = False, threads: int | None = None,
                 memory_limit: str | None = None) -> ScoringSummary:
    """Score with DuckDB straight over the CSV/Parquet file (out of core); COPY the output.

    Parquet rows are numbered by ``file_row_number``; a CSV is first loaded into a temporary
    table (spilled to disk beyond ``memory_limit``) so that ``rowid`` gives file order.
    """
    import duckdb

    source = _check_input(input_path)
    fmt = table_format(source)
    with tempfile.TemporaryDirectory(prefix="lead-scoring-duckdb-") as tmp:
        con = duckdb.connect()  # in memory; spills to ``tmp`` beyond the memory limit
        try:
            if threads:
                con.execute(f"SET threads = {int(threads)}")
            if memory_limit:
                con.execute(f"SET memory_limit = {sql_string(memory_limit, dialect='duckdb')}")
            con.execute(f"SET temp_directory = {sql_string(tmp, dialect='duckdb')}")
            path = sql_string(str(source), dialect="duckdb")
            try:
                if fmt == "parquet":
                    con.execute(f"CREATE VIEW src AS SELECT *, file_row_number + 1 AS {_ROW} "
                                f"FROM read_parquet({path}, file_row_number = true)")
                else:
                    con.execute(f"CREATE TABLE src_table AS SELECT * FROM read_csv({path}, "
                                "header = true, all_varchar = true, auto_detect = true)")
                    con.execute(f"CREATE VIEW src AS SELECT *, rowid + 1 AS {_ROW} "
                                "FROM src_table")
                described = con.execute("DESCRIBE src").fetchall()
            except duckdb.Error as exc:
                raise UserError(f"{source}: DuckDB cannot read the file: {exc}",
                                hint="check the file, or score it with --engine pandas") from None
            types = {row[0]: str(row[1]) for row in described}
            check_columns(rules, list(types), id_column=id_column, engine="duckdb",
                          source=source)
            ident = sql_identifier(id_column, dialect="duckdb")
            select = _clean_select(rules, types, id_column=id_column, dialect="duckdb",
                                   spam_gate=spam_gate)
            source_sql = _stripped_source(rules, types, id_column=id_column, dialect="duckdb",
                                          table="src")
            con.execute(f"CREATE VIEW clean AS SELECT {select}\nFROM {source_sql}")
            con.execute(f"CREATE TABLE checked AS SELECT * EXCLUDE ({_REASON}), "
                        f"{_final_reason(ident)} AS {_REASON} FROM clean")
            con.execute(f"CREATE VIEW ok AS SELECT * FROM checked WHERE {_REASON} IS NULL")
            gate = spam_gate and "name_spam" in types
            scored_sql = _scored_select(rules, id_column=id_column, dialect="duckdb", gate=gate,
                                        table="ok")
            counts = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE {_REASON} IS NULL) FROM checked"
            ).fetchone()
            reasons = dict(con.execute(
                f"SELECT split_part({_REASON}, ':', 1), count(*) FROM checked "
                f"WHERE {_REASON} IS NOT NULL GROUP BY 1").fetchall())
            unseen = _count_unseen(rules, {name: con.execute(q).fetchall()
                                           for name, q in _unseen_sql(rules, "duckdb",
                                                                      "checked")})
            rows, scored = int(counts[0]), int(counts[1])
            if scored == 0:
                raise _nothing_scored(source, _summary(rows, 0, 0, reasons, unseen))
            out_fmt = "PARQUET" if table_format(Path(output)) == "parquet" else "CSV, HEADER"
            with atomic_path(output) as tmp_out:
                con.execute(f"CREATE TABLE result AS {scored_sql}")
                con.execute(f"COPY result TO {sql_string(str(tmp_out), dialect='duckdb')} "
                            f"(FORMAT {out_fmt})")
            sdr_ready = int(con.execute("SELECT count(*) FROM result WHERE sdr_ready")
                            .fetchone()[0])
            if rejects is not None:
                with atomic_path(rejects) as tmp_rej:
                    con.execute(
                        f"COPY (SELECT {_ROW} AS row, {ident} AS lead_id, {_REASON} AS reason "
                        f"FROM checked WHERE {_REASON} IS NOT NULL ORDER BY {_ROW}) TO "
                        f"{sql_string(str(tmp_rej), dialect='duckdb')} (FORMAT CSV, HEADER)")
        finally:
            con.close()
    return _summary(rows, scored, sdr_ready, reasons, unseen)


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
    if fmt == "parquet":
        return spark.read.parquet(source)
    return (spark.read.option("header", True).option("inferSchema", False)
            .option("multiLine", True).option("escape", '"').csv(source))


def spark_scores(spark: Any, frame: Any, rules: PointsRules, *, id_column: str,
                 spam_gate: bool = False) -> tuple[Any, Any, Any]:
    """(scored, rejects, checked) DataFrames: native Spark SQL, no Python UDF.

    ``frame`` is any Spark DataFrame holding the id and the factor columns. Row numbers of
    the rejects are 1-based positions in ``frame`` (``monotonically_increasing_id`` within
    each partition plus the sizes of the partitions before it). ``checked`` is the cleaned
    input with its reject reason (NULL when scored), persisted: unpersist it when done.
    """
    from pyspark.sql import functions as F

    types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    check_columns(rules, list(types), id_column=id_column, engine="spark", source=Path("input"))
    marked = frame.withColumn("__mid", F.monotonically_increasing_id())
    marked = marked.withColumn("__part", F.shiftright("__mid", 33))
    sizes = sorted(marked.groupBy("__part").count().collect())
    offsets, start = [], 0
    for part, count in sizes:
        offsets.append((int(part), start))
        start += int(count)
    offset_frame = spark.createDataFrame(offsets or [(0, 0)], "__part long, __offset long")
    numbered = (marked.join(F.broadcast(offset_frame), "__part")
                .withColumn(_ROW, F.col("__offset") + F.col("__mid")
                            - F.shiftleft("__part", 33) + 1))
    view = f"lead_scoring_src_{id(numbered)}"
    numbered.createOrReplaceTempView(view)
    ident = sql_identifier(id_column, dialect="spark")
    select = _clean_select(rules, types, id_column=id_column, dialect="spark",
                           spam_gate=spam_gate)
    source_sql = _stripped_source(rules, types, id_column=id_column, dialect="spark", table=view)
    first = spark.sql(f"SELECT {select} FROM {source_sql}")
    checked = first.selectExpr("*", f"{_final_reason(ident)} AS __final")
    checked = checked.drop(_REASON).withColumnRenamed("__final", _REASON)
    checked = checked.persist()
    ok_view = f"lead_scoring_ok_{id(checked)}"
    checked.where(F.col(_REASON).isNull()).createOrReplaceTempView(ok_view)
    gate = spam_gate and "name_spam" in types
    scored = spark.sql(_scored_select(rules, id_column=id_column, dialect="spark", gate=gate,
                                      table=ok_view))
    rejects = (checked.where(F.col(_REASON).isNotNull())
               .select(F.col(_ROW).alias("row"), F.col(id_column).alias("lead_id"),
                       F.col(_REASON).alias("reason")))
    return scored, rejects, checked


def score_spark(rules: PointsRules, input_path: Path | str, output: Path | str,
                rejects: Path | str | None, *, id_column: str, spam_gate: bool = False,
                master: str | None = None, spark: Any = None) -> ScoringSummary:
    """Score a CSV/Parquet file with Spark SQL; the points table runs as a native expression."""
    from pyspark.sql import functions as F

    chosen = spark_master(master)
    local = chosen.startswith("local") if spark is None else \
        spark.sparkContext.master.startswith("local")
    source = _check_input(Path(input_path)) if local else Path(input_path)
    spark = spark or spark_session(chosen)
    frame = _spark_read(spark, str(source), table_format(source))
    scored, rejected, checked = spark_scores(spark, frame, rules, id_column=id_column,
                                             spam_gate=spam_gate)
    try:
        stats = checked.agg(F.count(F.lit(1)).alias("rows"),
                            F.sum(F.when(F.col(_REASON).isNull(), 1).otherwise(0)).alias("ok")
                            ).collect()[0]
        rows, n_ok = int(stats["rows"]), int(stats["ok"] or 0)
        reasons = {r[0]: int(r[1]) for r in checked.where(F.col(_REASON).isNotNull())
                   .groupBy(F.split(F.col(_REASON), ":").getItem(0)).count().collect()}
        view = f"lead_scoring_checked_{id(checked)}"
        checked.createOrReplaceTempView(view)
        unseen = _count_unseen(rules, {name: [tuple(r) for r in spark.sql(q).collect()]
                                       for name, q in _unseen_sql(rules, "spark", view)})
        if n_ok == 0:
            raise _nothing_scored(source, _summary(rows, 0, 0, reasons, unseen))
        scored = scored.persist()
        sdr_ready = scored.where(F.col("sdr_ready")).count()
        _spark_write(scored, Path(output) if local else output, local=local)
        if rejects is not None:
            _spark_write(rejected.orderBy("row"), Path(rejects) if local else rejects,
                         local=local, fmt="csv")
        scored.unpersist()
    finally:
        checked.unpersist()
    return _summary(rows, n_ok, int(sdr_ready), reasons, unseen)


def _spark_write(frame: Any, target: Path | str, *, local: bool, fmt: str | None = None) -> None:
    """Write a DataFrame: one file locally (part files gathered), a directory on a cluster."""
    fmt = fmt or table_format(Path(str(target)))
    if not local:
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
        with atomic_path(target) as tmp_out:
            _gather(sorted(parts_dir.glob("part-*")), tmp_out, fmt, frame.columns)


def _gather(parts: list[Path], out: Path, fmt: str, columns: list[str]) -> None:
    """Concatenate Spark part files into one CSV (one header) or one Parquet file."""
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
