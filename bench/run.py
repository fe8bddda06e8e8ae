"""Scale benchmark: every scorer side by side on the same synthetic leads, in one run.

``python -m bench.run`` (``make bench``) writes ``bench/results.json`` (a list of records
``{"name", "n_rows", "median_s", "rows_per_s", "peak_rss_mb", ...}``) and a readable
``bench/results.md`` (machine, versions, medians, ratios, a pass/fail line per target).
``--quick`` runs the same pipeline on small sizes (a smoke test, not figures to quote).

Data: seeded synthetic leads with 8 string categoricals (3..200 levels, Zipf-like, 2%
missing) and 12 behaviour columns (6 small non-negative integer counts, 6 continuous with
3% NaN), written to Parquet in chunks (dictionary-encoded strings). The points table is
fitted on a 200k sample with :class:`pipeline.model.points.PointsScorecard` (all 20 factors, 8
bins). Generated files live under ``bench/tmp/`` and are deleted at the end.

Timings are wall-clock medians of several runs of the scoring phase only unless the record
says otherwise; BLAS/OpenMP threads are pinned to 1 (``threadpoolctl`` too). Peak memory:
for in-process records the resident high-water mark during the measurement (reset through
``/proc/self/clear_refs`` before it), for subprocess records the child's ``ru_maxrss``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TMP = BENCH / "tmp"
CATEGORICAL_LEVELS = [3, 5, 8, 12, 20, 50, 100, 200]
INTEGER_COLUMNS = {"visits": 3.0, "page_views": 6.0, "emails_opened": 2.0, "downloads": 0.5,
                   "webinars": 0.3, "logins": 4.0}
FLOAT_COLUMNS = ["time_on_site", "pages_per_visit", "days_since_signup", "engagement_index",
                 "revenue_estimate", "days_since_last_visit"]
CATEGORICALS = [f"cat_{i}" for i in range(len(CATEGORICAL_LEVELS))]
NUMERICS = [*INTEGER_COLUMNS, *FLOAT_COLUMNS]
FACTORS = [*CATEGORICALS, *NUMERICS]
ID = "lead_id"
TRAIN_REPEATS = 3  # runs of each training measurement (the median is reported)
LABEL = "outcome"
REQUIRED = ["floor_numpy", "score_pandas", "score_duckdb", "score_spark", "sklearn_predict_proba",
            "mlflow_pyfunc_predict", "score_stream_parquet", "train_lead_scoring",
            "train_sklearn_bare", "event_aggregation"]


@dataclass(frozen=True)
class Sizes:
    score: tuple[int, ...]
    repeats: dict[int, int]
    train: tuple[int, ...]
    stream: int
    events: int
    event_leads: int
    fit_sample: int
    in_memory_limit: int  # sklearn / pyfunc above this many rows: measured on a slice
    spark: bool


FULL = Sizes(score=(1_000_000, 10_000_000), repeats={1_000_000: 3, 10_000_000: 2},
             train=(100_000, 1_000_000), stream=10_000_000, events=50_000_000,
             event_leads=1_000_000, fit_sample=200_000, in_memory_limit=1_000_000, spark=True)
QUICK = Sizes(score=(20_000,), repeats={20_000: 2}, train=(3_000,), stream=20_000, events=0,
              event_leads=0, fit_sample=20_000, in_memory_limit=20_000, spark=False)


# ------------------------------------------------------------------------------ data


def _effects(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {c: rng.normal(0, 0.6, n) for c, n in zip(CATEGORICALS, CATEGORICAL_LEVELS, strict=True)}
    out.update({c: np.asarray([rng.normal(0, 0.4)]) for c in NUMERICS})
    return out


def lead_chunk(n: int, *, seed: int, start: int) -> Any:
    """``n`` synthetic leads as a pyarrow Table (dictionary-encoded strings, string ids)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    effects = _effects()
    logit = np.full(n, -1.2)
    columns: dict[str, Any] = {
        ID: pc.binary_join_element_wise(
            "L", pc.utf8_lpad(pc.cast(pa.array(np.arange(start, start + n)), pa.string()), 9, "0"),
            ""),
    }
    for name, levels in zip(CATEGORICALS, CATEGORICAL_LEVELS, strict=True):
        weights = 1.0 / np.arange(1, levels + 1)
        codes = rng.choice(levels, size=n, p=weights / weights.sum()).astype(np.int32)
        logit += effects[name][codes]
        mask = rng.random(n) < 0.02
        dictionary = pa.array([f"{name} level {k}" for k in range(levels)])
        columns[name] = pa.DictionaryArray.from_arrays(pa.array(codes, mask=mask), dictionary)
    for name, lam in INTEGER_COLUMNS.items():
        values = rng.poisson(lam, n).astype(np.int64)
        logit += effects[name][0] * np.log1p(values)
        columns[name] = pa.array(values)
    for i, name in enumerate(FLOAT_COLUMNS):
        values = rng.gamma(1.5 + i % 3, 40.0 / (1 + i), n)
        logit += effects[name][0] * np.log1p(values) / 2
        values[rng.random(n) < 0.03] = np.nan
        columns[name] = pa.array(values, from_pandas=True)
    won = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    columns[LABEL] = pa.DictionaryArray.from_arrays(pa.array(won.astype(np.int32)),
                                                    pa.array(["lost", "won"]))
    return pa.table(columns)


def write_tables(path: Path, tables: Iterable[Any]) -> Path:
    """Arrow tables one after the other into one Parquet (or CSV) file, so 10M rows never sit
    in memory at once."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    writer = None
    for table in tables:
        if path.suffix == ".csv":
            plain = table.cast(_plain_schema(table.schema))
            mode = "wb" if writer is None else "ab"
            with open(path, mode) as sink:
                pacsv.write_csv(plain, sink, pacsv.WriteOptions(include_header=writer is None))
            writer = True
        else:
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    if writer is not None and writer is not True:
        writer.close()
    return path


def write_leads(path: Path, n: int, *, seed: int = 0, chunk: int = 1_000_000) -> Path:
    """Leads to Parquet (or CSV) in chunks (:func:`write_tables`)."""
    return write_tables(path, (lead_chunk(min(chunk, n - start), seed=seed + k, start=start)
                               for k, start in enumerate(range(0, n, chunk))))


def _plain_schema(schema: Any) -> Any:
    import pyarrow as pa

    return pa.schema([pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type)
                               else f.type) for f in schema])


def read_leads(path: Path, rows: int | None = None) -> pd.DataFrame:
    """Leads as the pandas engine should hold them: categoricals stay dictionary-encoded."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, read_dictionary=[*CATEGORICALS, LABEL])
    if rows is not None:
        table = table.slice(0, rows)
    return table.to_pandas()


def write_events(path: Path, n_events: int, n_leads: int, *, seed: int = 3,
                 chunk: int = 5_000_000) -> Path:
    """``n_events`` events for ``n_leads`` leads, written chunk by chunk with pyarrow."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    names = pa.array(["trial_signup", "document_created", "login", "pricing_view",
                      "webinar_signup", "whitepaper_download", "email_open", "email_click"])
    weights = np.asarray([1, 2, 8, 3, 1, 1, 12, 4], dtype=float)
    base = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    year_us = 365 * 86_400_000_000
    writer = None
    rng = np.random.default_rng(seed)
    for start in range(0, n_events, chunk):
        n = min(chunk, n_events - start)
        leads = rng.integers(0, n_leads, n)
        ids = pc.binary_join_element_wise(
            "L", pc.utf8_lpad(pc.cast(pa.array(leads), pa.string()), 9, "0"), "")
        events = pa.DictionaryArray.from_arrays(
            pa.array(rng.choice(len(names), n, p=weights / weights.sum()).astype(np.int32)),
            names)
        stamps = pa.array(base + rng.integers(0, year_us, n), pa.timestamp("us"))
        table = pa.table({"lead_id": ids, "event": events, "timestamp": stamps})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        del table, ids, events, stamps, leads
    if writer is not None:
        writer.close()
    return path


# ------------------------------------------------------------------------------ measuring


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(name: str, n_rows: int, fn: Callable[[], Any], repeats: int, **extra: Any
            ) -> dict[str, Any]:
    """Median wall time of ``repeats`` calls of ``fn`` and the peak RSS while they ran."""
    _reset_peak()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return timing_record(name, n_rows, times, round(_peak_mb(), 1), **extra)


def timing_record(name: str, n_rows: int, times: list[float], peak_mb: float, **extra: Any
                  ) -> dict[str, Any]:
    """The record of in-process runs taking ``times`` seconds (the median is reported)."""
    median = statistics.median(times)
    record = {"name": name, "n_rows": n_rows, "median_s": round(median, 6),
              "rows_per_s": round(n_rows / median) if median > 0 else None,
              "peak_rss_mb": peak_mb, "runs": len(times),
              "times_s": [round(t, 6) for t in times], **extra}
    print(f"  {name:<24} {n_rows:>11,} rows  {median:9.4f} s  "
          f"{record['rows_per_s'] or 0:>13,} rows/s  {peak_mb:8.0f} MB", flush=True)
    return record


def measure_side_by_side(n_rows: int, runs: dict[str, Callable[[], Any]], repeats: int,
                         extras: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Like :func:`measure` for several functions whose ratio matters, called in turn, round
    after round: a burst of load on the shared machine then slows all of them, not one.

    The peak RSS is the one of the whole interleaved run.
    """
    _reset_peak()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    peak = round(_peak_mb(), 1)
    return [timing_record(name, n_rows, ts, peak, **extras.get(name, {}))
            for name, ts in times.items()]


def skipped(name: str, n_rows: int, why: str) -> dict[str, Any]:
    print(f"  {name:<24} {n_rows:>11,} rows  skipped: {why}", flush=True)
    return {"name": name, "n_rows": n_rows, "median_s": None, "rows_per_s": None,
            "peak_rss_mb": None, "skipped": why}


def run_child(name: str, n_rows: int, argv: list[str], *, cwd: Path = REPO, repeats: int = 1,
              before: Callable[[], Any] | None = None, **extra: Any
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``argv`` ``repeats`` times (``before`` each run) under a tiny wrapper that reports
    the child's own peak RSS and time: the median time and the largest peak."""
    runs = []
    for _ in range(repeats):
        if before is not None:
            before()
        runs.append(_run_child_once(name, argv, cwd))
    return _child_record(name, n_rows, runs, **extra), runs[-1]


def _child_record(name: str, n_rows: int, runs: list[dict[str, Any]], **extra: Any
                  ) -> dict[str, Any]:
    """The record of child runs: the median time and the largest peak."""
    seconds = statistics.median(float(info["s"]) for info in runs)
    rss_kb = max(info["rss_kb"] for info in runs)
    record = {"name": name, "n_rows": n_rows, "median_s": round(seconds, 4),
              "rows_per_s": round(n_rows / seconds), "peak_rss_mb": round(rss_kb / 1024, 1),
              "runs": len(runs), "times_s": [round(float(info["s"]), 4) for info in runs],
              "measured_in": "subprocess (wall time incl. start-up)"}
    record.update(extra)
    print(f"  {name:<24} {n_rows:>11,} rows  {seconds:9.4f} s  {record['rows_per_s']:>13,} "
          f"rows/s  {record['peak_rss_mb']:8.0f} MB (subprocess)", flush=True)
    return record


def _run_child_once(name: str, argv: list[str], cwd: Path) -> dict[str, Any]:
    wrapper = ("import resource, subprocess, sys, time, json\n"
               "t = time.perf_counter()\n"
               "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
               "dt = time.perf_counter() - t\n"
               "print(json.dumps({'rc': r.returncode, 's': dt, 'out': r.stdout[-3000:],"
               " 'err': r.stderr[-3000:],"
               " 'rss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n")
    done = subprocess.run([sys.executable, "-c", wrapper, *argv], capture_output=True, text=True,
                          cwd=cwd, env=_child_env())
    info = json.loads(done.stdout.strip().splitlines()[-1])
    if info["rc"] != 0:
        raise RuntimeError(f"{name}: child failed ({info['rc']}):\n{info['out']}\n{info['err']}")
    return info


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ------------------------------------------------------------------------------ models


def fit_rules(sample: pd.DataFrame) -> Any:
    """A points table fitted on the synthetic leads: all 20 factors, 8 bins."""
    from pipeline.model.points import PointsScorecard

    groups = {c: "FIT" for c in CATEGORICALS} | {c: "PAIN" for c in NUMERICS}
    X = _object_frame(sample[FACTORS])
    card = PointsScorecard(groups=groups, numeric=NUMERICS, n_bins=8, min_leads=30,
                           c_grid=(1.0,), cv_folds=2).fit(X, sample[LABEL].astype(str))
    rules = card.rules_
    from dataclasses import replace

    return replace(rules, id_column=ID, sdr_threshold=int(np.median(card.points(X))))


def _object_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as plain object strings (what scikit-learn and pyfunc users pass)."""
    out = {}
    for c in frame.columns:
        s = frame[c]
        out[c] = (s.astype(object).where(s.notna(), None)
                  if isinstance(s.dtype, pd.CategoricalDtype) else s)
    return pd.DataFrame(out, index=frame.index)


def sklearn_pipeline(sample: pd.DataFrame) -> Any:
    """OneHotEncoder + quantile KBinsDiscretizer (8 bins) + LogisticRegression, fitted."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder

    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="(missing)"),
        OneHotEncoder(handle_unknown="ignore"))
    numeric = make_pipeline(
        SimpleImputer(strategy="median"),
        KBinsDiscretizer(n_bins=8, encode="onehot", strategy="quantile",
                         quantile_method="averaged_inverted_cdf"))
    model = Pipeline([
        ("design", ColumnTransformer([("cat", categorical, CATEGORICALS),
                                      ("num", numeric, NUMERICS)])),
        ("lr", LogisticRegression(C=1.0, max_iter=1000)),
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # bins of constant width are merged
        model.fit(_object_frame(sample[FACTORS]), sample[LABEL].astype(str))
    return model


def log_pyfunc(rules: Any, store: Path) -> Any:
    """Register the points table as the project's pyfunc model in a temporary store."""
    import mlflow
    import mlflow.pyfunc

    from pipeline.scoring.serving import DERIVED_ARTIFACT, RULES_ARTIFACT, LeadScoringModel

    store.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    experiment = mlflow.set_experiment("bench")
    if experiment.artifact_location is None:
        raise RuntimeError("no artifact location")
    (store / "rules.json").write_text(rules.to_json())
    (store / "derived.json").write_text(json.dumps({}))
    example = pd.DataFrame({f.name: ["x"] if f.kind == "categorical"
                            else [1] if f.name in INTEGER_COLUMNS else [1.0]
                            for f in rules.factors})
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model", python_model=LeadScoringModel(),
            artifacts={RULES_ARTIFACT: str(store / "rules.json"),
                       DERIVED_ARTIFACT: str(store / "derived.json")},
            input_example=example, registered_model_name="bench-points")
    return mlflow.pyfunc.load_model(f"models:/bench-points/{info.registered_model_version}")


# ------------------------------------------------------------------------------ the run


def bench_scoring(sizes: Sizes, leads_path: Path, rules: Any, sample: pd.DataFrame
                  ) -> list[dict[str, Any]]:
    from pipeline.scoring.duckdb_engine import score_duckdb
    from pipeline.scoring.factor_lookup import factor_points
    from pipeline.scoring.frame import score_frame
    from pipeline.scoring.spark_engine import score_spark, spark_session

    records = []
    sk_model = sklearn_pipeline(sample)
    pyfunc = log_pyfunc(rules, TMP / "mlflow")
    spark = None
    if sizes.spark:
        try:
            spark = spark_session("local[2]", shuffle_partitions=4)
            spark.sparkContext.setLogLevel("ERROR")
        except Exception as exc:  # noqa: BLE001 - report why and go on
            spark = None
            spark_error = str(exc)[:200]
    for n in sizes.score:
        repeats = sizes.repeats[n]
        path = TMP / f"leads_{n}.parquet"
        write_leads(path, n)
        frame = read_leads(path)
        print(f"- {n:,} leads ({path.stat().st_size / 1e6:.0f} MB Parquet)", flush=True)
        columns = [factor_points(f, frame[f.name], rules.missing_values, dtype=np.int16)
                   for f in rules.factors]

        def floor(columns=columns, n=n):
            total = np.zeros(n, dtype=np.int32)
            for c in columns:
                np.add(total, c, out=total)
            return total

        records += measure_side_by_side(
            n, {"floor_numpy": floor,
                "score_pandas": lambda frame=frame: score_frame(rules, frame)},
            21 if n <= 1_000_000 else 7,
            {"score_pandas": {"what": "score_frame on the frame read from Parquet "
                                      "(dictionary-encoded categoricals), no reason codes; "
                                      "runs alternate with floor_numpy's"}})
        del columns
        if n <= sizes.in_memory_limit:
            records.append(measure(
                "score_pandas_reasons", n,
                lambda frame=frame: score_frame(rules, frame, reasons=True), 1,
                what="score_frame with reason codes"))
        records.append(measure(
            "score_duckdb", n,
            lambda path=path: score_duckdb(rules, path, TMP / "duck_out.parquet", None,
                                           id_column=ID),
            repeats, what="engine end to end: Parquet file -> scored Parquet file"))
        if spark is not None:
            records.append(measure(
                "score_spark", n,
                lambda path=path: score_spark(rules, path, TMP / "spark_out.parquet", None,
                                              id_column=ID, spark=spark),
                1 if n > 1_000_000 else repeats,
                what="engine end to end on local[2]: Parquet -> Parquet, session already up"))
        else:
            why = ("--quick skips Spark" if not sizes.spark
                   else f"Spark could not start: {spark_error}")
            records.append(skipped("score_spark", n, why))
        slice_n = min(n, sizes.in_memory_limit)
        objects = _object_frame(frame.iloc[:slice_n][FACTORS])
        note = {} if slice_n == n else {
            "note": f"measured on a {slice_n:,}-row slice and scaled x{n // slice_n} "
                    f"(the whole {n:,} rows as object strings + one-hot would take ~10x the "
                    "time and several GB)"}
        for name, fn in (("sklearn_predict_proba", lambda o=objects: sk_model.predict_proba(o)),
                         ("mlflow_pyfunc_predict", lambda o=objects: pyfunc.predict(o))):
            rec = measure(name, slice_n, fn, 1 if n > 1_000_000 else repeats)
            if slice_n != n:
                rec = rec | {"n_rows": n, "median_s": rec["median_s"] * (n / slice_n),
                             "rows_per_s": rec["rows_per_s"], **note}
            records.append(rec)
        del frame, objects
        if n != sizes.stream:
            path.unlink()
    if spark is not None:
        spark.stop()
    return records


def bench_stream(sizes: Sizes, rules: Any) -> dict[str, Any]:
    path = TMP / f"leads_{sizes.stream}.parquet"
    if not path.exists():
        write_leads(path, sizes.stream)
    (TMP / "rules.json").write_text(rules.to_json())
    code = ("import sys; from pathlib import Path\n"
            "from pipeline.model.rules import PointsRules\n"
            "from pipeline.scoring.batch import score_file\n"
            "rules = PointsRules.from_json(Path(sys.argv[1]).read_text())\n"
            "s = score_file(rules, Path(sys.argv[2]), Path(sys.argv[3]), rejects_path=None,"
            f" id_column={ID!r}, reasons=False)\n"
            "print(s.rows, s.scored)\n")
    record, info = run_child("score_stream_parquet", sizes.stream,
                             [sys.executable, "-c", code, str(TMP / "rules.json"), str(path),
                              str(TMP / "stream_out.parquet")],
                             what="pipeline.scoring.batch.score_file, Parquet -> Parquet, "
                                  "200k batches")
    path.unlink()
    return record


def _train_config(csv: Path, out: Path) -> Path:
    import yaml

    settings = {
        "name": f"bench_{csv.stem}", "root": str(REPO), "model_name": "bench-train", "seed": 0,
        "data": {"leads": str(csv), "id_column": ID, "missing_values": [""]},
        "label": {"column": LABEL, "positive": ["won"], "negative": ["lost"]},
        "columns": {"fit": CATEGORICALS, "pain": NUMERICS},
        "analysis": {"n_bins": 8, "max_factors": 20},
        "registry": {"tracking_uri": f"sqlite:///{out / 'mlflow.db'}",
                     "artifact_location": str(out / "artifacts")},
    }
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def bench_training(sizes: Sizes) -> list[dict[str, Any]]:
    """Whole ``lead-scoring train`` against a bare fit of the same design, run in turn
    (train, bare, bare with defaults, train, ...): a burst of load on the shared machine then
    slows all of them, and the ratios stay fair. The first train run tells the bare fits
    their C and factors.

    The bare fit (``train_sklearn_bare``) is the estimator the pipeline fits, as a user would
    call it by hand: the one-hot design of the kept factors, then ``LogisticRegression`` with
    the chosen C and the pipeline's solver and tolerance, from a cold start. The second
    (``train_sklearn_bare_default``) keeps scikit-learn's defaults (lbfgs, tol 1e-4): it is
    cheaper because it stops short of the optimum, and its record says how far short."""
    from sklearn.linear_model import LogisticRegression

    from pipeline.config import default_settings
    from pipeline.model.encoding import FactorEncoder
    from pipeline.model.fit import SOLVER, TOLERANCE

    max_iter = default_settings()["model"]["max_iter"]  # what the train runs use
    records = []
    for n in sizes.train:
        out = TMP / f"train_{n}"
        out.mkdir(parents=True, exist_ok=True)
        csv = write_leads(TMP / f"train_{n}.csv", n, seed=11)
        config = _train_config(csv, out)
        cli = str(Path(sys.executable).with_name("lead-scoring"))
        argv = [cli, "train", "--config", str(config), "--no-score", "--out", str(out / "result")]

        def train_once(out=out, argv=argv) -> dict[str, Any]:
            (out / "mlflow.db").unlink(missing_ok=True)  # a new store, as a first run has
            for folder in (out / "artifacts", out / "result"):
                shutil.rmtree(folder, ignore_errors=True)
            return _run_child_once("train_lead_scoring", argv, REPO)

        train_runs = [train_once()]
        chosen_c, kept = _chosen(out)
        frame = pd.read_csv(csv, dtype={c: str for c in [ID, LABEL, *CATEGORICALS]},
                            keep_default_na=False, na_values={c: [""] for c in NUMERICS})
        X = frame[kept or FACTORS]
        y = (frame[LABEL] == "won").to_numpy().astype(int)
        numeric = [c for c in (kept or FACTORS) if c in NUMERICS]
        estimators = {
            "train_sklearn_bare": dict(solver=SOLVER, tol=TOLERANCE),
            "train_sklearn_bare_default": {},
        }

        def bare(settings: dict[str, Any], X=X, y=y, numeric=numeric, chosen_c=chosen_c
                 ) -> tuple[float, LogisticRegression]:
            started = time.perf_counter()
            design = FactorEncoder(n_bins=8, min_leads=30, numeric=numeric,
                                   missing_values=("",)).fit(X).transform(X)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # lbfgs may warn that it stopped early
                model = LogisticRegression(C=chosen_c, max_iter=max_iter,
                                           **settings).fit(design, y)
            return time.perf_counter() - started, model

        _reset_peak()
        bare_times: dict[str, list[float]] = {name: [] for name in estimators}
        models: dict[str, LogisticRegression] = {}
        for round_ in range(TRAIN_REPEATS):
            for name, settings in estimators.items():
                seconds, models[name] = bare(settings)
                bare_times[name].append(seconds)
            if round_ < TRAIN_REPEATS - 1:
                train_runs.append(train_once())
        peak = round(_peak_mb(), 1)
        records.append(_child_record(
            "train_lead_scoring", n, train_runs, chosen_C=chosen_c,
            what="whole `lead-scoring train --no-score` (read, validate, lift, selection, "
                 "CV over C, points, MLflow logging, each run with a new MLflow store, its "
                 "schema copied from the cached template) in a subprocess, runs alternating "
                 "with the bare fits'"))
        converged = models["train_sklearn_bare"]
        for name, settings in estimators.items():
            model = models[name]
            error = float(np.abs(np.concatenate([model.coef_[0] - converged.coef_[0],
                                                 model.intercept_ - converged.intercept_])).max())
            solver = (f"solver={SOLVER!r}, tol={TOLERANCE:g} (the pipeline's)" if settings
                      else "scikit-learn's default solver and tolerance (lbfgs, tol 1e-4)")
            records.append(timing_record(
                name, n, bare_times[name], peak,
                what="FactorEncoder one-hot of the same factors + "
                     f"LogisticRegression(C={chosen_c:g}, {solver}), cold start, data already "
                     f"in memory; {int(model.n_iter_[0])} iterations, max |coefficient - "
                     f"converged| = {error:.2g}",
                factors=len(kept or FACTORS), n_iter=int(model.n_iter_[0]),
                max_coef_error=round(error, 6)))
        del frame, X
        csv.unlink()
    return records


def _chosen(out: Path) -> tuple[float, list[str]]:
    """The C the train run chose and the factors it kept (from its points table / MLflow)."""
    import mlflow

    from pipeline.model.rules import PointsRules

    rules = PointsRules.from_json((out / "result" / "points_rules.json").read_text())
    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True)
    c = float(runs["params.C"].dropna().iloc[0]) if "params.C" in runs else 1.0
    return c, rules.factor_names()


def bench_events(sizes: Sizes) -> dict[str, Any]:
    path = write_events(TMP / "events.parquet", sizes.events, sizes.event_leads)
    code = (
        "import sys, numpy as np, pandas as pd\n"
        "from pipeline.inputs.events import aggregate_events\n"
        "n = int(sys.argv[2])\n"
        "ids = pd.Series(np.arange(n)).map('L{:09d}'.format)\n"
        "snaps = pd.DataFrame({'lead_id': ids, 'created_at': pd.Timestamp('2023-12-01'),"
        " 'snapshot_at': pd.Timestamp('2025-01-01')})\n"
        "groups = {'trial_signup': 'product', 'document_created': 'product', 'login': 'product',"
        " 'pricing_view': 'non_product', 'webinar_signup': 'non_product',"
        " 'whitepaper_download': 'non_product', 'email_open': 'email', 'email_click': 'email'}\n"
        "r = aggregate_events(sys.argv[1], snaps, event_groups=groups,"
        " half_lives={'product': 30.0, 'non_product': 30.0, 'email': 14.0, 'other': 30.0})\n"
        "print(r.features.shape, r.diagnostics)\n")
    record, info = run_child("event_aggregation", sizes.events,
                             [sys.executable, "-c", code, str(path), str(sizes.event_leads)],
                             what=f"pipeline.inputs.events.aggregate_events over Parquet, "
                                  f"{sizes.event_leads:,} leads (rows = events)",
                             leads=sizes.event_leads)
    path.unlink()
    return record


# ------------------------------------------------------------------------------ report


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {"python": platform.python_version()}
    for module in ("numpy", "pandas", "pyarrow", "duckdb", "pyspark", "sklearn", "mlflow"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - absent is a fact to report
            versions[module] = "not installed"
    threads = {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                              "MKL_NUM_THREADS")}
    try:
        from threadpoolctl import threadpool_info

        threads["threadpoolctl"] = sorted({f"{i['internal_api']}={i['num_threads']}"
                                           for i in threadpool_info()})
    except ImportError:
        threads["threadpoolctl"] = "not installed"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1),
            "platform": platform.platform(), "versions": versions, "threads": threads}


def _get(records: list[dict], name: str, n: int) -> dict | None:
    for r in records:
        if r["name"] == name and r["n_rows"] == n and r.get("median_s"):
            return r
    return None


def targets(records: list[dict], sizes: Sizes) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) per target; met is None when not measured in this run."""
    n = sizes.score[0]
    out = []
    floor, pandas_ = _get(records, "floor_numpy", n), _get(records, "score_pandas", n)
    sk, pyf = _get(records, "sklearn_predict_proba", n), _get(records, "mlflow_pyfunc_predict", n)
    if floor and pandas_:
        r = pandas_["median_s"] / floor["median_s"]
        out.append((f"pandas engine within 4x of the numpy floor ({n:,} rows)",
                    f"{r:.1f}x the floor", r <= 4))
    if sk and pandas_:
        r = sk["median_s"] / pandas_["median_s"]
        out.append(("pandas engine >= 20x faster than sklearn predict_proba",
                    f"{r:.1f}x faster", r >= 20))
    if pyf and pandas_:
        r = pyf["median_s"] / pandas_["median_s"]
        out.append(("pandas engine >= 50x faster than mlflow pyfunc predict",
                    f"{r:.1f}x faster", r >= 50))
    stream = next((r for r in records if r["name"] == "score_stream_parquet"), None)
    if stream:
        out.append((f"streaming {stream['n_rows']:,} leads from Parquet: peak < 2 GB",
                    f"{stream['peak_rss_mb']:.0f} MB", stream["peak_rss_mb"] < 2048))
    big = max(sizes.train)
    tr, bare = _get(records, "train_lead_scoring", big), _get(records, "train_sklearn_bare", big)
    default = _get(records, "train_sklearn_bare_default", big)
    if tr and bare:
        r = tr["median_s"] / bare["median_s"]
        against_default = (f"; {tr['median_s'] / default['median_s']:.1f}x the fit with "
                           "scikit-learn's default solver, which stops "
                           f"{default['max_coef_error']:.2g} short of the optimum in a "
                           "coefficient" if default else "")
        out.append((f"whole train on {big:,} leads at most 3x a bare sklearn fit "
                    "(the pipeline's estimator, cold start)", f"{r:.1f}x{against_default}",
                    r <= 3))
    ev = next((r for r in records if r["name"] == "event_aggregation" and r.get("median_s")),
              None)
    if ev:
        out.append((f"event aggregation of {ev['n_rows']:,} events: peak < 6 GB",
                    f"{ev['peak_rss_mb']:.0f} MB", ev["peak_rss_mb"] < 6144))
    else:
        out.append(("event aggregation of 50M events: peak < 6 GB", "not run (--quick)", None))
    from bench.scoring_cli import targets as cli_targets
    from bench.spark_events import spark_targets

    return out + spark_targets(records) + cli_targets(records)


def render(records: list[dict], info: dict, sizes: Sizes, quick: bool, seconds: float,
           merged: bool = False) -> str:
    note = " (the last `--only` run; the parts measured in separate runs, merged)"
    lines = ["# Benchmark results", "",
             f"Generated by `python -m bench.run{' --quick' if quick else ''}` in "
             f"{seconds / 60:.1f} min{note if merged else ''}. "
             f"{'QUICK RUN: small sizes, a smoke test only. ' if quick else ''}"
             "Compare ratios, not seconds: the machine is shared.", "",
             "## Machine", "",
             f"- CPU: {info['cpu']}, {info['cores']} cores; memory {info['memory_gib']} GiB; "
             f"{info['platform']}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
             f"- threads pinned: {info['threads']}", "",
             "## Scoring (median of the runs; scoring phase unless noted)", "",
             "| name | rows | runs | median s | rows/s | x floor | x faster than sklearn | "
             "peak RSS MB | note |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in records:
        if r.get("median_s") is None:
            lines.append(f"| {r['name']} | {r['n_rows']:,} | - | - | - | - | - | - | "
                         f"skipped: {r['skipped']} |")
            continue
        floor = _get(records, "floor_numpy", r["n_rows"])
        sk = _get(records, "sklearn_predict_proba", r["n_rows"])
        x_floor = f"{r['median_s'] / floor['median_s']:.1f}" if floor else ""
        x_sk = f"{sk['median_s'] / r['median_s']:.1f}" if sk and r["name"] != "floor" else ""
        if r["name"].startswith(("train", "event", "score_stream", *CLI_RECORDS)):
            x_floor = x_sk = ""
        note = "; ".join(str(r[k]) for k in ("what", "note", "measured_in") if r.get(k))
        if r.get("chosen_C") is not None:
            note += f"; chosen C = {r['chosen_C']:g}"
        lines.append(f"| {r['name']} | {r['n_rows']:,} | {r.get('runs', 1)} | "
                     f"{r['median_s']:.4f} | {r['rows_per_s']:,} | {x_floor} | {x_sk} | "
                     f"{r['peak_rss_mb']:.0f} | {note} |")
    lines += ["", "## Targets", ""]
    for target, measured, met in targets(records, sizes):
        mark = "n/a" if met is None else ("PASS" if met else "FAIL")
        lines.append(f"- **{mark}**: {target}: {measured}")
    lines += ["", "In-process peak RSS is the resident high-water mark of the benchmark process "
              "while the record ran (it includes the data already loaded); subprocess peaks are "
              "the child's own maximum resident set.", ""]
    return "\n".join(lines)


PARTS = ("scoring", "stream", "training", "events", "spark_events", "scoring_cli", "pyfunc")
CLI_RECORDS = ("io_floor_", "score_cli_")
PYFUNC_RECORDS = ("pyfunc_predict_reasons", "score_frame_reasons")


def _part_of(record: dict[str, Any]) -> str:
    name = record["name"]
    if name == "score_stream_parquet":
        return "stream"
    if name.startswith("train_"):
        return "training"
    if name == "event_aggregation":
        return "events"
    if name.startswith("event_aggregation_"):
        return "spark_events"
    if name.startswith(CLI_RECORDS):
        return "scoring_cli"
    if name.startswith(PYFUNC_RECORDS):
        return "pyfunc"
    return "scoring"


def run_parts(parts: set[str], sizes: Sizes) -> list[dict[str, Any]]:
    """Measure the chosen parts, in the order of a full run (a progress bar on a terminal:
    one step per part)."""
    from pipeline.progress import track

    records: list[dict[str, Any]] = []
    rules = None
    for part in track([p for p in PARTS if p in parts], "bench parts"):
        if part in ("scoring", "stream", "scoring_cli", "pyfunc") and rules is None:
            sample_path = write_leads(TMP / "sample.parquet", sizes.fit_sample, seed=99)
            sample = read_leads(sample_path)
            rules = fit_rules(sample)
            print(f"points table: {len(rules.factors)} factors, fitted on {len(sample):,} "
                  "leads", flush=True)
        if part == "scoring":
            records += bench_scoring(sizes, TMP / "leads.parquet", rules, sample)
        elif part == "stream":
            records.append(bench_stream(sizes, rules))
        elif part == "scoring_cli":
            from bench.scoring_cli import bench_cli

            records += bench_cli(sizes, rules, sample, TMP)
        elif part == "pyfunc":
            from bench.scoring_cli import bench_pyfunc_part

            records += bench_pyfunc_part(sizes, rules, sample, TMP)
        elif part == "training":
            records += bench_training(sizes)
        elif part == "events":
            records.append(bench_events(sizes) if sizes.events
                           else skipped("event_aggregation", 0,
                                        "--quick skips the 50M-event run"))
        elif part == "spark_events":
            from bench.spark_events import N_EVENTS, bench_spark_events

            records += bench_spark_events(N_EVENTS if sizes.events else 0, TMP)
    return records


def main(argv: list[str] | None = None) -> int:
    global TMP
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--out", type=Path, default=BENCH, help="where results.json/.md go")
    parser.add_argument("--tmp", type=Path, default=None,
                        help="scratch folder, deleted at the end (default bench/tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--only", choices=PARTS, action="append", default=None,
                        help="re-measure only this part (repeatable); the records of "
                             "results.json it does not measure again are kept (by name)")
    args = parser.parse_args(argv)
    from pipeline.progress import configure

    configure(quiet=args.quiet)
    TMP = args.tmp or BENCH / "tmp"
    sizes = QUICK if args.quick else FULL
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    started = time.perf_counter()
    shutil.rmtree(TMP, ignore_errors=True)
    TMP.mkdir(parents=True)
    parts = set(args.only or PARTS)
    try:
        records = run_parts(parts, sizes)
    finally:
        if not args.keep:
            shutil.rmtree(TMP, ignore_errors=True)
    if args.only:
        previous = json.loads((args.out / "results.json").read_text())
        measured = {r["name"] for r in records}  # a part may measure some of its records
        kept = [r for r in previous if r["name"] not in measured]
        records = sorted(kept + records, key=lambda r: PARTS.index(_part_of(r)))
    seconds = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(records, indent=2) + "\n")
    (args.out / "results.md").write_text(render(records, machine(), sizes, args.quick, seconds,
                                                      merged=bool(args.only)))
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'} "
          f"in {seconds / 60:.1f} min")
    for target, measured, met in targets(records, sizes):
        print(f"  {'n/a ' if met is None else ('PASS' if met else 'FAIL')}  {target}: {measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
