"""Bench part ``spark_events``: event aggregation on Spark ``local[2]`` beside DuckDB.

The same synthetic log as the ``events`` part (:func:`bench.run.write_events`: 8 event names,
one year, ``N`` events over 1M leads, Parquet) is aggregated by
:func:`pipeline.inputs.events.aggregate_events` once per engine, each in its own process
(wall time includes the start-up: Python imports, and for Spark the JVM). Each child also
reports the aggregation call's own time (``aggregate_s``) and writes its features; the two
feature tables are then compared (same columns, counts equal, floats to 1e-9 relative).

Size: ``LEAD_SCORING_BENCH_SPARK_EVENTS`` events (default 200M, the issue's figure); the
record says which size ran. Spark's driver gets ``LEAD_SCORING_BENCH_SPARK_MEMORY`` (default
4g) and spills under the scratch folder; ``LEAD_SCORING_BENCH_SPARK_WHY`` says in the note
why a smaller size ran.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ISSUE_EVENTS = 200_000_000
N_EVENTS = int(os.environ.get("LEAD_SCORING_BENCH_SPARK_EVENTS", ISSUE_EVENTS))
N_LEADS = 1_000_000
MASTER = "local[2]"
SPARK_MEMORY = os.environ.get("LEAD_SCORING_BENCH_SPARK_MEMORY", "4g")
_why = os.environ.get("LEAD_SCORING_BENCH_SPARK_WHY", "")  # why that size, for the note
WHY = f": {_why}" if _why else ""

CHILD = (
    "import sys, time, numpy as np, pandas as pd\n"
    "from pipeline.inputs.events import aggregate_events\n"
    "path, n, engine, out, master = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]\n"
    "ids = pd.Series(np.arange(n)).map('L{:09d}'.format)\n"
    "snaps = pd.DataFrame({'lead_id': ids, 'created_at': pd.Timestamp('2023-12-01'),"
    " 'snapshot_at': pd.Timestamp('2025-01-01')})\n"
    "groups = {'trial_signup': 'product', 'document_created': 'product', 'login': 'product',"
    " 'pricing_view': 'non_product', 'webinar_signup': 'non_product',"
    " 'whitepaper_download': 'non_product', 'email_open': 'email', 'email_click': 'email'}\n"
    "t = time.perf_counter()\n"
    "r = aggregate_events(path, snaps, event_groups=groups, engine=engine, master=master,"
    " half_lives={'product': 30.0, 'non_product': 30.0, 'email': 14.0, 'other': 30.0})\n"
    "print(f'AGGREGATE_S={time.perf_counter() - t:.3f}')\n"
    "r.features.to_parquet(out, index=False)\n"
    "print(r.features.shape, r.diagnostics)\n"
)


def compare_features(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, Any]:
    """Same columns in the same order, integer columns equal, float columns equal to 1e-9
    relative (NaN where the other is NaN): ``identical`` and the largest relative gap."""
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return {"identical": False, "why": f"columns {list(a.columns)} vs {list(b.columns)}, "
                                           f"rows {len(a)} vs {len(b)}"}
    worst = 0.0
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if x.dtype.kind in "iub" or x.dtype.kind == "O":
            if not np.array_equal(x, y):
                return {"identical": False, "why": f"column {col} differs"}
            continue
        x, y = x.astype(float), y.astype(float)
        if not np.array_equal(np.isnan(x), np.isnan(y)):
            return {"identical": False, "why": f"column {col}: missing values differ"}
        both = ~np.isnan(x)
        gap = np.abs(x[both] - y[both]) / np.maximum(1.0, np.abs(x[both]))
        worst = max(worst, float(gap.max()) if gap.size else 0.0)
    return {"identical": worst <= 1e-9, "max_rel_diff": worst}


def _aggregate_seconds(info: dict[str, Any]) -> float | None:
    found = re.search(r"AGGREGATE_S=([0-9.]+)", info.get("out", ""))
    return float(found.group(1)) if found else None


def bench_spark_events(n_events: int, tmp: Path) -> list[dict[str, Any]]:
    """The two records (``event_aggregation_duckdb``, ``event_aggregation_spark``)."""
    from bench.run import run_child, skipped, write_events

    if not n_events:
        return [skipped(f"event_aggregation_{e}", 0, "--quick skips the Spark events run")
                for e in ("duckdb", "spark")]
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return [skipped("event_aggregation_spark", n_events, "pyspark not installed")]
    path = write_events(tmp / "spark_events.parquet", n_events, N_LEADS)
    os.environ.setdefault("SPARK_LOCAL_DIRS", str(tmp))
    os.environ["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {SPARK_MEMORY} pyspark-shell"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    records, outputs = [], {}
    try:
        for engine in ("duckdb", "spark"):
            out = tmp / f"features_{engine}.parquet"
            what = (f"pipeline.inputs.events.aggregate_events(engine={engine!r}) over Parquet, "
                    f"{N_LEADS:,} leads (rows = events)"
                    + (f", master {MASTER}, driver memory {SPARK_MEMORY}"
                       if engine == "spark" else ", 2 threads, 4 GB memory limit"))
            load_before = os.getloadavg()[0]
            record, info = run_child(f"event_aggregation_{engine}", n_events,
                                     [sys.executable, "-c", CHILD, str(path), str(N_LEADS),
                                      engine, str(out), MASTER], what=what, leads=N_LEADS,
                                     engine=engine)
            record["aggregate_s"] = _aggregate_seconds(info)
            # the machine is shared: the 1-minute load average before and after the run
            record["load_avg_1m"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
            records.append(record)
            outputs[engine] = out
    finally:
        path.unlink(missing_ok=True)
    check = compare_features(pd.read_parquet(outputs["duckdb"]),
                             pd.read_parquet(outputs["spark"]))
    duck, spark = records
    if n_events < ISSUE_EVENTS:
        for record in records:
            record["note"] = (f"{n_events:,} events, not the issue's {ISSUE_EVENTS:,} "
                              f"(LEAD_SCORING_BENCH_SPARK_EVENTS chose the size{WHY})")
    spark["same_features_as_duckdb"] = check
    if duck.get("aggregate_s") and spark.get("aggregate_s"):
        spark["x_duckdb"] = round(spark["aggregate_s"] / duck["aggregate_s"], 2)
    print(f"  spark vs duckdb features: {check}; aggregation {spark.get('x_duckdb')}x "
          "DuckDB's time", flush=True)
    return records


def spark_targets(records: list[dict[str, Any]]) -> list[tuple[str, str, bool | None]]:
    """The part's target line: Spark's features are DuckDB's (when it ran)."""
    spark = next((r for r in records if r["name"] == "event_aggregation_spark"
                  and r.get("same_features_as_duckdb")), None)
    if spark is None:
        return []
    check = spark["same_features_as_duckdb"]
    measured = (f"identical (largest relative gap {check.get('max_rel_diff', 0):.1g}); Spark "
                f"took {spark.get('x_duckdb')}x DuckDB's time" if check["identical"]
                else f"different: {check.get('why', check)}")
    return [(f"event features of {spark['n_rows']:,} events: Spark local[2] = DuckDB",
             measured, bool(check["identical"]))]
