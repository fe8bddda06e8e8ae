"""The Spark scoring engine: a cluster (see :mod:`pipeline.scoring.engines`)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.exports.sql import sql_identifier
from pipeline.inputs.reader import (
    ReadOptions,
    atomic_path,
    table_format,
    write_text_atomic,
)
from pipeline.model.rules import PointsRules
from pipeline.scoring import engine_input
from pipeline.scoring.batch import REJECT_COLUMNS, ScoringSummary
from pipeline.scoring.engine_input import (
    check_columns,
    check_input,
    nothing_scored,
    readable_source,
    refuse_remote,
)
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

SPARK_MASTER_ENV = "LEAD_SCORING_SPARK_MASTER"
DEFAULT_SPARK_MASTER = "local[2]"
REASON_KINDS = ("missing id", "duplicate id", "unparseable value")


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
        refuse_remote(options)
        return _score_spark(rules, input_path, output, rejects, id_column=id_column,
                            chosen=chosen, local=False, spark=spark)
    checked_source = check_input(Path(input_path))
    with readable_source(checked_source, options) as readable:
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
        return engine_input.summary(int(c["rows"]), int(r["scored"]), int(r["sdr_ready"] or 0),
                                    {k: int(c[k] or 0) for k in REASON_KINDS},
                                    {name: int(u.get(flag) or 0)
                                     for name, flag in unseen_columns(rules).items()})

    def check() -> None:
        if summary().scored == 0:
            raise nothing_scored(shown or source, summary())

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

    Returns a UDF giving a struct of the score columns; apply it to the factor columns, in the
    table's order (the model's ``metadata["input_columns"]``; they reach the model under those
    names): ``frame.withColumn("score", udf(*[frame[c] for c in factors]))``. This runs
    Python in every executor (pandas + the model): simple, and much slower than
    :func:`spark_scores`.
    ``env_manager="local"`` uses the executors' own Python: no virtualenv is built (which
    would need network access); the executors must have ``lead-scoring`` installed.
    """
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    from pipeline.scoring.serving import INPUT_COLUMNS_KEY

    result_type = ("points long, fit long, pain long, probability double, sdr_ready boolean, "
                   "grade string, reason_codes string")
    udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type=result_type,
                                  env_manager=env_manager)
    info = mlflow.models.get_model_info(model_uri)
    if info.signature is None or info.signature.inputs is None:
        # no input schema (versions registered from issue 24 on): MLflow would name the
        # columns 0, 1, ...; one struct column reaches the model as a frame with its names,
        # those of the model's metadata, by position
        names = (info.metadata or {}).get(INPUT_COLUMNS_KEY, [])

        def named(*columns: Any) -> Any:
            if len(columns) > len(names):
                raise ValueError(f"the model reads {len(names)} columns {names}; got "
                                 f"{len(columns)}")
            return udf(F.struct(*[F.col(c).alias(n) if isinstance(c, str) else c.alias(n)
                                  for c, n in zip(columns, names, strict=False)]))

        return named
    names = info.signature.inputs.input_names()
    if "_dict_input" not in names:
        return udf

    def apply(*columns: Any) -> Any:
        # MLflow maps the columns to the signature's names by position and fills the rest
        # with nulls; the dict form's array column must get an (empty) array instead
        rest = [F.array().cast("array<string>") if name == "_dict_input" else F.lit(None)
                for name in names[len(columns):]]
        return udf(*columns, *rest)

    return apply
