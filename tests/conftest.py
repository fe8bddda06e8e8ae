"""Shared fixtures: small seeded demo data, configs pointing at temporary stores, the real data."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# the real X Education file beside the repo; LEAD_SCORING_X_EDUCATION names another copy
SHARED_DATA = Path(os.environ.get("LEAD_SCORING_X_EDUCATION",
                                  REPO.parent / "shared" / "data" / "x_education_leads.csv"))

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

# a test that asks for one of these fixtures gets the marker (``make test-fast`` leaves
# them out): the marker follows what the test needs, wherever the test is written
FIXTURE_MARKERS = {"spark": "spark", "server": "server", "postgres": "server",
                   "shared_data": "real_data"}
# fixtures that train through the command line, named with their module (names repeat)
TRAINING_FIXTURES = {("test_engines", "demo_model"), ("test_predict", "trained"),
                     ("test_registry", "store"), ("test_pipeline_e2e", "trained_demo"),
                     ("test_crm_scoring", "crm_store"), ("test_raw_predict", "demo_store"),
                     ("test_bad_inputs", "model_config"), ("test_faults", "race")}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with what its fixtures start, read or train (see
    :data:`FIXTURE_MARKERS`, :data:`TRAINING_FIXTURES`)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for fixture in fixtures & set(FIXTURE_MARKERS):
            item.add_marker(FIXTURE_MARKERS[fixture])
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if {(module, f) for f in fixtures} & TRAINING_FIXTURES:
            item.add_marker("training")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    """The MLflow schema template is cached in a folder of the session, not the home dir."""
    from pipeline.registry.store_template import CACHE_ENV

    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = previous


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own MLflow store: nothing scatters into the repo or the home dir."""
    store = tmp_path_factory.mktemp("mlruns")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
    yield


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 demo leads with events and truth.json, generated once per session."""
    from pipeline.inputs.demo_data import generate_demo_data, write_demo_data

    out = tmp_path_factory.mktemp("demo")
    write_demo_data(generate_demo_data(n_leads=3000, seed=7), out)
    return out


@pytest.fixture(scope="session")
def demo_features(demo_dir: Path):
    """The demo config and features (fixed half-lives: no decay search), built once."""
    from pipeline.config import load_config
    from pipeline.inputs.features import build_features
    from pipeline.inputs.reader import read_table
    from pipeline.inputs.validate import validate_leads

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml",
                      data=demo_dir / "leads.csv")
    leads = validate_leads(read_table(demo_dir / "leads.csv").frame, cfg, source="demo",
                           training=True)
    features = build_features(leads, cfg, events=demo_dir / "events.csv",
                              half_lives={"product": 7.0, "non_product": 14.0, "trivial": 3.0})
    return cfg, features


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real X Education file from ../shared/data (skipped when absent)."""
    if not SHARED_DATA.exists():
        pytest.skip(f"real dataset not found at {SHARED_DATA} (../shared is not beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised, empty MLflow sqlite store: creating one takes ~10 s, copying it none."""
    from pipeline.registry import store as registry

    folder = tmp_path_factory.mktemp("mlflow-template")
    registry.connect(f"sqlite:///{folder / 'mlflow.db'}")
    import mlflow

    mlflow.search_experiments()
    return folder / "mlflow.db"


@pytest.fixture
def make_config(tmp_path: Path, mlflow_db_template: Path) -> Callable[..., Path]:
    """Write a config derived from a shipped one, with its MLflow store under tmp_path.

    ``make_config("demo", data_dir=demo_dir, points={"pdo": 40})`` returns the YAML path.
    """

    def make(base: str = "demo", *, data_dir: Path | None = None, leads: Path | None = None,
             **overrides: Any) -> Path:
        settings = yaml.safe_load((REPO / "configs" / f"{base}.yaml").read_text())
        settings["root"] = str(REPO)
        if data_dir is not None:
            settings["data"]["leads"] = str(data_dir / "leads.csv")
            if settings["data"].get("events"):
                settings["data"]["events"] = str(data_dir / "events.csv")
        if leads is not None:
            settings["data"]["leads"] = str(leads)
        if not (tmp_path / "mlflow.db").exists():
            shutil.copyfile(mlflow_db_template, tmp_path / "mlflow.db")
        settings.setdefault("registry", {})
        settings["registry"]["tracking_uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
        settings["registry"]["artifact_location"] = str(tmp_path / "artifacts")
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(settings.get(key), dict):
                settings[key].update(value)
            else:
                settings[key] = value
        path = tmp_path / f"{base}.yaml"
        path.write_text(yaml.safe_dump(settings, sort_keys=False))
        return path

    return make


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession for the whole run (UI off, UTC, 2 shuffle partitions): start-up
    costs ~20 s on two cores, so every Spark test shares it. Skipped, with the reason, when
    pyspark or Java is missing or the session cannot start. Tests asking for it get the
    ``spark`` marker (:data:`FIXTURE_MARKERS`)."""
    import sys

    try:
        from pyspark.sql import SparkSession
    except ImportError as err:
        pytest.skip(f"pyspark does not import: {err}")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs a Java runtime: no java on PATH and JAVA_HOME unset")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers need this venv's pandas
    try:
        session = (SparkSession.builder.master("local[2]").appName("lead-scoring-tests")
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.session.timeZone", "UTC")
                   .config("spark.sql.shuffle.partitions", "2")
                   .config("spark.driver.memory", "1g").getOrCreate())
    except Exception as exc:  # Java missing, port clash, ...: the reason is the message
        pytest.skip(f"pyspark cannot start a local session: {exc}")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
