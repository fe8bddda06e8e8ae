"""Events on Spark: ``events.engine: spark`` gives the features DuckDB gives.

The references: DuckDB's features (unchanged by the engine layer) and, for the SQL runner, a
plain pandas computation. Spark tests share one local session (``local[2]``) and are skipped,
with the reason, when it cannot start; they carry the ``spark`` marker (from the fixture).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import main as cli
from pipeline.config import load_config
from pipeline.errors import UserError
from pipeline.inputs.event_engines import Dialect, run_event_sql
from pipeline.inputs.events import aggregate_events, decayed_counts_as_of

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning",
)
HALF_LIVES = {"product": 7.0, "non_product": 14.0, "trivial": 3.0}


def _demo_snapshots(demo_dir: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    cfg = load_config(REPO / "configs" / "demo.yaml", data=demo_dir / "leads.csv")
    leads = pd.read_csv(demo_dir / "leads.csv")
    created = pd.to_datetime(leads["created_at"])
    snaps = pd.DataFrame({"lead_id": leads["lead_id"], "created_at": leads["created_at"],
                          "snapshot_at": created + pd.Timedelta(days=30)})
    return snaps, cfg.events.event_to_group


def assert_same_features(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same columns in order, same dtypes, counts equal, floats equal to 1e-12 relative."""
    assert list(a.columns) == list(b.columns)
    assert list(a.dtypes) == list(b.dtypes)
    assert a.index.equals(b.index)
    for col in a.columns:
        if a[col].dtype.kind == "f":
            np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-12,
                                       atol=1e-12, err_msg=col)
            assert (a[col].isna() == b[col].isna()).all(), col
        else:
            assert a[col].equals(b[col]), col


# --------------------------------------------------------------------------- no Spark needed


def test_engine_key_defaults_to_duckdb_and_refuses_others(tmp_path: Path):
    cfg = load_config(REPO / "configs" / "demo.yaml")
    assert (cfg.events.engine, cfg.events.master) == ("duckdb", None)
    spark_cfg = load_config(REPO / "configs" / "demo.yaml",
                            overrides={"events": {"engine": "spark", "master": "local[2]"}})
    assert (spark_cfg.events.engine, spark_cfg.events.master) == ("spark", "local[2]")
    with pytest.raises(UserError, match="events.engine"):
        load_config(REPO / "configs" / "demo.yaml", overrides={"events": {"engine": "flink"}})
    with pytest.raises(UserError, match="events.engine: must be one of duckdb, spark"):
        aggregate_events(pd.DataFrame(columns=["lead_id", "event", "timestamp"]),
                         pd.DataFrame(columns=["lead_id", "created_at", "snapshot_at"]),
                         event_groups={}, half_lives={}, engine="flink")


def test_master_option_sets_events_master():
    cfg = load_config(REPO / "configs" / "demo.yaml")
    assert cli.with_master(cfg, None) is cfg
    assert cli.with_master(cfg, "local[3]").events.master == "local[3]"
    assert cli.with_master(cfg, "local[3]").events.groups == cfg.events.groups


def test_dialects_spell_the_differences():
    duck, spark = Dialect("duckdb"), Dialect("spark")
    assert duck.ident('a"b') == '"a""b"' and spark.ident("a`b") == "`a``b`"
    assert spark.broadcast("s") == "/*+ BROADCAST(s) */" and duck.broadcast("s") == ""
    assert duck.days_between("a", "b") == "date_diff('day', a, b)"
    assert spark.days_between("a", "b") == "datediff(b, a)"
    assert "date_diff" in duck.micros_between("a", "b")
    assert spark.micros_between("a", "b") == "(unix_micros(b) - unix_micros(a))"


def _window_counts_reference(events: pd.DataFrame, as_of: pd.Timestamp, days: int
                             ) -> pd.Series:
    """Slow obvious reference: events per lead in ``(as_of - days, as_of]``."""
    stamps = pd.to_datetime(events["timestamp"], errors="coerce", utc=True, format="mixed")
    stamps = stamps.dt.tz_localize(None)
    inside = (stamps > as_of - pd.Timedelta(days=days)) & (stamps <= as_of)
    return events[inside.to_numpy()].groupby("lead_id").size()


WINDOW_SQL = """
SELECT lead_id,
       count(*) FILTER (WHERE {age} < {window}) AS n_window
FROM events
WHERE lead_id IS NOT NULL AND {ts} IS NOT NULL AND {ts} <= (SELECT max(as_of) FROM cutoff)
GROUP BY lead_id
ORDER BY lead_id
"""


def _window_sql(dialect: Dialect, days: int) -> str:
    ts = dialect.ident("timestamp")
    age = dialect.micros_between(ts, "(SELECT max(as_of) FROM cutoff)")
    # (as_of - days, as_of]: age in [0, days) in microseconds
    return WINDOW_SQL.format(age=age, window=days * 86_400_000_000, ts=ts)


def _messy_events() -> pd.DataFrame:
    return pd.DataFrame({
        "lead_id": ["a", "a", "a", "b", "b", "c", "a", "b"],
        "event": ["login", "login", "Email Open", "login", None, "it's", "login", "login"],
        "timestamp": ["2025-01-10T10:00:00", "2025-01-20T23:30:00-02:00", "2025-01-25",
                      "2024-12-01 08:00:00", "2025-01-29T00:00:00Z", "not a time",
                      "2025-02-05T00:00:00", "2025-01-31T00:00:00"],
    })


def test_run_event_sql_on_duckdb_matches_a_pandas_reference():
    events = _messy_events()
    as_of = pd.Timestamp("2025-01-31")
    got = run_event_sql(_window_sql(Dialect("duckdb"), 10), events,
                        tables={"cutoff": pd.DataFrame({"as_of": [as_of]})})
    want = _window_counts_reference(events, as_of, 10)
    assert dict(zip(got["lead_id"], got["n_window"], strict=True)) == \
        {k: int(want.get(k, 0)) for k in got["lead_id"]}
    assert got["lead_id"].tolist() == ["a", "b"]  # c's only event has no time


def test_bench_comparison_flags_any_difference():
    from bench.spark_events import compare_features

    a = pd.DataFrame({"lead_id": ["x", "y"], "n_login": [1, 2], "decayed": [0.5, np.nan]})
    assert compare_features(a, a.copy()) == {"identical": True, "max_rel_diff": 0.0}
    close = a.assign(decayed=[0.5 + 1e-15, np.nan])
    assert compare_features(a, close)["identical"]
    assert not compare_features(a, a.assign(decayed=[0.5001, np.nan]))["identical"]
    assert not compare_features(a, a.assign(decayed=[0.5, 1.0]))["identical"]
    assert not compare_features(a, a.assign(n_login=[1, 3]))["identical"]
    assert not compare_features(a, a[["lead_id", "decayed", "n_login"]])["identical"]


# --------------------------------------------------------------------------- Spark


def test_run_event_sql_gives_the_same_rows_on_spark(spark):
    events = _messy_events()
    tables = {"cutoff": pd.DataFrame({"as_of": [pd.Timestamp("2025-01-31")]})}
    duck = run_event_sql(_window_sql(Dialect("duckdb"), 10), events, tables=tables)
    on_spark = run_event_sql(_window_sql(Dialect("spark"), 10), events, engine="spark",
                             tables=tables)
    pd.testing.assert_frame_equal(duck.astype({"n_window": "int64"}),
                                  on_spark.astype({"n_window": "int64"}), check_dtype=False)


def test_demo_event_features_identical_on_duckdb_and_spark(spark, demo_dir: Path):
    snaps, groups = _demo_snapshots(demo_dir)
    kwargs = dict(event_groups=groups, half_lives=HALF_LIVES,
                  extra_half_life_grid={"product": [1, 3, 30], "trivial": [2]})
    duck = aggregate_events(demo_dir / "events.csv", snaps, **kwargs)
    on_spark = aggregate_events(demo_dir / "events.csv", snaps, engine="spark", **kwargs)
    assert duck.diagnostics == on_spark.diagnostics
    assert duck.diagnostics["events_used"] > 10_000
    assert_same_features(duck.features, on_spark.features)
    assert (duck.features["n_login"] > 0).sum() > 100  # the demo has the events it should


def test_demo_crm_counts_identical_on_duckdb_and_spark(spark, demo_dir: Path):
    """The CRM representation's counts (``events.representation: crm``): one SQL text, the
    same integers on both engines, for every candidate window, cap and velocity span."""
    from pipeline.inputs.crm_events import candidate_specs, count_events

    cfg = load_config(REPO / "configs" / "demo.yaml", data=demo_dir / "leads.csv")
    snaps, _ = _demo_snapshots(demo_dir)
    groups = {g: list(v) for g, v in cfg.events.groups.items()}
    specs = candidate_specs(groups, windows=[7, 30, 90], velocity_days=[3, 14],
                            key_group=cfg.events.key_group)
    duck = count_events(demo_dir / "events.csv", snaps, specs)
    on_spark = count_events(demo_dir / "events.csv", snaps, specs, engine="spark")
    assert_same_features(duck, on_spark)
    assert int(duck.drop(columns="lead_id").to_numpy().sum()) > 10_000


def test_messy_log_identical_on_both_engines(spark):
    """Offsets, unparseable times, unknown leads, events before creation / after the
    snapshot, an unmapped name with a quote, names that slugify together."""
    events = pd.concat([_messy_events(), pd.DataFrame({
        "lead_id": ["zz", "a", "a", "b"], "event": ["login", "email_open", "webinar", "login"],
        "timestamp": ["2025-01-15", "2025-01-30T12:00:00.123456", "2024-12-31T23:59:59",
                      "2025-01-30T23:59:59.999999+00:00"]})], ignore_index=True)
    snaps = pd.DataFrame({"lead_id": ["a", "b", "c"],
                          "created_at": ["2025-01-01", "2025-01-02T00:00:00", "2025-01-03"],
                          "snapshot_at": pd.to_datetime(["2025-02-01", "2025-01-31",
                                                         "2025-02-01"])})
    kwargs = dict(event_groups={"login": "product", "webinar": "non_product"},
                  half_lives={"product": 5.0, "other": 2.0}, windows=(7, 30))
    duck = aggregate_events(events, snaps, **kwargs)
    on_spark = aggregate_events(events, snaps, engine="spark", **kwargs)
    assert duck.diagnostics == on_spark.diagnostics
    assert duck.diagnostics["unparseable_timestamps"] == 1
    assert duck.diagnostics["events_unknown_lead"] == 1
    assert "n_email_open" in duck.features  # "Email Open" and "email_open" add up
    assert "n_it_s" not in duck.features  # c's only event has no time: never used
    assert_same_features(duck.features, on_spark.features)
    as_of = dict(event_groups=kwargs["event_groups"], half_lives={"product": 5.0},
                 as_of="2025-01-31T12:00:00+01:00")
    leads = snaps[["lead_id", "created_at"]]
    assert_same_features(decayed_counts_as_of(events, leads, **as_of).features,
                         decayed_counts_as_of(events, leads, engine="spark", **as_of).features)


def _engine_config(folder: Path, demo_dir: Path, engine: str) -> Path:
    settings = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    settings["root"] = str(REPO)
    settings["data"].update(leads=str(demo_dir / "leads.csv"),
                            events=str(demo_dir / "events.csv"))
    settings["events"]["engine"] = engine
    settings["registry"] = {"tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
                            "artifact_location": str(folder / "artifacts")}
    path = folder / "demo.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


@pytest.mark.training
def test_spark_engine_config_trains_and_scores_the_same_points(
        spark, demo_dir: Path, tmp_path: Path, mlflow_db_template: Path):
    tables, scored = {}, {}
    for engine in ("duckdb", "spark"):
        folder = tmp_path / engine
        folder.mkdir()
        shutil.copyfile(mlflow_db_template, folder / "mlflow.db")
        config = _engine_config(folder, demo_dir, engine)
        result = CliRunner().invoke(cli.app, ["train", "--config", str(config), "--out",
                                              str(folder / "out"), "--master", "local[2]"])
        assert result.exit_code == 0, result.output
        tables[engine] = pd.read_csv(folder / "out" / "points_table.csv")
        scored[engine] = pd.read_csv(folder / "out" / "scored_leads.csv")
    factors = tables["duckdb"]["factor"].astype(str)  # event factors, either representation
    assert (factors.str.startswith(("decayed_", "velocity_", "days_"))
            | factors.str.contains("_events_")).any()
    pd.testing.assert_frame_equal(tables["duckdb"], tables["spark"], check_exact=False,
                                  rtol=1e-12)
    assert len(scored["duckdb"]) == 3000
    pd.testing.assert_frame_equal(scored["duckdb"], scored["spark"], check_exact=False,
                                  rtol=1e-12)
