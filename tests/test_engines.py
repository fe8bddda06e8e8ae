"""Every scoring engine (pandas, DuckDB, Spark) scores the same leads with the same points.

The demo points table is trained once per module (through the CLI); its per-lead table
(derived signals and event features already added) is written as CSV and Parquet, and each
engine scores both. A dirty copy (missing, duplicate and unparseable values, padding, missing
tokens) checks that the rejects agree too. Spark tests share one local session and are
skipped, with the reason, when it cannot start.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import exports as cli_exports
from pipeline.cli import main as cli
from pipeline.config import load_config
from pipeline.errors import NothingScoredError, UserError
from pipeline.exports.sql import export_sql, sql_factor_points, sql_score_totals
from pipeline.model.rules import FactorRules, PointsRules
from pipeline.scoring import duckdb_engine, engine_input, engines, spark_engine
from pipeline.scoring import sql as engine_sql

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings(
    # pyspark 4 warns on import that it does not fully support pandas 3
    "ignore:PySpark does not yet fully support pandas:FutureWarning",
)


def _config(base: str, tmp: Path, **data: str) -> Path:
    settings = yaml.safe_load((REPO / "configs" / f"{base}.yaml").read_text())
    settings["root"] = str(REPO)
    settings["data"].update(data)
    settings.setdefault("registry", {})
    settings["registry"]["tracking_uri"] = f"sqlite:///{tmp / 'mlflow.db'}"
    settings["registry"]["artifact_location"] = str(tmp / "artifacts")
    path = tmp / f"{base}.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def _train(config: Path, out: Path) -> PointsRules:
    result = CliRunner().invoke(cli.app, ["train", "--config", str(config), "--no-score",
                                          "--out", str(out)])
    assert result.exit_code == 0, result.output
    return PointsRules.from_json((out / "points_rules.json").read_text())


@pytest.fixture(scope="module")
def demo_model(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """(config, rules, folder with leads.csv / leads.parquet holding every factor column)."""
    tmp = tmp_path_factory.mktemp("engines_demo")
    config = _config("demo", tmp, leads=str(demo_dir / "leads.csv"),
                     events=str(demo_dir / "events.csv"))
    rules = _train(config, tmp / "out")
    cfg = load_config(config)
    frame = cli_exports.feature_frame_for_rules(cfg, rules, None)
    keep = engine_input.required_columns(rules, cfg.data.id_column)
    frame = frame[keep + (["name_spam"] if "name_spam" in frame and "name_spam" not in keep
                          else [])]
    frame.to_parquet(tmp / "leads.parquet", index=False)
    frame.to_csv(tmp / "leads.csv", index=False)
    return cfg, rules, tmp


def _run(engine: str, cfg, rules, source: Path, out_dir: Path, spark=None):
    output = out_dir / f"{engine}_{source.suffix[1:]}_scored.csv"
    rejects = out_dir / f"{engine}_{source.suffix[1:]}_rejects.csv"
    if engine == "spark":
        summary = spark_engine.score_spark(rules, source, output, rejects,
                                      id_column=cfg.data.id_column, spark=spark)
    else:
        summary = engines.score_with_engine(engine, cfg, rules, source, output, rejects)
    scored = pd.read_csv(output, dtype={cfg.data.id_column: str}, keep_default_na=False)
    scored = scored.set_index(cfg.data.id_column).sort_index()
    rejected = pd.read_csv(rejects, dtype={"lead_id": str}).sort_values("row")
    return summary, scored, rejected


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert a.index.tolist() == b.index.tolist()
    for column in ("points", "fit", "pain"):
        assert a[column].astype(int).tolist() == b[column].astype(int).tolist(), column
    assert a["sdr_ready"].astype(str).str.lower().tolist() == \
        b["sdr_ready"].astype(str).str.lower().tolist()
    np.testing.assert_allclose(a["probability"], b["probability"], rtol=1e-12)
    if "grade" in a or "grade" in b:
        assert a["grade"].tolist() == b["grade"].tolist()


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_duckdb_scores_demo_leads_exactly_as_pandas(demo_model, tmp_path, suffix):
    cfg, rules, folder = demo_model
    source = folder / f"leads.{suffix}"
    s_pd, pandas_scores, _ = _run("pandas", cfg, rules, source, tmp_path)
    s_db, duck_scores, _ = _run("duckdb", cfg, rules, source, tmp_path)
    assert s_pd.rows == s_db.rows == 3000 and s_db.scored == 3000
    assert s_db.sdr_ready == s_pd.sdr_ready
    _assert_same(pandas_scores, duck_scores)


def test_spam_gate_of_the_points_table_holds_in_pandas_duckdb_and_the_exports(demo_model,
                                                                               tmp_path):
    """The demo table with ``spam_gate: true``: pandas and DuckDB agree lead by lead, no spam
    lead is SDR-ready, the gate takes away the spam leads' readiness and nothing else, and the
    SQL, PMML and Python exports give the same sdr_ready (verify-export) on the same table."""
    from pipeline.exports.verify import verify_exports

    cfg, rules, _ = demo_model
    gated = replace(rules, spam_gate=True)
    frame = cli_exports.feature_frame_for_rules(cfg, gated, None)
    source = tmp_path / "gated.parquet"
    frame[engine_input.required_columns(gated, cfg.data.id_column)].to_parquet(source, index=False)
    s_pd, pandas_scores, _ = _run("pandas", cfg, gated, source, tmp_path)
    s_db, duck_scores, _ = _run("duckdb", cfg, gated, source, tmp_path)
    _assert_same(pandas_scores, duck_scores)
    assert s_pd.sdr_ready == s_db.sdr_ready
    spam = frame.set_index(cfg.data.id_column)["name_spam"].eq("yes")
    assert spam.any()
    ready = pandas_scores["sdr_ready"].astype(str).str.lower().eq("true")
    assert not (ready & spam.reindex(ready.index)).any()
    (tmp_path / "plain").mkdir()
    s_plain, plain_scores, _ = _run("pandas", cfg, rules, source, tmp_path / "plain")
    plain_ready = plain_scores["sdr_ready"].astype(str).str.lower().eq("true")
    # the gate takes away exactly the spam leads' readiness, and nothing else
    assert (ready == (plain_ready & ~spam.reindex(ready.index))).all()
    assert s_plain.sdr_ready - s_pd.sdr_ready == int((plain_ready & spam).sum())
    for result in verify_exports(gated, frame):
        assert result.ok, (result.format, result.examples)


def _dirty(folder: Path, rules: PointsRules, id_column: str) -> Path:
    """The demo table as text with the cases a real export has."""
    frame = pd.read_csv(folder / "leads.csv", dtype=str, keep_default_na=False).head(400)
    numeric = [f.name for f in rules.factors if f.kind == "numeric"]
    categorical = [f.name for f in rules.factors if f.kind == "categorical"]
    frame.loc[3, id_column] = ""
    frame.loc[5, id_column] = frame.loc[4, id_column]
    frame.loc[6, id_column] = "  "
    if numeric:
        frame.loc[7, numeric[0]] = "lots"
        frame.loc[8, numeric[0]] = "1_000"
        frame.loc[9, numeric[0]] = " 2 "
        frame.loc[10, numeric[-1]] = "nan"
        frame.loc[11, numeric[0]] = ""
    if categorical:
        frame.loc[12, categorical[0]] = "  " + frame.loc[12, categorical[0]] + "\t"
        frame.loc[13, categorical[0]] = "never seen before"
        frame.loc[14, categorical[-1]] = (rules.missing_values or [""])[0]
    path = folder / "dirty.csv"
    frame.to_csv(path, index=False)
    return path


# (1-based row, reason) of the rows _dirty() breaks
EXPECTED_REJECTS = [(4, "missing id"), (6, "duplicate id"), (7, "missing id"),
                    (8, "unparseable value"), (9, "unparseable value"), (11, "unparseable value")]


def _check_rejects(summary, scores, rejects, pandas_scores) -> None:
    assert summary.rows == 400 and summary.scored + summary.rejected == 400
    assert list(zip(rejects["row"], [r.split(":")[0] for r in rejects["reason"]],
                    strict=True)) == EXPECTED_REJECTS
    assert summary.reasons == {"missing id": 2, "duplicate id": 1, "unparseable value": 3}
    # the pandas engine (predict.score_batch) turns a missing id into the text "nan" and scores
    # it; compare the leads both score
    pandas_scores = pandas_scores.drop(index=["nan"], errors="ignore")
    assert len(scores) == len(pandas_scores) == 394
    _assert_same(pandas_scores, scores)


def test_duckdb_rejects_missing_duplicate_and_unparseable_rows(demo_model, tmp_path):
    cfg, rules, folder = demo_model
    source = _dirty(folder, rules, cfg.data.id_column)
    _, pandas_scores, _ = _run("pandas", cfg, rules, source, tmp_path)
    _check_rejects(*_run("duckdb", cfg, rules, source, tmp_path), pandas_scores)


def test_sql_engines_name_the_factor_columns_they_cannot_derive(demo_model, demo_dir, tmp_path):
    cfg, rules, _ = demo_model
    raw = pd.read_csv(demo_dir / "leads.csv", dtype=str)
    absent = [c for c in rules.factor_names() if c not in raw.columns]
    assert absent, "the demo table uses derived signals or event features"
    with pytest.raises(UserError, match=absent[0]) as info:
        engines.score_with_engine("duckdb", cfg, rules, demo_dir / "leads.csv",
                                  tmp_path / "out.csv", None)
    assert "--engine pandas" in info.value.hint
    with pytest.raises(UserError, match="unknown engine"):
        engines.score_with_engine("polars", cfg, rules, demo_dir / "leads.csv",
                                  tmp_path / "out.csv", None)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_spark_scores_demo_leads_exactly_as_pandas(demo_model, spark, tmp_path, suffix):
    cfg, rules, folder = demo_model
    source = folder / f"leads.{suffix}"
    s_pd, pandas_scores, _ = _run("pandas", cfg, rules, source, tmp_path)
    s_sp, spark_scores, _ = _run("spark", cfg, rules, source, tmp_path, spark=spark)
    assert (s_sp.rows, s_sp.scored, s_sp.sdr_ready) == (s_pd.rows, s_pd.scored, s_pd.sdr_ready)
    _assert_same(pandas_scores, spark_scores)


@pytest.mark.slow
def test_spark_rejects_missing_duplicate_and_unparseable_rows(demo_model, spark, tmp_path):
    cfg, rules, folder = demo_model
    source = _dirty(folder, rules, cfg.data.id_column)
    _, pandas_scores, _ = _run("pandas", cfg, rules, source, tmp_path)
    _check_rejects(*_run("spark", cfg, rules, source, tmp_path, spark=spark), pandas_scores)


@pytest.mark.slow
def test_spark_pyfunc_udf_gives_the_points_of_the_native_expression(demo_model, spark,
                                                                    tmp_path):
    import mlflow

    cfg, rules, folder = demo_model
    mlflow.set_tracking_uri(cfg.registry.tracking_uri)
    frame = pd.read_parquet(folder / "leads.parquet").head(50)
    factors = rules.factor_names()
    numeric = [f.name for f in rules.factors if f.kind == "numeric"]
    frame[numeric] = frame[numeric].astype(float)  # the model's signature says double
    sdf = spark.createDataFrame(frame.astype(object).where(frame.notna(), None))
    udf = spark_engine.spark_pyfunc_udf(spark, f"models:/{cfg.model_name}@challenger")
    got = (sdf.withColumn("s", udf(*[sdf[c] for c in factors]))
           .select(cfg.data.id_column, "s.points").toPandas())
    native, _, checked = spark_engine.spark_scores(spark, sdf, rules, id_column=cfg.data.id_column)
    want = native.select(cfg.data.id_column, "points").toPandas()
    checked.unpersist()
    merged = got.merge(want, on=cfg.data.id_column, suffixes=("_udf", "_sql"))
    assert len(merged) == 50
    assert merged["points_udf"].tolist() == merged["points_sql"].tolist()


@pytest.mark.slow
def test_all_engines_agree_on_the_real_data(shared_data, spark, tmp_path):
    config = _config("x_education", tmp_path, leads=str(shared_data))
    rules = _train(config, tmp_path / "out")
    cfg = load_config(config)
    results = {e: _run(e, cfg, rules, shared_data, tmp_path, spark=spark)
               for e in ("pandas", "duckdb", "spark")}
    base_summary, base, base_rejects = results["pandas"]
    assert base_summary.scored > 9000
    for engine in ("duckdb", "spark"):
        summary, scores, rejects = results[engine]
        assert (summary.rows, summary.scored, summary.rejected) == \
            (base_summary.rows, base_summary.scored, base_summary.rejected), engine
        assert rejects["row"].tolist() == base_rejects["row"].tolist(), engine
        _assert_same(base, scores)


@pytest.mark.slow
def test_bench_quick_runs_end_to_end(tmp_path):
    """``python -m bench.run --quick`` measures every record and writes valid results."""
    import json
    import subprocess

    done = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--out", str(tmp_path),
                           "--tmp", str(tmp_path / "scratch")], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    records = json.loads((tmp_path / "results.json").read_text())
    from bench.run import REQUIRED

    assert set(REQUIRED) <= {r["name"] for r in records}
    # the bare fit at the pipeline's tolerance, and at scikit-learn's defaults beside it, with
    # how many iterations each took and how far the second stops from the first's optimum
    bare = {r["name"]: r for r in records if r["name"].startswith("train_sklearn_bare")}
    assert set(bare) == {"train_sklearn_bare", "train_sklearn_bare_default"}
    assert all(r["n_iter"] >= 1 for r in bare.values())
    assert bare["train_sklearn_bare_default"]["max_coef_error"] >= 0
    assert "default solver" in (tmp_path / "results.md").read_text()
    for r in records:
        assert set(r) >= {"name", "n_rows", "median_s", "rows_per_s", "peak_rss_mb"}
        assert r["median_s"] is None or (r["median_s"] > 0 and r["rows_per_s"] > 0)
    assert not (tmp_path / "scratch").exists()
    assert "## Targets" in (tmp_path / "results.md").read_text()


# ------------------------------------------------------------------------------ messy input
#
# A hand-made table with every cleaning case the SQL engines handle per distinct value or
# through a fast path: padded text (ASCII and Unicode whitespace), missing tokens (one of them
# also a level), a level that is padded itself, numbers in a text column, a non-text
# categorical column (canonical text: -0.0 -> '0', NaN -> 'nan', infinities, 1e20), numeric
# text that needs stripping or is not a number, duplicates (padded, of a rejected row),
# unseen levels and the spam gate. The expected points of each factor are written out.

MESSY_RULES = PointsRules(
    factors=[
        FactorRules("source", "FIT", "categorical",
                    levels={"Web": 5, "Ads": -2, " padded ": 7, "NA": 9, "1": 4},
                    missing_points=1, unseen_points=-3),
        FactorRules("size", "FIT", "categorical", levels={"1": 2, "2.5": 3, "0": 6, "-1": 10},
                    missing_points=-1, unseen_points=8),
        FactorRules("visits", "PAIN", "numeric", edges=[0.0, 2.0, 5.0],
                    bin_points=[0, 1, 2, 3], missing_points=-4, special_points={"3": 7}),
        # -1 is a missing token, but its text here is "-1.0": the sentinel, not missing
        FactorRules("score", "PAIN", "numeric", edges=[0.5], bin_points=[10, 20],
                    missing_points=30, special_points={"-1": 25}),
    ],
    missing_values=["NA", "unknown", "-1"], sdr_threshold=20, prob_intercept=-1.0,
    prob_slope=0.05, grades=[{"grade": "A", "min_points": 30}, {"grade": "B", "min_points": 0},
                             {"grade": "C", "min_points": -100}])

NAN, INF = float("nan"), float("inf")
# lead_id, source, size (a DOUBLE column; its text in the CSV), visits (text), score (DOUBLE;
# its text in the CSV), name_spam -> (source, size, visits, score) points or a reject reason
MESSY = [
    ("a1", "Web", (1.0, "1"), "3", (0.7, "0.7"), "yes", (5, 2, 7, 20)),  # visits 3: special
    (" a2\t", "  Web\u3000", (2.5, "2.5"), " 2 ", (0.5, "0.5"), " yes ", (5, 3, 1, 10)),
    ("a3", "NA", (-0.0, "0"), "-1", (NAN, ""), " yes", (1, 6, -4, 30)),
    ("a4", " padded ", (NAN, "nan"), "1_000", (1.0, "1"), "no", "unparseable value"),
    ("a1", "Web", (1.0, "1"), "1", (1.0, "1"), "no", "duplicate id"),
    ("", "Web", (1.0, "1"), "1", (1.0, "1"), "no", "missing id"),
    ("unknown", "Web", (1.0, "1"), "1", (1.0, "1"), "no", "missing id"),
    ("a8", "1", (-1.0, "-1"), "inf", (-1.0, "-1.0"), "no", (4, -1, 3, 25)),  # score -1: special
    ("a9", "zzz", (1e20, "1e20"), "+4", (INF, "inf"), None, (-3, 8, 2, 20)),
    (" a2", "Web", (1.0, "1"), "1", (1.0, "1"), "no", "duplicate id"),
    ("a11", None, (None, ""), None, (None, ""), None, (1, -1, -4, 30)),
    ("a12", "", (INF, "inf"), ".5", (0.5000000000000001, "0.5000000000000001"), "no",
     (1, 8, 1, 20)),
    ("a13", "unknown", (0.0, "0"), "nan", (1.0, "1"), "no", "unparseable value"),
    ("a13", "Web", (1.0, "1"), "1", (1.0, "1"), "no", "duplicate id"),
    ("a15", "Ads\n", (2.0, "2"), "1.", (0.1, "0.1"), "no", (-2, 8, 1, 10)),
    ("a16", "\u00a0NA\u2028", (1.0, "1"), "\u30001\t", (2.0, "2"), "no", (1, 2, 1, 20)),
]
MESSY_GATED = replace(MESSY_RULES, spam_gate=True)  # the gate is the points table's
MESSY_UNSEEN = {"source": 2, "size": 4}  # ' padded ' and 'zzz'; nan, 1e20, inf and 2


def _messy_files(folder: Path) -> dict[str, Path]:
    """The table as Parquet (size and score DOUBLE) and as CSV (every field quoted text)."""
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = ["lead_id", "source", "size", "visits", "score", "name_spam"]
    typed = [(r[0], r[1], r[2][0], r[3], r[4][0], r[5]) for r in MESSY]
    kinds = [pa.string(), pa.string(), pa.float64(), pa.string(), pa.float64(), pa.string()]
    pq.write_table(pa.table({name: pa.array([row[i] for row in typed], type=kind)  # NaN stays
                             for i, (name, kind) in enumerate(zip(columns, kinds, strict=True))}),
                   folder / "messy.parquet")
    text = pd.DataFrame([(r[0], r[1] or "", r[2][1], r[3] or "", r[4][1], r[5] or "")
                         for r in MESSY], columns=columns)
    text.to_csv(folder / "messy.csv", index=False, quoting=csv.QUOTE_ALL)
    return {"parquet": folder / "messy.parquet", "csv": folder / "messy.csv"}


def _check_messy(summary, output: Path, rejects: Path) -> None:
    """The engine's output, rejects and counts are those MESSY spells out."""
    scored = pd.read_parquet(output).set_index("lead_id").sort_index()
    expected = {r[0].strip(): r for r in MESSY if isinstance(r[6], tuple)}
    assert scored.index.tolist() == sorted(expected)
    for lead, row in expected.items():
        source, size, visits, score = row[6]
        got = scored.loc[lead]
        fit, pain = source + size, visits + score
        assert (got["fit"], got["pain"], got["points"]) == (fit, pain, fit + pain), lead
        spam = (row[5] or "").strip() == "yes"
        assert bool(got["sdr_ready"]) == (fit + pain >= 20 and not spam), lead
        assert got["grade"] == MESSY_RULES.grade(fit + pain), lead
        assert got["probability"] == pytest.approx(MESSY_RULES.probability(fit + pain),
                                                   rel=1e-12)
    rejected = pd.read_csv(rejects, dtype={"lead_id": str}, keep_default_na=False)
    want = [(i + 1, r[6]) for i, r in enumerate(MESSY) if isinstance(r[6], str)]
    assert list(zip(rejected["row"], [x.split(":")[0] for x in rejected["reason"]],
                    strict=True)) == want
    assert "'a1' already appeared" in rejected["reason"][1]
    assert (summary.rows, summary.scored, summary.sdr_ready) == (len(MESSY), len(expected), 5)
    assert summary.reasons == {"unparseable value": 2, "duplicate id": 3, "missing id": 2}
    assert summary.unseen == MESSY_UNSEEN


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_duckdb_cleans_each_distinct_value_as_the_rules_say(tmp_path, suffix):
    source = _messy_files(tmp_path)[suffix]
    summary = duckdb_engine.score_duckdb(MESSY_GATED, source, tmp_path / "out.parquet",
                                   tmp_path / "rejects.csv", id_column="lead_id")
    _check_messy(summary, tmp_path / "out.parquet", tmp_path / "rejects.csv")


@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_spark_cleans_each_distinct_value_as_the_rules_say(tmp_path, spark, suffix):
    source = _messy_files(tmp_path)[suffix]
    summary = spark_engine.score_spark(MESSY_GATED, source, tmp_path / "out.parquet",
                                  tmp_path / "rejects.csv", id_column="lead_id", spark=spark)
    _check_messy(summary, tmp_path / "out.parquet", tmp_path / "rejects.csv")


def test_sql_engines_publish_nothing_when_every_row_is_rejected(tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text("lead_id,source,size,visits,score\n,Web,1,1,1\nx,Web,1,lots,1\n")
    with pytest.raises(NothingScoredError, match="no lead could be scored"):
        duckdb_engine.score_duckdb(MESSY_RULES, source, tmp_path / "out.parquet", None,
                             id_column="lead_id")
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.slow
def test_spark_publishes_nothing_when_every_row_is_rejected(tmp_path, spark):
    source = tmp_path / "bad.csv"
    source.write_text("lead_id,source,size,visits,score\n,Web,1,1,1\nx,Web,1,lots,1\n")
    with pytest.raises(NothingScoredError, match="2 rejected"):
        spark_engine.score_spark(MESSY_RULES, source, tmp_path / "out.parquet", None,
                            id_column="lead_id", spark=spark)
    assert not (tmp_path / "out.parquet").exists()


# ------------------------------------------------------------------------------ SQL pieces

TRICKY_DOUBLES = [None, NAN, INF, -INF, 0.0, -0.0, -1.0, 1.0, 1e20, -2.5, 2.5, 7.0,
                  *[math.nextafter(e, d) for e in (-2.5, 7.0) for d in (-INF, INF)]]


def test_numeric_points_over_doubles_match_the_exported_case():
    """``sql_factor_points(double=True)`` gives export_sql's points for every double, missing
    tokens that are (or look like) the text of a number included."""
    import duckdb

    rules = PointsRules(
        factors=[FactorRules("x", "FIT", "numeric", edges=[-2.5, 0.0, 7.0],
                             bin_points=[1, 2, 3, 4], missing_points=-9,
                             special_points={"2.5": 5, "-1": 6, "1e+20": 7})],
        missing_values=["-1.0", "1", "inf", "nan", "-0.0", "1e+20", "NA"])
    factor = rules.factors[0]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (x DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?)", [(v,) for v in TRICKY_DOUBLES])
    fast = sql_factor_points(factor, rules, dialect="duckdb", double=True)
    slow = sql_factor_points(factor, rules, dialect="duckdb")
    got = con.execute(f"SELECT x, {fast}, {slow} FROM t").fetchall()
    assert [a for _, a, _ in got] == [b for _, _, b in got]
    # every bin, missing and the special 2.5 are hit; -1 and 1e20 are missing tokens first
    assert {a for _, a, _ in got} == {1, 2, 3, 4, 5, -9}


def test_duckdb_strip_trims_exactly_what_python_strips():
    """The cheap first/last character test never skips text that ``str.strip`` changes."""
    import duckdb

    ends = [*engine_sql.WHITESPACE, "a", "é", "日", "😀", "!", "\x7f", "\x00"[:0]]
    values = [f"{a}x y{b}" for a in ends for b in ends] + ["", " ", "\u3000\u3000"]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    got = con.execute(f"SELECT v, {engine_sql._strip_expr('v', 'duckdb')} FROM t").fetchall()
    assert [s for _, s in got] == [v.strip() for v, _ in got]


def test_score_totals_ends_export_sql():
    """export_sql is the factor points followed by sql_score_totals (one formula for both)."""
    rules = MESSY_RULES
    text = export_sql(rules, dialect="spark", table="leads")
    head, tail = text.split("  FROM (\n", 1)
    factor_points = tail.split("  ) AS factor_points\n")[0]
    assert sql_score_totals(rules, factor_points, dialect="spark") == text
