"""Train, promote, score and read the history against a real ``mlflow server`` (its own
temporary sqlite backend and artifact folder, artifacts proxied through the server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import invoke

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    log = open(folder / "server.log", "w")  # noqa: SIM115 - closed in the teardown
    proc = subprocess.Popen(
        [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'db.sqlite'}",
         "--artifacts-destination", str(folder / "artifacts"), "--serve-artifacts"],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""})
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"mlflow server did not start: {(folder / 'server.log').read_text()}")
            time.sleep(0.5)
        yield uri, folder
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()




def test_train_promote_score_history_against_a_tracking_server(server, demo_dir, tmp_path):
    import mlflow

    from pipeline.registry import aliases
    from pipeline.registry import store as registry
    from pipeline.scoring.serving import SCORE_COLUMNS

    uri, folder = server
    settings = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    settings["root"] = str(REPO)
    settings["data"]["leads"] = str(demo_dir / "leads.csv")
    settings["data"]["events"] = str(demo_dir / "events.csv")
    settings["events"]["half_life_grid"] = [7]
    settings["model"] = {"c_grid": [0.3], "cv_folds": 3}
    settings["registry"] = {"tracking_uri": uri,
                            "artifact_location": str(tmp_path / "must-not-be-used")}
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(settings, sort_keys=False))

    first = invoke(["train", "--config", str(config), "--no-score", "--out", str(tmp_path / "a")])
    assert "first champion" in first.output
    second = invoke(["train", "--config", str(config), "--no-score", "--out", str(tmp_path / "b")])
    assert "gate:" in second.output
    invoke(["promote", "1", "--config", str(config), "--reason", "server test"])
    history = invoke(["history", "--config", str(config)])
    assert "lead-scoring: 2 versions" in history.output

    registry.connect(uri)
    experiment = mlflow.get_experiment_by_name("lead-scoring")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    assert not (tmp_path / "must-not-be-used").exists()
    assert any((folder / "artifacts").rglob("points_rules.json"))  # stored by the server
    log = aliases.audit_log("lead-scoring")
    last = log[log["alias"] == "champion"].iloc[-1]
    assert (last["version"], last["reason"]) == ("1", "explicit: server test")

    out = tmp_path / "scored.csv"
    invoke(["score", "--config", str(config), "--output", str(out)])
    scored = pd.read_csv(out)
    assert len(scored) == 3000

    model = mlflow.pyfunc.load_model("models:/lead-scoring@champion")
    # the input example is raw leads; an event model takes the event log as a param
    scores = model.predict(model.input_example, params={"events": str(demo_dir / "events.csv")})
    assert list(scores.columns) == SCORE_COLUMNS and len(scores) == len(model.input_example)
