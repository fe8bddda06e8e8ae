"""The registered pyfunc model scores raw leads as the README shows, exactly like ``score``.

``mlflow.pyfunc.load_model(...).predict(leads_df)`` gets the leads as ``pd.read_csv`` gives
them (integers, floats, text, gaps) and, for a model with event factors, the event log as the
``events`` param. The points of every lead are those ``lead-scoring score`` writes for it,
because both go through the one feature builder (:func:`pipeline.inputs.features.scoring_features`).
The demo model is trained with ``derived.spam_gate: true``, so the same runs check that the
gate is in the points table and that ``score``, the pyfunc model and ``verify-export`` (SQL,
PMML, Python exports) agree on ``sdr_ready`` for spam leads too.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import main as cli
from pipeline.config import load_config
from pipeline.inputs.features import MissingEventsError
from pipeline.model.rules import PointsRules
from pipeline.registry import store as registry
from pipeline.scoring.serving import SCORE_COLUMNS

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli.app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def _train_and_score(config: Path, tmp: Path) -> tuple[PointsRules, pd.DataFrame, object]:
    """Train (registers v1), score the config's leads with it; (rules, scores by id, model)."""
    cfg = load_config(config)
    _cli("train", "--config", config, "--no-score", "--out", tmp / "out")
    model_ref = f"{cfg.model_name}/1"
    _cli("score", "--config", config, "--model", model_ref, "--output", tmp / "scored.csv")
    scored = pd.read_csv(tmp / "scored.csv", dtype={cfg.data.id_column: str})
    registry.connect(cfg.registry.tracking_uri, experiment=cfg.experiment_name,
                     artifact_location=cfg.registry.artifact_location)
    model = mlflow.pyfunc.load_model(f"models:/{model_ref}")
    rules = registry.load_rules(registry.resolve(model_ref))
    return rules, scored.set_index(cfg.data.id_column), model


def _assert_same_scores(raw: pd.DataFrame, predicted: pd.DataFrame, scored: pd.DataFrame,
                        id_column: str) -> None:
    """Every lead ``score`` scored gets the same points, fit, pain, sdr_ready and grade."""
    assert list(predicted.columns) == SCORE_COLUMNS and len(predicted) == len(raw)
    predicted = predicted.set_index(raw[id_column].astype(str).to_numpy())
    predicted = predicted.loc[scored.index]
    for column in ("points", "fit", "pain"):
        assert predicted[column].astype(int).tolist() == scored[column].astype(int).tolist()
    assert predicted["sdr_ready"].astype(bool).tolist() == scored["sdr_ready"].astype(bool).tolist()
    if "grade" in scored.columns:
        assert predicted["grade"].astype(str).tolist() == scored["grade"].astype(str).tolist()


@pytest.fixture(scope="module")
def demo_store(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The demo model trained with the spam gate on, in a store of its own; (config, ...)."""
    import yaml

    tmp = tmp_path_factory.mktemp("raw_predict_demo")
    settings = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    settings["root"] = str(REPO)
    settings["data"].update(leads=str(demo_dir / "leads.csv"), events=str(demo_dir / "events.csv"))
    settings["derived"]["spam_gate"] = True
    settings["events"]["half_life_grid"] = [3, 7, 14]
    settings["events"]["representation"] = "decayed"  # the CRM one: tests/test_crm_scoring.py
    settings["registry"] = {"tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}",
                            "artifact_location": str(tmp / "artifacts")}
    config = tmp / "demo.yaml"
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    return (config, *_train_and_score(config, tmp))


def test_demo_model_scores_raw_leads_and_events_like_score(demo_store, demo_dir):
    config, rules, scored, model = demo_store
    cfg = load_config(config)
    assert any(name.startswith("decayed_") for name in rules.factor_names())
    raw = pd.read_csv(demo_dir / "leads.csv")
    predicted = model.predict(raw, params={"events": str(demo_dir / "events.csv")})
    _assert_same_scores(raw, predicted, scored, cfg.data.id_column)
    assert len(scored) == len(raw)


def test_dict_form_with_an_events_frame_scores_like_score(demo_store, demo_dir):
    """``predict({"leads": leads_df, "events": events_df})`` through MLflow's loaded model
    gives every lead the points ``lead-scoring score`` wrote, as the ``events`` param does."""
    config, _, scored, model = demo_store
    cfg = load_config(config)
    raw = pd.read_csv(demo_dir / "leads.csv")
    events = pd.read_csv(demo_dir / "events.csv")
    predicted = model.predict({"leads": raw, "events": events})
    _assert_same_scores(raw, predicted, scored, cfg.data.id_column)
    by_path = model.predict(raw, params={"events": str(demo_dir / "events.csv")})
    pd.testing.assert_frame_equal(predicted, by_path)


def test_dict_form_without_events_still_names_what_to_pass(demo_store, demo_dir):
    _, _, _, model = demo_store
    raw = pd.read_csv(demo_dir / "leads.csv").head(20)
    with pytest.raises((ValueError, MissingEventsError)) as info:
        model.predict({"leads": raw})
    assert "events" in str(info.value) and "decayed_" in str(info.value)


def test_demo_model_without_events_names_what_to_pass(demo_store, demo_dir):
    _, rules, _, model = demo_store
    raw = pd.read_csv(demo_dir / "leads.csv").head(20)
    with pytest.raises((ValueError, MissingEventsError)) as info:
        model.predict(raw)
    text = str(info.value)
    assert "events" in text and "decayed_" in text


def test_as_of_param_scores_like_score_as_of(demo_store, demo_dir, tmp_path):
    """``params={"as_of": ...}`` decays the events to that time as ``score --as-of`` does
    (leads created after it have no event features); the default is the newest event."""
    config, _, scored, model = demo_store
    cfg = load_config(config)
    raw = pd.read_csv(demo_dir / "leads.csv")
    events = str(demo_dir / "events.csv")
    newest = pd.to_datetime(pd.read_csv(events)["timestamp"]).max()
    as_of = str(newest - pd.Timedelta(days=45))
    _cli("score", "--config", config, "--model", f"{cfg.model_name}/1", "--as-of", as_of,
         "--output", tmp_path / "earlier.csv")
    earlier = pd.read_csv(tmp_path / "earlier.csv", dtype={cfg.data.id_column: str})
    earlier = earlier.set_index(cfg.data.id_column)
    predicted = model.predict(raw, params={"events": events, "as_of": as_of})
    _assert_same_scores(raw, predicted, earlier, cfg.data.id_column)
    assert earlier["pain"].tolist() != scored.loc[earlier.index, "pain"].tolist()
    default = model.predict(raw.head(50), params={"events": events, "as_of": str(newest)})
    assert default["points"].tolist() == \
        scored.loc[raw[cfg.data.id_column].astype(str).head(50), "points"].tolist()


def test_spam_gate_is_in_the_points_table_and_holds_in_score_and_pyfunc(demo_store, demo_dir):
    """The trained table carries the gate and the derived settings; no spam lead is SDR-ready
    in ``score`` nor in the pyfunc output (their sdr_ready agree lead by lead above)."""
    config, rules, scored, model = demo_store
    cfg = load_config(config)
    assert rules.spam_gate is True
    assert rules.derived.name_columns == list(cfg.derived.name_columns)
    assert len(rules.derived.domain_lists_sha256) == 64
    from pipeline.inputs.features import FeatureSettings, scoring_features

    raw = pd.read_csv(demo_dir / "leads.csv", dtype=str)
    spam = scoring_features(raw, rules, FeatureSettings.from_config(cfg),
                            events=demo_dir / "events.csv")["name_spam"].eq("yes")
    spam.index = raw[cfg.data.id_column].to_numpy()
    assert spam.any()
    assert not scored["sdr_ready"].astype(bool)[spam.reindex(scored.index)].any()


def test_verify_export_agrees_with_the_spam_gate_on(demo_store):
    """``lead-scoring verify-export`` on the gated table, in a process of its own: the PMML
    check starts a JVM, and a process holding one must not fork (training does)."""
    import os
    import subprocess
    import sys

    config, rules, _, _ = demo_store
    cfg = load_config(config)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "pipeline", "verify-export", "--config",
                           str(config), "--model", f"{cfg.model_name}/1"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    for fmt in ("sql", "pmml", "python"):
        assert f"{fmt} mismatches: 0 of 3000" in done.stdout


def test_x_education_model_scores_the_csv_as_read_csv_gives_it(shared_data, make_config,
                                                                 tmp_path):
    config = make_config("x_education", leads=shared_data)
    cfg = load_config(config)
    rules, scored, model = _train_and_score(config, tmp_path)
    raw = pd.read_csv(shared_data)
    assert any(pd.api.types.is_integer_dtype(raw[c]) for c in rules.factor_names()
               if c in raw.columns), "an int64 factor column: the signature must take it"
    predicted = model.predict(raw)
    _assert_same_scores(raw, predicted, scored, cfg.data.id_column)
