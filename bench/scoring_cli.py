"""``lead-scoring score`` as users run it, whole processes, against the I/O floor.

Part ``scoring_cli`` of ``python -m bench.run``. Every record here is a process (start-up
included) except those of part ``pyfunc`` (:func:`bench_pyfunc_part`:
``pyfunc_predict_reasons`` / ``score_frame_reasons``, in memory, the same frame). Runs
alternate round by round (floor, score, score --no-reasons, floor, ...), so a burst of load
on the shared machine slows all of them; the medians are compared.

- ``io_floor_parquet``: pyarrow reads the id + factor columns of the leads and writes the id
  + 5 score columns (zeros); ``io_floor_csv``: the same with pyarrow's CSV reader / writer;
- ``score_cli_{parquet,csv}_reasons`` / ``_no_reasons``: ``lead-scoring score --model``
  on the same file (Parquet -> Parquet, CSV -> CSV);
- ``score_cli_incremental``: ``score --since`` on the Parquet leads of which 1% have an
  event after ``--since`` (the model's config names an event log), against the full run.

Sizes: the Parquet and CSV records run at ``Sizes.stream`` leads (10,000,000 in a full run).
``LEAD_SCORING_BENCH_CLI=parquet,csv`` (the default: both) picks the groups of records to
measure; the records of a group left out stay as they are in results.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import run as bench

PART = "scoring_cli"
MODEL = "bench-cli"
SINCE = "2025-01-01"
CHANGED_SHARE = 0.01


def _floor_code(fmt: str) -> str:
    read = ("import pyarrow.parquet as pq\nt = pq.read_table(src, columns=cols)\n"
            if fmt == "parquet" else
            "import pyarrow.csv as pc\nt = pc.read_csv(src, convert_options="
            "pc.ConvertOptions(include_columns=cols))\n")
    write = ("pq.write_table(out, dst)\n" if fmt == "parquet" else
             "pc.write_csv(out, dst)\n")
    return ("import sys\nimport numpy as np\nimport pyarrow as pa\n"
            "src, dst = sys.argv[1], sys.argv[2]\ncols = sys.argv[3].split(',')\n" + read +
            "n = t.num_rows\nz = np.zeros(n, dtype=np.int64)\n"
            "out = pa.table({cols[0]: t[cols[0]], 'points': z, 'fit': z, 'pain': z, "
            "'probability': np.zeros(n), 'sdr_ready': np.zeros(n, dtype=bool)})\n" + write)


def write_leads_with_created(path: Path, n: int, *, chunk: int = 1_000_000) -> Path:
    """The benchmark's leads plus ``created_at`` (all in 2023, before ``--since``)."""
    import pyarrow as pa

    base = np.datetime64("2023-01-01T00:00:00", "us").astype(np.int64)
    rng = np.random.default_rng(5)

    def with_created(table: pa.Table) -> pa.Table:
        stamps = base + rng.integers(0, 300 * 86_400_000_000, table.num_rows)
        return table.append_column("created_at", pa.array(stamps, pa.timestamp("us")))

    return bench.write_tables(path, (
        with_created(bench.lead_chunk(min(chunk, n - start), seed=k, start=start))
        for k, start in enumerate(range(0, n, chunk))))


def write_recent_events(path: Path, n_leads: int, *, old_per_lead: float = 0.2) -> Path:
    """Events in 2024 for a fifth of the leads, and one event after ``--since`` for 1%."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    n_old, n_new = int(n_leads * old_per_lead), int(n_leads * CHANGED_SHARE)
    leads = np.concatenate([rng.integers(0, n_leads, n_old),
                            rng.choice(n_leads, n_new, replace=False)])
    old = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    new = np.datetime64("2025-03-01T00:00:00", "us").astype(np.int64)
    day = 86_400_000_000
    stamps = np.concatenate([old + rng.integers(0, 300 * day, n_old),
                             new + rng.integers(0, 30 * day, n_new)])
    ids = pc.binary_join_element_wise(
        "L", pc.utf8_lpad(pc.cast(pa.array(leads), pa.string()), 9, "0"), "")
    table = pa.table({"lead_id": ids, "event": pa.array(["login"] * len(leads)),
                      "timestamp": pa.array(stamps, pa.timestamp("us"))})
    pq.write_table(table, path)
    return path


def register(rules: Any, sample: pd.DataFrame, store: Path, events: Path, leads: Path) -> Path:
    """The points table as version 1 of ``bench-cli`` in a store of its own, and the config
    that scores with it (an event log, so ``--since`` knows which leads changed)."""
    from dataclasses import replace

    import yaml

    from pipeline.inputs.features import FeatureSettings
    from pipeline.registry import store as registry

    store.mkdir(parents=True, exist_ok=True)
    settings = {
        "name": "bench_cli", "root": str(bench.REPO), "model_name": MODEL, "seed": 0,
        "data": {"leads": str(leads), "events": str(events), "id_column": bench.ID,
                 "created_at_column": "created_at", "missing_values": [""]},
        "label": {"column": bench.LABEL, "positive": ["won"], "negative": ["lost"]},
        "columns": {"fit": bench.CATEGORICALS, "pain": bench.NUMERICS},
        "events": {"groups": {"product": ["login"]}},
        "registry": {"tracking_uri": f"sqlite:///{store / 'mlflow.db'}",
                     "artifact_location": str(store / "artifacts")},
    }
    config = store / "config.yaml"
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    registry.connect(settings["registry"]["tracking_uri"], experiment="bench-cli",
                     artifact_location=settings["registry"]["artifact_location"])
    # half-lives make the model read the event log (for --since); no event factor is scored
    rules = replace(rules, decay_half_life_days={"product": 30.0})
    artifacts = store / "run"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "config.json").write_text(json.dumps(settings))
    (artifacts / registry.RULES_FILE).write_text(rules.to_json())
    registry.log_training(model_name=MODEL, params={}, metrics={}, tags={},
                          artifact_dir=artifacts, rules=rules,
                          feature_settings=FeatureSettings(id_column=bench.ID,
                                                           missing_values=[""]),
                          input_example=sample[bench.FACTORS + [bench.ID]].head(5))
    return config


def _alternating(runs: dict[str, list[str]], repeats: int, n: int,
                 extras: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    done: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, argv in runs.items():
            done[name].append(bench._run_child_once(name, argv, bench.REPO))
    return [bench._child_record(name, n, infos, **extras.get(name, {}))
            for name, infos in done.items()]


def _score_argv(config: Path, source: Path, out: Path, *extra: str) -> list[str]:
    cli = str(Path(sys.executable).with_name("lead-scoring"))
    return [cli, "score", "--config", str(config), "--model", f"{MODEL}/1", "--input",
            str(source), "--output", str(out), "--rejects",
            str(out.with_name(out.stem + "_rejects.csv")), *extra]


def bench_cli(sizes: bench.Sizes, rules: Any, sample: pd.DataFrame, scratch: Path
              ) -> list[dict[str, Any]]:
    """Every record of the part (``scratch``: the run's scratch folder)."""
    tmp = scratch / "cli"
    tmp.mkdir(parents=True, exist_ok=True)
    n = n_csv = sizes.stream
    groups = set(os.environ.get("LEAD_SCORING_BENCH_CLI", "parquet,csv").split(","))
    repeats = 3 if sizes.spark else 1  # --quick: one run each (a smoke test)
    leads = (write_leads_with_created(tmp / "leads.parquet", n) if "parquet" in groups
             else tmp / "leads.parquet")  # the config names it; the CSV runs read the CSV
    events = write_recent_events(tmp / "events.parquet", n)
    config = register(rules, sample, tmp / "store", events, leads)
    columns = ",".join([bench.ID, *bench.FACTORS])
    records = []
    if "parquet" in groups:
        records += _parquet_records(tmp, leads, config, columns, n, repeats)
    leads.unlink(missing_ok=True)
    if "csv" in groups:
        records += _csv_records(tmp, config, columns, n_csv, repeats)
    return records


def _parquet_records(tmp: Path, leads: Path, config: Path, columns: str, n: int,
                     repeats: int) -> list[dict[str, Any]]:
    """The floor, the full runs and the incremental run, Parquet -> Parquet."""
    records = []
    print(f"- lead-scoring score, {n:,} leads Parquet -> Parquet", flush=True)
    what = "lead-scoring score --model, a process: start-up, registry, read, score, write"
    records += _alternating({
        "io_floor_parquet": [sys.executable, "-c", _floor_code("parquet"), str(leads),
                             str(tmp / "floor.parquet"), columns],
        "score_cli_parquet_reasons": _score_argv(config, leads, tmp / "out.parquet"),
        "score_cli_parquet_no_reasons": _score_argv(config, leads, tmp / "out_nr.parquet",
                                                    "--no-reasons"),
        "score_cli_incremental": _score_argv(config, leads, tmp / "inc.parquet",
                                             "--since", SINCE),
    }, repeats, n, {
        "io_floor_parquet": {"what": "pyarrow reads id + 20 factor columns, writes id + 5 "
                                     "score columns (a process)"},
        "score_cli_parquet_reasons": {"what": what + ", reason codes (list of dictionary-"
                                              "encoded pieces)"},
        "score_cli_parquet_no_reasons": {"what": what + ", --no-reasons"},
        "score_cli_incremental": {"what": f"score --since {SINCE}: {CHANGED_SHARE:.0%} of "
                                          "the leads have an event after it",
                                  "changed": int(n * CHANGED_SHARE)},
    })
    for name in ("out.parquet", "out_nr.parquet", "inc.parquet", "floor.parquet"):
        (tmp / name).unlink(missing_ok=True)
    return records


def _csv_records(tmp: Path, config: Path, columns: str, n_csv: int, repeats: int
                 ) -> list[dict[str, Any]]:
    """The floor and the full runs, CSV -> CSV."""
    what = "lead-scoring score --model, a process: start-up, registry, read, score, write"
    csv = write_leads_with_created(tmp / "leads.csv", n_csv)
    print(f"- lead-scoring score, {n_csv:,} leads CSV -> CSV", flush=True)
    records = _alternating({
        "io_floor_csv": [sys.executable, "-c", _floor_code("csv"), str(csv),
                         str(tmp / "floor.csv"), columns],
        "score_cli_csv_reasons": _score_argv(config, csv, tmp / "out.csv"),
        "score_cli_csv_no_reasons": _score_argv(config, csv, tmp / "out_nr.csv",
                                                "--no-reasons"),
    }, repeats, n_csv, {
        "io_floor_csv": {"what": "pyarrow's CSV reader (id + 20 factor columns) and writer "
                                 "(id + 5 score columns), a process"},
        "score_cli_csv_reasons": {"what": what + ", CSV -> CSV, reason codes as text"},
        "score_cli_csv_no_reasons": {"what": what + ", CSV -> CSV, --no-reasons"},
    })
    csv.unlink()
    for name in ("out.csv", "out_nr.csv", "floor.csv"):
        (tmp / name).unlink(missing_ok=True)
    return records


def bench_pyfunc_part(sizes: bench.Sizes, rules: Any, sample: pd.DataFrame, scratch: Path
                      ) -> list[dict[str, Any]]:
    """Part ``pyfunc``: the same model registered in a store of its own, then
    :func:`bench_pyfunc` (a minute, where part ``scoring_cli`` takes many)."""
    tmp = scratch / "pyfunc"
    tmp.mkdir(parents=True, exist_ok=True)
    events = write_recent_events(tmp / "events.parquet", 1000)
    register(rules, sample, tmp / "store", events, tmp / "leads.parquet")
    return bench_pyfunc(sizes, rules, tmp)


def bench_pyfunc(sizes: bench.Sizes, rules: Any, tmp: Path) -> list[dict[str, Any]]:
    """The registered model's ``predict`` against ``score_frame(reasons=True)`` on the same
    in-memory frame (the frame as read from Parquet), calls alternating."""
    import mlflow.pyfunc

    from pipeline.scoring.frame import score_frame

    n = sizes.score[0]
    path = bench.write_leads(tmp / "pyfunc_leads.parquet", n, seed=21)
    frame = bench.read_leads(path)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/1")
    print(f"- pyfunc predict vs score_frame, {n:,} leads in memory", flush=True)
    inner = model.unwrap_python_model()
    records = bench.measure_side_by_side(
        n, {"score_frame_reasons": lambda: score_frame(rules, frame, reasons=True),
            "pyfunc_predict_reasons": lambda: model.predict(frame),
            "pyfunc_predict_reasons_unwrapped": lambda: inner.predict(None, frame)},
        3 if sizes.spark else 1,
        {"score_frame_reasons": {"what": "score_frame(reasons=True) on the frame read from "
                                         "Parquet"},
         "pyfunc_predict_reasons": {"what": "mlflow.pyfunc.load_model(...).predict(frame): "
                                            "MLflow's wrapper (a signature without input "
                                            "schema: no per-value check), feature builder, "
                                            "reason codes"},
         "pyfunc_predict_reasons_unwrapped": {
             "what": "the same model's own predict (unwrap_python_model()): without "
                     "MLflow's wrapper"}})
    got, want = model.predict(frame), score_frame(rules, frame, reasons=True)
    same = all(got[c].tolist() == want[c].tolist()
               for c in ("points", "fit", "pain", "sdr_ready", "reason_codes"))
    for record in records:
        if record["name"].startswith("pyfunc_"):
            record["same_scores_as_score_frame"] = same
    path.unlink()
    return records


def targets(records: list[dict[str, Any]]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each target of this part."""
    def get(name: str) -> dict[str, Any] | None:
        return next((r for r in records if r["name"] == name and r.get("median_s")), None)

    out = []
    checks = [("score_cli_parquet_reasons", "io_floor_parquet", 3.0, "Parquet, reason codes"),
              ("score_cli_parquet_no_reasons", "io_floor_parquet", 2.0, "Parquet, --no-reasons"),
              ("score_cli_csv_reasons", "io_floor_csv", 3.0, "CSV, reason codes"),
              ("score_cli_csv_no_reasons", "io_floor_csv", 3.0, "CSV, --no-reasons")]
    for name, floor_name, limit, label in checks:
        rec, floor = get(name), get(floor_name)
        if rec and floor:
            r = rec["median_s"] / floor["median_s"]
            out.append((f"lead-scoring score within {limit:g}x of the I/O floor ({label}, "
                        f"{rec['n_rows']:,} leads, processes)",
                        f"{r:.2f}x ({rec['median_s']:.1f} s vs {floor['median_s']:.1f} s)",
                        r <= limit))
    pyf, sf = get("pyfunc_predict_reasons"), get("score_frame_reasons")
    inner = get("pyfunc_predict_reasons_unwrapped")
    if pyf and sf:
        r = pyf["median_s"] / sf["median_s"]
        note = (f"; the model's own predict (unwrap_python_model()): "
                f"{inner['median_s'] / sf['median_s']:.2f}x" if inner else "")
        out.append((f"pyfunc predict within 2x of score_frame with reason codes "
                    f"({pyf['n_rows']:,} leads)", f"{r:.2f}x{note}", r <= 2))
    inc, full = get("score_cli_incremental"), get("score_cli_parquet_reasons")
    if inc and full:
        r = inc["median_s"] / full["median_s"]
        out.append((f"score --since with {CHANGED_SHARE:.0%} of {inc['n_rows']:,} leads changed "
                    "at most 20% of the full run", f"{r:.0%} of the full run "
                    f"({inc['median_s']:.1f} s vs {full['median_s']:.1f} s)", r <= 0.2))
    for name in ("score_cli_parquet_reasons", "score_cli_parquet_no_reasons"):
        rec = get(name)
        if rec:
            out.append((f"{name} ({rec['n_rows']:,} leads): peak < 2 GB",
                        f"{rec['peak_rss_mb']:.0f} MB", rec["peak_rss_mb"] < 2048))
    return out
