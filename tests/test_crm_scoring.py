"""A demo model trained with the CRM representation scores the same everywhere.

Trained through the CLI (``events.representation: crm``, small grids), the registered points
table holds one event rule per behaviour factor and every PAIN factor is one of them (a
count of named events and whole-number bin edges); the run logs ``cv_auc_crm`` and
``cv_auc_decayed``; and the pyfunc model scores raw leads + raw events exactly as
``lead-scoring score`` does, as of the newest event and as of 45 days earlier.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import main as cli
from pipeline.config import load_config
from pipeline.registry import store as registry
from pipeline.scoring.serving import SCORE_COLUMNS

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: object) -> str:
    result = CliRunner().invoke(cli.app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def crm_store(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("crm_demo")
    settings = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    settings["root"] = str(REPO)
    settings["data"].update(leads=str(demo_dir / "leads.csv"), events=str(demo_dir / "events.csv"))
    settings["events"].update(representation="crm", half_life_grid=[3, 14],
                              crm_window_grid=[7, 30], crm_cap_grid=[2, 4],
                              velocity_days_grid=[3, 7])
    settings["registry"] = {"tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}",
                            "artifact_location": str(tmp / "artifacts")}
    config = tmp / "demo.yaml"
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    cfg = load_config(config)
    _cli("train", "--config", config, "--no-score", "--out", tmp / "out")
    registry.connect(cfg.registry.tracking_uri, experiment=cfg.experiment_name,
                     artifact_location=cfg.registry.artifact_location)
    ref = registry.resolve(f"{cfg.model_name}/1")
    model = mlflow.pyfunc.load_model(f"models:/{cfg.model_name}/1")
    return config, cfg, registry.load_rules(ref), model, ref, tmp


def test_the_table_holds_crm_rules_only(crm_store):
    _, _, rules, _, ref, _ = crm_store
    assert rules.event_rules and not rules.decay_half_life_days
    pain = rules.factor_names("PAIN")
    assert pain and set(pain) == {r.factor for r in rules.event_rules}
    for rule in rules.event_rules:
        factor = rules.factor(rule.factor)
        assert rule.window_days in (7, 30) and rule.cap in (2, 4)
        assert all(float(e).is_integer() for e in factor.edges)
        base, per = rules.occurrence_points(rule)
        assert len(per) == rule.cap and base + sum(per) == rules.count_points(rule)[-1]
    metrics = mlflow.get_run(ref.run_id).data.metrics
    assert 0.5 < metrics["cv_auc_crm"] <= 1 and 0.5 < metrics["cv_auc_decayed"] <= 1


@pytest.mark.parametrize("days_back", [0, 45])
def test_pyfunc_scores_like_score_as_of_two_dates(crm_store, demo_dir, days_back):
    config, cfg, _, model, _, tmp = crm_store
    events = str(demo_dir / "events.csv")
    as_of = str(pd.to_datetime(pd.read_csv(events)["timestamp"]).max()
                - pd.Timedelta(days=days_back))
    out = tmp / f"scored_{days_back}.csv"
    _cli("score", "--config", config, "--model", f"{cfg.model_name}/1", "--as-of", as_of,
         "--output", out)
    scored = pd.read_csv(out, dtype={cfg.data.id_column: str}).set_index(cfg.data.id_column)
    raw = pd.read_csv(demo_dir / "leads.csv")
    predicted = model.predict(raw, params={"events": events, "as_of": as_of})
    assert list(predicted.columns) == SCORE_COLUMNS and len(predicted) == len(raw)
    predicted = predicted.set_index(raw[cfg.data.id_column].astype(str).to_numpy())
    predicted = predicted.loc[scored.index]
    for column in ("points", "fit", "pain"):
        assert predicted[column].astype(int).tolist() == scored[column].astype(int).tolist()
    assert predicted["sdr_ready"].tolist() == scored["sdr_ready"].astype(bool).tolist()
    assert scored["pain"].nunique() > 3


@pytest.mark.parametrize("days_back", [0, 60])
def test_crm_simulator_gives_the_pain_of_score_as_of_two_dates(crm_store, demo_dir, days_back):
    """The event criteria applied the CRM way (:mod:`pipeline.exports.event_criteria`) give
    every demo lead the PAIN points ``lead-scoring score`` gives it."""
    from pipeline.exports.event_criteria import simulate_event_points

    config, cfg, rules, _, _, tmp = crm_store
    events = pd.read_csv(demo_dir / "events.csv", dtype=str)
    as_of = pd.to_datetime(events["timestamp"]).max() - pd.Timedelta(days=days_back)
    out = tmp / f"sim_{days_back}.csv"
    _cli("score", "--config", config, "--model", f"{cfg.model_name}/1", "--as-of", as_of,
         "--output", out)
    scored = pd.read_csv(out, dtype={cfg.data.id_column: str}).set_index(cfg.data.id_column)
    leads = pd.read_csv(demo_dir / "leads.csv", dtype=str, keep_default_na=False)
    simulated = simulate_event_points(rules, leads, events, as_of=as_of).sum(axis=1)
    simulated = simulated.set_axis(leads[cfg.data.id_column]).loc[scored.index]
    assert len(scored) == len(leads)
    assert (simulated.to_numpy() != scored["pain"].to_numpy()).sum() == 0


def test_every_hubspot_pain_rule_names_an_event_or_property_and_a_whole_number(crm_store):
    import json

    from pipeline.exports.files import export

    rules = crm_store[2]
    body = json.loads(export(rules, "hubspot"))
    (engagement,) = [g for g in body["groupConfigs"] if g["groupCategory"] == "ENGAGEMENT"]
    assert engagement["ruleConfigurations"]
    kinds = set()
    for config in engagement["ruleConfigurations"]:
        assert config["filters"]
        for f in config["filters"]:
            if "eventType" in f:
                kinds.add("event")
                assert f["events"] and all(isinstance(e, str) for e in f["events"])
                assert all(isinstance(v, int) for v in f["timeframe"].values())
                assert f["operator"] == "GTE" and isinstance(f["value"], int)
            else:
                kinds.add("property")
                assert f["property"] in rules.factor_names("PAIN")
                assert "value" not in f or str(int(f["value"])) == f["value"]
        assert isinstance(config["configuration"]["calculation"]["value"], int)
    assert "event" in kinds


def test_hubspot_simulator_matches_score_on_every_demo_lead_as_of_two_dates(crm_store, demo_dir):
    """The HubSpot export applied by the reference simulator (event criteria from raw
    events) gives every demo lead ``score``'s fit, pain, points and SDR-ready."""
    import json

    from pipeline.exports.event_criteria import hubspot_event_filter, lead_events
    from pipeline.exports.files import export
    from pipeline.exports.simulator import crm_properties, simulate_hubspot, simulated_mismatches
    from pipeline.inputs.features import FeatureSettings

    config, cfg, rules, _, _, tmp = crm_store
    body = json.loads(export(rules, "hubspot"))
    leads = pd.read_csv(demo_dir / "leads.csv", dtype=str, keep_default_na=False)
    events = pd.read_csv(demo_dir / "events.csv", dtype=str)
    own = lead_events(leads, events)
    settings = FeatureSettings.from_config(cfg)
    newest = pd.to_datetime(events["timestamp"]).max()
    for as_of in (newest, newest - pd.Timedelta(days=60)):
        out = tmp / f"hub_{as_of:%Y%m%d}.csv"
        _cli("score", "--config", config, "--model", f"{cfg.model_name}/1", "--as-of", as_of,
             "--output", out)
        scored = pd.read_csv(out, dtype={cfg.data.id_column: str}).set_index(cfg.data.id_column)
        props = crm_properties(leads, rules, settings, events=events, as_of=as_of)
        simulated = simulate_hubspot(body, props, events=own, as_of=as_of,
                                     event_criteria=hubspot_event_filter)
        simulated.index = leads[cfg.data.id_column].to_numpy()
        simulated = simulated.loc[scored.index]
        assert simulated_mismatches(simulated, scored, max_score=body["maxScore"]) == 0


def test_verify_export_counts_the_event_rules_for_the_exports(crm_store):
    """``verify-export`` adds the event-rule counts to the raw leads it gives the SQL and
    Python exports: they score every demo lead as ``score`` does."""
    config, cfg, _, _, _, _ = crm_store
    out = _cli("verify-export", "--config", config, "--model", f"{cfg.model_name}/1",
               "--formats", "sql,python")
    assert "mismatch" not in out.lower() or " 0 " in out
