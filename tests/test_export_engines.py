"""The SQL export on real engines: a throwaway PostgreSQL server and Spark SQL in local mode.

Each engine scores the same nasty points table over the same leads and must agree with
``score_record`` on every lead (fit, pain, points, sdr_ready exactly; probability within
1e-12). Skipped, with the reason, when the engine is not installed.
"""

from __future__ import annotations

import glob
import math
import os
import pwd
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from pipeline import exports as ex
from pipeline.exports import verify as vf
from pipeline.model.rules import FactorRules, PointsRules

pytestmark = pytest.mark.filterwarnings(
    # pyspark 4 warns on import that it does not fully support pandas 3 (we pass no pandas)
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)

LEVELS = [
    "x'; DROP TABLE leads; --",
    "it's",
    "it''s",
    "back\\slash",
    "\\'",
    '"quoted"',
    "100%",
    "/* c */ -- d",
    "line\nbreak",
    " padded ",
    "日本語 😀",
    "e\u0301",
    "1",
    "NULL",
    "y" * 220,
]
EDGES = [-2.5, 1e-05, 0.1, 0.30000000000000004, 1 / 3, 7.0, 1e15 + 0.5]


def nasty_rules() -> PointsRules:
    """Quotes, backslashes, comment markers, unicode, a long level, awkward edges, a cap."""
    return PointsRules(
        factors=[
            FactorRules(
                "lead source", "FIT", "categorical",
                levels={lv: (i * 7) % 23 - 11 for i, lv in enumerate(LEVELS)},
                missing_points=-4, unseen_points=2,
            ),
            FactorRules(
                'say "hi"', "FIT", "categorical", levels={"a'b": 6, "A'B": -6},
                missing_points=1, unseen_points=-1,
            ),
            FactorRules(
                "visits (30d)", "PAIN", "numeric", edges=EDGES,
                bin_points=[-3, 0, 2, 4, 8, 16, 32, 64], missing_points=-7,
            ),
            FactorRules(
                "tick`col", "PAIN", "numeric", edges=[0.0], bin_points=[0, 5], missing_points=3,
            ),
        ],
        missing_values=["NA", "unknown"],
        sdr_threshold=20,
        prob_intercept=-2.0,
        prob_slope=0.07,
        score_min=-10,
        score_max=90,
    )


def nasty_leads(n: int = 400, seed: int = 7) -> pd.DataFrame:
    """Seeded raw leads: levels, unseen text, missing markers, values on and next to edges."""
    rng = random.Random(seed)
    missing = [None, math.nan, "", "NA", "unknown"]
    near = [f(e) for e in EDGES for f in (lambda e: e, lambda e: math.nextafter(e, math.inf),
                                          lambda e: math.nextafter(e, -math.inf))]

    def category(levels: list[str]) -> object:
        pick = rng.random()
        if pick < 0.6:
            return rng.choice(levels)
        if pick < 0.8:
            return rng.choice(["Other", "it", "a'B", "1.0", " ", "nan", "\\"])
        return rng.choice(missing)

    def number() -> object:
        pick = rng.random()
        if pick < 0.6:
            return rng.choice(near)
        if pick < 0.75:
            return rng.choice([math.inf, -math.inf, 0.0, -0.0, rng.uniform(-10, 10)])
        if pick < 0.85:
            return repr(rng.choice(near))  # a number as text
        return rng.choice(missing)

    return pd.DataFrame(
        {
            "lead source": pd.Series([category(LEVELS) for _ in range(n)], dtype=object),
            'say "hi"': pd.Series([category(["a'b", "A'B"]) for _ in range(n)], dtype=object),
            "visits (30d)": pd.Series([number() for _ in range(n)], dtype=object),
            "tick`col": pd.Series(
                [rng.choice([-1.0, 0.0, 0.5, math.nan]) for _ in range(n)], dtype="float64"
            ),
        }
    )


def test_nasty_case_is_covered_by_duckdb_first():
    """The same data on DuckDB (always available): guards the fixtures below."""
    rules, df = nasty_rules(), nasty_leads()
    for result in vf.verify_exports(rules, df, formats=("sql", "python", "pmml")):
        assert result.ok, result.examples
    reference = vf.score_reference(rules, df)
    assert reference["points"].nunique() > 20  # the leads exercise many rules
    assert {-10, 90} & set(reference["points"])  # and the cap


# ------------------------------------------------------------------------------ PostgreSQL


def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, object]]:
    """A throwaway server: initdb into a temp dir, unix socket in that dir only, no TCP."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server not installed: no /usr/lib/postgresql/*/bin/initdb "
            "(Debian: apt-get install postgresql)"
        )
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="lead-scoring-pg-"))
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        # /usr/sbin is not on every PATH (cron, env -i): look there too
        runuser = shutil.which("runuser") or shutil.which(
            "runuser", path=os.pathsep.join(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]))
        if runuser is None:
            shutil.rmtree(root)
            pytest.skip("running as root and runuser (util-linux) is missing")
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = [runuser, "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    port = 54329

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    started = False
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--locale=C", "--no-sync")
        options = (
            f"-k {root} -p {port} -c listen_addresses='' -c fsync=off "
            "-c shared_buffers=16MB -c max_connections=10"
        )
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
            "-o", options, "start")
        started = True
        yield {"host": str(root), "port": port, "user": "postgres", "dbname": "postgres"}
    finally:
        if started:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


_PG_TYPES = {"bigint": "BIGINT", "text": "TEXT", "double": "DOUBLE PRECISION"}


@pytest.mark.slow
def test_sql_export_on_postgres(postgres):
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
    rules, df = nasty_rules(), nasty_leads()
    cols = vf.sql_input_columns(rules, df)
    names = [ex.sql_identifier(c, dialect="postgres") for c in cols]
    ddl = ", ".join(f"{n} {_PG_TYPES[t]}" for n, (t, _) in zip(names, cols.values(), strict=True))
    rows = list(zip(*(values for _, values in cols.values()), strict=True))
    with psycopg.connect(**postgres, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA crm")
        conn.execute(f"CREATE TABLE crm.leads ({ddl})")
        with conn.cursor() as cur:
            placeholders = ", ".join(["%s"] * len(names))
            cur.executemany(f"INSERT INTO crm.leads VALUES ({placeholders})", rows)
        got = conn.execute(ex.export_sql(rules, dialect="postgres", table="crm.leads")).fetchall()
        # the injection level did nothing but score
        assert conn.execute("SELECT count(*) FROM crm.leads").fetchone() == (len(df),)
    result = vf.compare_scores(
        vf.score_reference(rules, df), vf.sql_rows_to_frame(got, df.index), fmt="postgres",
        inputs=vf.lead_records(rules, df),
    )
    assert result.ok, result.examples.to_string()


# ------------------------------------------------------------------------------ Spark


@pytest.mark.slow
def test_sql_export_on_spark(spark):
    from pyspark.sql import types as T

    rules, df = nasty_rules(), nasty_leads()
    cols = vf.sql_input_columns(rules, df)
    spark_types = {"bigint": T.LongType(), "text": T.StringType(), "double": T.DoubleType()}
    schema = T.StructType(
        [T.StructField(name, spark_types[t], nullable=True) for name, (t, _) in cols.items()]
    )
    rows = list(zip(*(values for _, values in cols.values()), strict=True))
    spark.createDataFrame(rows, schema).createOrReplaceTempView("leads_export_test")
    assert spark.conf.get("spark.sql.ansi.enabled") in ("true", "false")
    sql = ex.export_sql(rules, dialect="spark", table="leads_export_test")
    got = [tuple(r) for r in spark.sql(sql).collect()]
    result = vf.compare_scores(
        vf.score_reference(rules, df), vf.sql_rows_to_frame(got, df.index), fmt="spark",
        inputs=vf.lead_records(rules, df),
    )
    assert result.ok, result.examples.to_string()


@pytest.mark.slow
def test_spark_string_literals_round_trip(spark):
    """Every nasty level survives Spark's literal parser unchanged (backslash escapes and all)."""
    select = ", ".join(
        f"{ex.sql_string(lv, dialect='spark')} AS c{i}" for i, lv in enumerate(LEVELS)
    )
    (row,) = spark.sql(f"SELECT {select}").collect()
    assert list(row) == LEVELS
