"""The MLflow registry: versions, the promotion gate, explicit promotes, the audit trail and the
pyfunc model, driven through the CLI in-process against a temporary sqlite store.

One module-scoped store is trained three times (a strong model, then twice a weak one) so the
gate is exercised both ways; the tests read what those runs left behind.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import invoke
from typer.testing import CliRunner

from pipeline.errors import UserError
from pipeline.registry import aliases
from pipeline.registry import store as registry
from pipeline.scoring.serving import SCORE_COLUMNS

REPO = Path(__file__).resolve().parents[1]
MODEL = "lead-scoring"
# a model that knows only the lead source: clearly worse than the full demo model
WEAK = {"columns": {"fit": ["lead_source"], "exclude": ["company", "email", "first_name",
                                                        "last_name", "job_title", "industry",
                                                        "country", "company_size",
                                                        "target_account", "account_id"]},
        "derived": {"email_column": None, "name_columns": [], "title_column": None},
        "events": {"groups": {}}}


def write_config(folder: Path, data_dir: Path, name: str, **overrides: Any) -> Path:
    """The demo config with a fast training grid, its store under ``folder``."""
    settings = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    settings["root"] = str(REPO)
    settings["data"]["leads"] = str(data_dir / "leads.csv")
    settings["data"]["events"] = str(data_dir / "events.csv")
    settings["events"]["half_life_grid"] = [3, 7, 14]
    settings["model"] = {"c_grid": [0.1, 1.0], "cv_folds": 3}
    settings["registry"] = {"tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
                            "artifact_location": str(folder / "artifacts")}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


@dataclass
class Store:
    folder: Path
    uri: str
    strong: Path
    outputs: dict[str, str]
    times: dict[str, tuple[float, float]]  # step -> (epoch seconds before, after the command)




@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Store:
    """v1 strong (first champion), v2 weak (refused), v3 weak with margin 1 (promoted by the
    gate), then an explicit ``promote 1`` (rollback)."""
    folder = tmp_path_factory.mktemp("registry")
    strong = write_config(folder, demo_dir, "strong")
    weak = write_config(folder, demo_dir, "weak", **WEAK)
    lenient = write_config(folder, demo_dir, "lenient", **WEAK,
                           registry={"tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
                                     "artifact_location": str(folder / "artifacts"),
                                     "promotion_margin": 1.0})
    outputs, times = {}, {}
    for step, cfg in (("v1", strong), ("v2", weak), ("v3", lenient)):
        before = time.time()
        outputs[step] = invoke(["train", "--config", str(cfg), "--no-score",
                                "--out", str(folder / step)]).output
        times[step] = (before, time.time())
    outputs["promote"] = invoke(["promote", "1", "--config", str(strong),
                                 "--reason", "rollback after review"]).output
    outputs["history"] = invoke(["history", "--config", str(strong)]).output
    return Store(folder, f"sqlite:///{folder / 'mlflow.db'}", strong, outputs, times)


@pytest.fixture
def client(store: Store):
    registry.connect(store.uri)
    return registry.mlflow_client()


def _auc_figures(text: str) -> list[float]:
    import re

    gate = next(line for line in text.splitlines() if line.startswith("gate:"))
    return [float(x) for x in re.findall(r"\b(\d\.\d{4})\b", gate)]


def test_every_train_registers_a_version_and_challenger_is_the_newest(store, client):
    versions = client.search_model_versions(f"name='{MODEL}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3]
    assert str(client.get_model_version_by_alias(MODEL, "challenger").version) == "3"
    for v in versions:
        assert v.current_stage == "None"  # aliases, never stages


def test_logged_metric_is_the_runs_metric_and_nan_when_never_logged(store, client):
    """What the gate compares with when the champion's features differ from the run's."""
    ref = registry.resolve(f"{MODEL}/1")
    logged = client.get_run(ref.run_id).data.metrics["holdout_auc"]
    assert aliases.logged_metric(ref, "holdout_auc") == logged
    assert np.isnan(aliases.logged_metric(ref, "no_such_metric"))


def test_run_logs_params_metrics_lineage_and_artifacts(store, client):
    run = client.get_run(registry.resolve(f"{MODEL}/1").run_id)
    metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
    for key in ("holdout_auc", "holdout_brier", "holdout_ks", "rounding_auc_loss",
                "holdout_auc_model", "n_train", "n_holdout"):
        assert np.isfinite(metrics[key]), key
    assert 0.5 < metrics["holdout_auc"] <= 1
    assert float(params["pdo"]) == 20 and params["config_name"] == "demo"
    assert json.loads(params["kept_factors"])
    from pipeline.inputs.reader import file_digest

    cfg = yaml.safe_load(store.strong.read_text())
    assert tags["data_hash"] == file_digest(cfg["data"]["leads"])
    assert len(tags["config_hash"]) == 16
    assert tags["rows"] == "3000"
    assert tags["date_min"] < tags["date_max"]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    for name in ("points_table.csv", "points_rules.json", "config.json", "report.html",
                 "lift_table.csv", "coefficients.csv", "metrics.json", "feature_settings.json"):
        assert name in names, name
    logged = registry.load_run_json(registry.resolve(f"{MODEL}/1"), "config.json")
    assert logged["name"] == "demo"


def test_gate_refuses_a_worse_model_and_prints_both_aucs(store, client):
    out = store.outputs["v2"]
    assert "not promoted" in out
    challenger_auc, champion_auc = _auc_figures(out)
    assert challenger_auc < champion_auc - 0.005
    tag = aliases.version_decision(MODEL, "2")
    assert tag["promoted"] is False
    assert tag["challenger_auc"] == pytest.approx(challenger_auc, abs=1e-4)
    assert tag["champion_auc"] == pytest.approx(champion_auc, abs=1e-4)
    run = client.get_run(client.get_model_version(MODEL, "2").run_id)
    assert run.data.tags["gate_promoted"] == "false"
    assert run.data.metrics["gate_champion_auc"] == pytest.approx(champion_auc, abs=1e-4)


def test_gate_promotes_within_the_configured_margin(store, client):
    assert "promoted: challenger holdout AUC" in store.outputs["v3"]
    tag = aliases.version_decision(MODEL, "3")
    assert tag["promoted"] is True and tag["margin"] == 1.0
    assert tag["challenger_auc"] < tag["champion_auc"]  # worse, but within the margin


def test_explicit_promote_moves_champion_and_the_audit_log_keeps_every_move(store, client):
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    log = aliases.audit_log(MODEL)
    assert list(log.columns) == aliases.AUDIT_COLUMNS
    champion_moves = log[log["alias"] == "champion"]
    assert champion_moves["version"].tolist() == ["1", "3", "1"]
    assert champion_moves["previous"].tolist() == ["", "1", "3"]
    assert "first champion" in champion_moves["reason"].iloc[0]
    assert champion_moves["reason"].iloc[2] == "explicit: rollback after review"
    assert log[log["alias"] == "challenger"]["version"].tolist() == ["1", "2", "3"]
    assert log["time"].is_monotonic_increasing


def test_history_lists_versions_aliases_and_champion_periods(store, client):
    frame = aliases.history(MODEL)
    assert frame["version"].tolist() == [1, 2, 3]
    assert frame.set_index("version").loc[1, "aliases"] == "champion"
    assert frame.set_index("version").loc[3, "aliases"] == "challenger"
    assert frame.set_index("version").loc[3, "champion_until"] != ""
    assert frame.set_index("version").loc[2, "champion_since"] == ""
    out = store.outputs["history"]
    assert "3 versions" in out and "rollback" in out


def test_the_run_spans_the_whole_training(store, client):
    """The run starts when the command starts (before the leads are read) and ends after the
    gate: its duration is the training's, not the logging's."""
    for step, version in (("v1", "1"), ("v2", "2")):
        before, after = store.times[step]
        info = client.get_run(client.get_model_version(MODEL, version).run_id).info
        start, end = info.start_time / 1000, info.end_time / 1000
        assert info.status == "FINISHED"
        assert before - 0.01 <= start <= before + 2.0, (step, start - before)
        assert end <= after + 0.01
        # the command's time after the run ended is only the summary print
        assert (end - start) >= 0.8 * (after - before), (step, end - start, after - before)


def test_datasets_are_logged_as_run_inputs_with_digests_and_row_counts(store, client):
    run = client.get_run(registry.resolve(f"{MODEL}/1").run_id)
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"demo-train", "demo-holdout"}
    rows = {name: json.loads(d.dataset.profile)["num_rows"] for name, d in inputs.items()}
    assert rows["demo-train"] + rows["demo-holdout"] == 3000
    assert float(run.data.metrics["n_holdout"]) == rows["demo-holdout"]
    contexts = {name: {t.key: t.value for t in d.tags}["mlflow.data.context"]
                for name, d in inputs.items()}
    assert contexts == {"demo-train": "training", "demo-holdout": "holdout"}
    digests = [d.dataset.digest for d in inputs.values()]
    assert all(len(d) >= 8 for d in digests) and len(set(digests)) == 2
    cfg = yaml.safe_load(store.strong.read_text())
    assert all(cfg["data"]["leads"] in d.dataset.source for d in inputs.values())


def test_registered_model_and_versions_have_descriptions(store, client):
    model = client.get_registered_model(MODEL)
    assert "@champion" in model.description and "promotion gate" in model.description
    first = client.get_model_version(MODEL, "1").description
    assert "first version" in first and "first champion" in first
    second = client.get_model_version(MODEL, "2").description
    # v2 (weak: lead_source only) against its parent v1, the champion it was trained against
    assert "against v1" in second and "removed" in second and "not promoted" in second
    assert "holdout AUC" in second


def test_tags_hold_short_values_not_json(store, client):
    model = client.get_registered_model(MODEL)
    audit = {k: v for k, v in model.tags.items() if k.startswith(aliases.AUDIT_PREFIX)}
    assert len(audit) == 6  # challenger x3; champion x3 (v1, v3, the rollback to v1)
    for version in ("1", "2", "3"):
        tags = client.get_model_version(MODEL, version).tags
        assert "gate_decision" not in tags and tags["gate.promoted"] in ("true", "false")
        audit.update({f"v{version}.{k}": v for k, v in tags.items()})
    for key, value in audit.items():
        assert len(value) <= 250 and "\n" not in value, key
        assert not value.lstrip().startswith(("{", "[")), (key, value)
    assert any(v.startswith("v1 from v3 by ") and v.endswith("rollback after review")
               for v in model.tags.values())


def test_history_fits_80_columns_and_reads_back_every_figure(store):
    out = invoke(["history", "--config", str(store.strong)]).output
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert lines[0] == f"{MODEL}: 3 versions"
    v1 = next(line for line in lines if line.split()[:1] == ["1"])
    assert "champion" in v1 and "first champion 0." in v1
    # champion again after the rollback: its period runs to now (the end of its first
    # period, when v3 replaced it, is not kept as the end of this one)
    assert lines[lines.index(v1) + 1].strip().endswith("to now")
    assert aliases.history(MODEL).set_index("version").loc[1, "champion_until"] == ""
    v2 = next(line for line in lines if line.split()[:1] == ["2"])
    decision = aliases.version_decision(MODEL, "2")
    assert f"refused {decision['challenger_auc']:.4f} vs v1 {decision['champion_auc']:.4f}" in v2
    assert "rollback after review" in out and "v3 -> v1" in out


def test_artifact_locations_are_relative_to_the_store_and_survive_a_move(store, client,
                                                                         tmp_path):
    """The store keeps no absolute path: a copy of its folder elsewhere (the original moved
    away) still serves every version's rules and pyfunc model."""
    import shutil
    import sqlite3

    import mlflow

    with sqlite3.connect(store.folder / "mlflow.db") as db:
        experiments = db.execute("select artifact_location from experiments "
                                 "where name != 'Default'").fetchall()
        runs = db.execute("select artifact_uri from runs").fetchall()
        models = db.execute("select artifact_location from logged_models").fetchall()
        sources = db.execute("select storage_location from model_versions").fetchall()
    stored = [v for rows in (experiments, runs, models, sources) for (v,) in rows if v]
    assert experiments and runs and models
    for value in stored:
        assert str(store.folder) not in value, value
    assert {v for (v,) in experiments} == {"store-relative:artifacts"}
    assert all(v.startswith("store-relative:artifacts/") for (v,) in runs + models)
    rules = registry.load_rules(registry.resolve(f"{MODEL}/1"))
    copy = tmp_path / "moved"
    shutil.copytree(store.folder, copy, ignore=shutil.ignore_patterns("*.yaml", "v?"))
    away = store.folder.with_name(store.folder.name + "-away")
    store.folder.rename(away)
    try:
        registry.connect(f"sqlite:///{copy / 'mlflow.db'}")
        assert registry.load_rules(registry.resolve(f"{MODEL}/1")) == rules
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
        assert len(model.input_example) == 5
    finally:
        away.rename(store.folder)
        registry.connect(store.uri)


def test_pyfunc_by_alias_and_by_version_returns_the_score_columns(store, client, demo_dir):
    import mlflow

    from pipeline.inputs.features import FeatureSettings, scoring_features
    from pipeline.scoring.frame import score_frame

    champion = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    weak = mlflow.pyfunc.load_model(f"models:/{MODEL}/2")
    example = champion.input_example  # raw leads: the model makes the features itself
    assert len(example) == 5
    events = {"events": str(demo_dir / "events.csv")}
    out = champion.predict(example, params=events)
    assert list(out.columns) == SCORE_COLUMNS
    assert len(out) == len(example)
    ref = registry.resolve(f"{MODEL}@champion")
    rules = registry.load_rules(ref)
    settings = FeatureSettings.from_dict(registry.load_run_json(ref, "feature_settings.json"))
    reference = score_frame(rules, scoring_features(example, rules, settings,
                                                    events=demo_dir / "events.csv"))
    assert out["points"].tolist() == reference["points"].tolist()
    assert out["points"].tolist() == (out["fit"] + out["pain"]).tolist()
    # no input schema (MLflow would check any-type columns value by value: issue 24); the
    # columns the model reads are in its metadata, the raw ones of the derived signals too
    assert champion.metadata.get_input_schema() is None
    assert {"email", "job_title"} <= set(champion.metadata.metadata["input_columns"])
    # missing values in a numeric factor (an int column with a gap) score, they do not fail
    gaps = example.assign(**{c: [np.nan] + example[c].tolist()[1:] for c in example.columns})
    assert len(champion.predict(gaps, params=events)) == len(example)
    # the weak version reads only lead_source
    leads = pd.read_csv(demo_dir / "leads.csv", dtype=str).head(50)
    weak_out = weak.predict(leads[["lead_source"]])
    assert list(weak_out.columns) == SCORE_COLUMNS and len(weak_out) == 50
    assert weak_out["pain"].eq(0).all()


def test_pyfunc_uses_derived_signals_given_as_columns(store, client, demo_dir):
    """A caller who already has the derived signals (and event features) as columns gets the
    points of the raw leads: given columns are used as they are, never derived again."""
    import mlflow

    from pipeline.inputs.features import DERIVED_SIGNALS, FeatureSettings, scoring_features

    ref = registry.resolve(f"{MODEL}@champion")
    rules = registry.load_rules(ref)
    derived = [c for c in DERIVED_SIGNALS if c in rules.input_columns()]
    if not derived:
        pytest.skip("the champion kept no derived signal")
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    raw = pd.read_csv(demo_dir / "leads.csv", dtype=str).head(40)
    settings = FeatureSettings.from_dict(registry.load_run_json(ref, "feature_settings.json"))
    features = scoring_features(raw, rules, settings, events=demo_dir / "events.csv")
    given = features.drop(columns=rules.derived.raw_columns())
    from_raw = model.predict(raw, params={"events": str(demo_dir / "events.csv")})
    assert model.predict(given)["points"].tolist() == from_raw["points"].tolist()


def test_load_rules_carries_the_registered_version(store, client):
    rules = registry.load_rules(registry.resolve(f"{MODEL}/3"))
    assert rules.model_version == "3"
    assert rules.factor_names() == ["lead_source"]


def test_resolve_names_what_exists_when_a_ref_does_not(store, client):
    with pytest.raises(UserError, match=r"has no alias @staging") as info:
        registry.resolve(f"{MODEL}@staging")
    assert "@challenger" in info.value.hint and "@champion" in info.value.hint
    with pytest.raises(UserError, match=r"has no version 99"):
        registry.resolve(f"{MODEL}/99")
    with pytest.raises(UserError, match=r"'nope' does not exist") as info:
        registry.resolve("nope@champion")
    assert MODEL in info.value.hint


def test_promote_command_refuses_an_unknown_version(store, client):
    from pipeline.cli.main import app

    result = CliRunner().invoke(app, ["promote", "42", "--config", str(store.strong)])
    assert isinstance(result.exception, UserError)
    assert "has no version 42" in result.exception.message
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"


@pytest.mark.parametrize("text, expected", [
    ("lead-scoring@champion", ("lead-scoring", "champion", None)),
    ("x-education/12", ("x-education", None, "12")),
])
def test_parse_model_ref(text, expected):
    assert registry.parse_model_ref(text) == expected


@pytest.mark.parametrize("text", ["lead-scoring", "a@b@c", "m/x", "@champion", "m/1/2"])
def test_parse_model_ref_rejects(text):
    with pytest.raises(UserError, match="is not NAME@ALIAS or NAME/VERSION"):
        registry.parse_model_ref(text)


@pytest.mark.parametrize("challenger, champion, margin, promoted", [
    (0.80, 0.80, 0.005, True),
    (0.796, 0.80, 0.005, True),     # worse, but by less than the margin
    (0.7949, 0.80, 0.005, False),   # worse by more than the margin
    (0.90, 0.80, 0.0, True),
    (0.79, 0.80, 0.0, False),
])
def test_gate_decision_margin(challenger, champion, margin, promoted):
    decision = aliases.gate_decision(challenger_auc=challenger, champion_auc=champion,
                                      margin=margin, no_signal=False, champion_version="4")
    assert decision["promoted"] is promoted
    assert f"{challenger:.4f}" in decision["summary"] and f"{champion:.4f}" in decision["summary"]
    assert "v4" in decision["summary"]


def test_gate_decision_first_champion_and_no_signal():
    first = aliases.gate_decision(challenger_auc=0.7, champion_auc=None, margin=0.005,
                                   no_signal=False, champion_version=None)
    assert first["promoted"] and "first champion" in first["summary"]
    empty = aliases.gate_decision(challenger_auc=0.5, champion_auc=None, margin=0.005,
                                   no_signal=True, champion_version=None)
    assert not empty["promoted"] and "no signal" in empty["summary"]


def test_connect_to_a_dead_server_is_a_clear_error():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UserError, match=rf"127.0.0.1:{port} is unreachable"):
        registry.connect(f"http://127.0.0.1:{port}", experiment="x")


@pytest.mark.slow
def test_real_data_two_configs_gate_prints_both_aucs(shared_data, make_config, tmp_path):
    """Train twice on the X Education file (pdo 20, then 5 bins): the second run's gate names
    the challenger's and the champion's AUC on the same holdout."""
    first = make_config("x_education", leads=shared_data, points={"pdo": 20})
    out1 = invoke(["train", "--config", str(first), "--no-score", "--out", str(tmp_path / "a")])
    assert "first champion" in out1.output
    second_settings = yaml.safe_load(first.read_text())
    second_settings["analysis"] = {**(second_settings.get("analysis") or {}), "n_bins": 5}
    second = tmp_path / "x_education_bins5.yaml"
    second.write_text(yaml.safe_dump(second_settings, sort_keys=False))
    out2 = invoke(["train", "--config", str(second), "--no-score", "--out", str(tmp_path / "b")])
    print(next(line for line in out2.output.splitlines() if line.startswith("gate:")))
    figures = _auc_figures(out2.output)
    assert len(figures) == 2 and all(0.5 < f <= 1 for f in figures)
    registry.connect(yaml.safe_load(first.read_text())["registry"]["tracking_uri"])
    decision = aliases.version_decision("x-education", "2")
    assert decision["promoted"] == (decision["challenger_auc"] >= decision["champion_auc"]
                                    - decision["margin"])

