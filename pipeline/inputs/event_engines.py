"""Where the event log is aggregated: DuckDB (one machine, out of core) or Spark (a cluster).

``events.engine: duckdb | spark`` chooses. Both engines run the same SQL text over the same
tables; what the two dialects spell differently is kept in :class:`Dialect` (identifier
quotes, timestamp parsing, microseconds and days between two values, a single-bit BIGINT
and the broadcast-join hint). An :class:`EventEngine` offers:

* ``events``: a view of the raw log with normalised columns ``lead_id`` (text), ``event``
  (text, ``''`` when missing) and ``timestamp`` (naive UTC; NULL when unparseable: an
  explicit offset is converted to UTC, a naive value is taken as UTC);
* :meth:`EventEngine.register` (a pandas frame as a table), :meth:`EventEngine.create` (a
  query kept as a table: a DuckDB temp table, a cached Spark view) and
  :meth:`EventEngine.fetch` (a query as a pandas frame).

:func:`run_event_sql` runs one SQL string over the ``events`` view (and any extra frames) on
the chosen engine. SQL meant for both engines sticks to what both read the same way:
``count(*) FILTER (WHERE ...)``, ``CASE``, ``COALESCE``, ``pow``, ``CAST(x AS DOUBLE)``
before dividing (a literal like ``7.0`` is a DECIMAL in both, and Spark keeps decimal
division at 6 digits), ``CAST(ts AS DATE)``, ``count(DISTINCT CASE WHEN ... END)``; and it
takes time differences from :meth:`Dialect.micros_between`.

Spark runs on ``master`` (``events.master`` / ``--master``), else
``$LEAD_SCORING_SPARK_MASTER``, else ``local[2]``; the session is the active one when there is
one (:func:`pipeline.scoring.spark_engine.spark_session`).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import UserError

ENGINES = ("duckdb", "spark")
EVENT_COLUMNS = ("lead_id", "event", "timestamp")
_THREADS = 2
_LOCAL_ROWS = 10_000  # larger frames reach a local Spark as Parquet files


def sql_literal(text: str) -> str:
    """A SQL string literal (quotes doubled: both engines read ``'it''s'``)."""
    return "'" + str(text).replace("'", "''") + "'"


@dataclass(frozen=True)
class Dialect:
    """What DuckDB and Spark SQL spell differently."""

    name: str

    def ident(self, name: str) -> str:
        """A quoted identifier."""
        if self.name == "spark":
            return "`" + name.replace("`", "``") + "`"
        return '"' + name.replace('"', '""') + '"'

    def timestamp(self, expr: str) -> str:
        """``expr`` parsed to a naive UTC timestamp; unparseable -> NULL (never an error)."""
        if self.name == "spark":
            return f"try_cast({expr} AS TIMESTAMP)"  # session time zone: UTC
        return f"TRY_CAST(TRY_CAST({expr} AS TIMESTAMPTZ) AS TIMESTAMP)"

    def micros_between(self, start: str, end: str) -> str:
        """Whole microseconds from ``start`` to ``end`` (BIGINT)."""
        if self.name == "spark":
            return f"(unix_micros({end}) - unix_micros({start}))"
        return f"date_diff('microsecond', {start}, {end})"

    def days_between(self, start: str, end: str) -> str:
        """Whole days from the DATE ``start`` to the DATE ``end`` (an integer)."""
        if self.name == "spark":
            return f"datediff({end}, {start})"
        return f"date_diff('day', {start}, {end})"

    def bit(self, position: str) -> str:
        """The BIGINT with only bit ``position`` (0..62) set."""
        if self.name == "spark":
            return f"shiftleft(CAST(1 AS BIGINT), {position})"
        return f"(CAST(1 AS BIGINT) << {position})"

    def broadcast(self, alias: str) -> str:
        """A hint that the relation ``alias`` is small enough to send to every worker (Spark
        then joins without shuffling the big side); nothing for DuckDB."""
        return f"/*+ BROADCAST({alias}) */" if self.name == "spark" else ""


class EventEngine:
    """One engine's session: tables in, queries out (see the module docstring)."""

    dialect: Dialect

    def register(self, name: str, frame: pd.DataFrame) -> None:
        raise NotImplementedError

    def register_events(self, events: pd.DataFrame | str | Path) -> None:
        """The raw log as the normalised view ``events`` (after checking its columns)."""
        raise NotImplementedError

    def create(self, name: str, select_sql: str) -> None:
        raise NotImplementedError

    def fetch(self, sql: str) -> pd.DataFrame:
        raise NotImplementedError

    def fetchone(self, sql: str) -> tuple:
        frame = self.fetch(sql)
        return tuple(frame.iloc[0]) if len(frame) else ()

    def _events_view(self, source: str, types: Mapping[str, str]) -> str:
        missing = [c for c in EVENT_COLUMNS if c not in types]
        if missing:
            raise UserError(f"events: missing column(s) {missing}; expected "
                            f"{list(EVENT_COLUMNS)}, got {sorted(types)}")
        ts_type = types["timestamp"].upper()
        if not ts_type.startswith(("VARCHAR", "STRING", "TIMESTAMP", "DATE")):
            raise UserError(f"events: column 'timestamp' must hold date-times or ISO strings, "
                            f"got type {types['timestamp']}")
        q = self.dialect.ident
        text = "STRING" if self.dialect.name == "spark" else "VARCHAR"
        return (f"SELECT CAST({q('lead_id')} AS {text}) AS lead_id, "
                f"COALESCE(CAST({q('event')} AS {text}), '') AS event, "
                f"{self.dialect.timestamp(q('timestamp'))} AS {q('timestamp')} FROM {source}")


def _arrow_column(series: pd.Series) -> Any:
    """A non-date column as Arrow: its own type (missing values null), text when mixed."""
    import pyarrow as pa

    try:  # vectorised; a column of Python objects of one type converts the same way
        return pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    cells = series.astype(object).where(series.notna(), None).tolist()
    try:
        return pa.array(cells)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: as text
        return pa.array([None if v is None else str(v) for v in cells])


def _file_kind(events: str | Path) -> tuple[Path, str]:
    path = Path(events)
    has_glob = any(ch in str(path) for ch in "*?[")
    remote = "://" in str(events)
    if not (has_glob or remote) and not path.exists():
        raise UserError(f"events: file not found: {path}")
    suffixes = "".join(path.suffixes).lower()
    if suffixes.endswith((".parquet", ".pq")) or (path.is_dir() and not has_glob):
        return path, "parquet"
    if suffixes.endswith((".csv", ".csv.gz", ".tsv", ".txt")):
        return path, "csv"
    raise UserError(f"events: unsupported file type {path.name!r}; use .csv or .parquet")


def _not_a_source(events: Any) -> UserError:
    return UserError(f"events: expected a DataFrame or a path to a CSV/Parquet file, "
                     f"got {type(events).__name__}")


class DuckDBEngine(EventEngine):
    """DuckDB on this machine: 2 threads, ``memory_limit``, spilling to a temporary folder."""

    def __init__(self, con: Any) -> None:
        self.dialect = Dialect("duckdb")
        self.con = con

    def register(self, name: str, frame: pd.DataFrame) -> None:
        self.con.register(f"{name}__frame", frame)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {self.dialect.ident(name)} AS "
                         f"SELECT * FROM {self.dialect.ident(name + '__frame')}")
        self.con.unregister(f"{name}__frame")

    def register_events(self, events: pd.DataFrame | str | Path) -> None:
        if isinstance(events, pd.DataFrame):
            self.con.register("events_raw", events)
            source = "events_raw"
        elif isinstance(events, str | Path):
            path, kind = _file_kind(events)
            where = sql_literal(str(path))
            source = (f"read_parquet({where})" if kind == "parquet" else
                      f"read_csv({where}, header = true, all_varchar = true)")
        else:
            raise _not_a_source(events)
        described = self.con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        types = {str(row[0]): str(row[1]) for row in described}
        view = self._events_view(source, types)
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW events AS {view}")

    def create(self, name: str, select_sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {self.dialect.ident(name)} AS "
                         f"{select_sql}")

    def fetch(self, sql: str) -> pd.DataFrame:
        return self.con.execute(sql).df()

    def fetchone(self, sql: str) -> tuple:
        return tuple(self.con.execute(sql).fetchone() or ())


class SparkEngine(EventEngine):
    """Spark SQL on ``master``: frames become temporary views (of local data), created tables
    are cached (``CACHE TABLE``: computed once, read by the queries after)."""

    def __init__(self, spark: Any) -> None:
        self.dialect = Dialect("spark")
        self.spark = spark
        self.cached: list[str] = []
        self.views: list[str] = []
        self.folder: str | None = None

    def register(self, name: str, frame: pd.DataFrame) -> None:
        """``frame`` as a view; date-times travel as epoch microseconds (no time-zone guess)."""
        import pyarrow as pa

        columns, select = {}, []
        for col in frame.columns:
            series = frame[col]
            if pd.api.types.is_datetime64_any_dtype(series):
                stamps = series.dt.tz_convert("UTC").dt.tz_localize(None) \
                    if getattr(series.dt, "tz", None) is not None else series
                columns[col] = pa.array(stamps.astype("datetime64[us]").to_numpy()
                                        .astype("int64"), pa.int64(),
                                        mask=stamps.isna().to_numpy())
                select.append(f"timestamp_micros({self.dialect.ident(col)}) AS "
                              f"{self.dialect.ident(col)}")
            else:
                values = _arrow_column(series)
                columns[col] = values.cast(pa.string()) if values.type == pa.null() else values
                select.append(self.dialect.ident(col))
        frame = self._spark_frame(name, pa.table(columns))
        frame.selectExpr(*(select or ["*"])).createOrReplaceTempView(name)
        self.views.append(name)

    def _spark_frame(self, name: str, table: Any) -> Any:
        """``table`` (pyarrow) as a Spark DataFrame. On a local master a large table goes
        through a Parquet file in a temporary folder: ``createDataFrame`` would make it a
        local relation that every query of it deserialises again (1M snapshot rows: seconds
        per use instead of a fraction of one)."""
        if table.num_rows < _LOCAL_ROWS or not self.spark.sparkContext.master.startswith("local"):
            return self.spark.createDataFrame(table)
        import pyarrow.parquet as pq

        if self.folder is None:
            self.folder = tempfile.mkdtemp(prefix="lead-events-spark-")
        path = Path(self.folder) / f"{name}-{len(self.views)}.parquet"
        pq.write_table(table, path)
        return self.spark.read.parquet(str(path))

    def register_events(self, events: pd.DataFrame | str | Path) -> None:
        if isinstance(events, pd.DataFrame):
            self.register("events_input", events)
            frame = self.spark.table("events_input")
        elif isinstance(events, str | Path):
            path, kind = _file_kind(events)
            reader = self.spark.read
            frame = (reader.parquet(str(events)) if kind == "parquet" else
                     reader.option("header", True).option("inferSchema", False)
                     .option("multiLine", True).option("escape", '"').csv(str(events)))
        else:
            raise _not_a_source(events)
        frame.createOrReplaceTempView("events_raw")
        self.views.append("events_raw")
        types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
        self.spark.sql(self._events_view("events_raw", types)).createOrReplaceTempView("events")
        self.views.append("events")

    def create(self, name: str, select_sql: str) -> None:
        self.spark.sql(f"CACHE TABLE {self.dialect.ident(name)} AS {select_sql}")
        self.cached.append(name)

    def fetch(self, sql: str) -> pd.DataFrame:
        frame = self.spark.sql(sql)
        out = frame.toArrow().to_pandas() if hasattr(frame, "toArrow") else frame.toPandas()
        for col in out.columns:  # Spark TIMESTAMP comes out UTC-aware: naive UTC as DuckDB
            if isinstance(out[col].dtype, pd.DatetimeTZDtype):
                out[col] = out[col].dt.tz_convert("UTC").dt.tz_localize(None)
        return out

    def close(self) -> None:
        for name in reversed(self.cached):
            self.spark.sql(f"UNCACHE TABLE IF EXISTS {self.dialect.ident(name)}")
        for name in [*self.cached, *self.views]:
            self.spark.catalog.dropTempView(name)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def check_engine(engine: str) -> str:
    """``engine`` when it is one of :data:`ENGINES`, else a one-line :class:`UserError`."""
    if engine not in ENGINES:
        raise UserError(f"events.engine: must be one of {', '.join(ENGINES)}, got {engine!r}")
    return engine


@contextlib.contextmanager
def open_engine(engine: str = "duckdb", *, master: str | None = None,
                memory_limit: str = "4GB") -> Iterator[EventEngine]:
    """An :class:`EventEngine` for the duration of a ``with`` block."""
    check_engine(engine)
    if engine == "spark":
        try:
            from pipeline.scoring.spark_engine import spark_session

            spark = spark_session(master, app_name="lead-scoring-events")
        except ImportError:
            raise UserError("events.engine spark needs pyspark",
                            hint="pip install 'lead-scoring[spark]' (and Java 17+)") from None
        spark_engine = SparkEngine(spark)
        try:
            yield spark_engine
        finally:
            spark_engine.close()
        return
    import duckdb

    with tempfile.TemporaryDirectory(prefix="lead-events-") as spill, duckdb.connect() as con:
        con.execute(f"SET threads TO {_THREADS}")
        con.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
        con.execute(f"SET temp_directory = {sql_literal(spill)}")
        con.execute("SET preserve_insertion_order = false")
        con.execute("SET TimeZone = 'UTC'")
        yield DuckDBEngine(con)


def run_event_sql(sql: str, events: pd.DataFrame | str | Path, *, engine: str = "duckdb",
                  master: str | None = None, tables: Mapping[str, pd.DataFrame] | None = None
                  ) -> pd.DataFrame:
    """The result of ``sql`` over the view ``events`` (and ``tables``) on ``engine``.

    ``events`` is a DataFrame or a CSV / Parquet path (Spark: any path it reads); the view
    has ``lead_id``, ``event`` and a parsed ``timestamp`` (see the module docstring for SQL
    both engines read the same way). Rows come in the order the query's ``ORDER BY`` gives.
    """
    with open_engine(engine, master=master) as eng:
        for name, frame in (tables or {}).items():
            eng.register(name, frame)
        eng.register_events(events)
        return eng.fetch(sql)
