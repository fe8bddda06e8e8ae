"""Behaviour over time on the full demo data: learned half-lives and velocity against the truth."""

from __future__ import annotations

import json

import pytest

from pipeline.config import load_config
from pipeline.inputs.demo_data import generate_demo_data, write_demo_data
from pipeline.inputs.features import build_features
from pipeline.inputs.reader import read_table
from pipeline.inputs.validate import validate_leads
from pipeline.model.train_fit import fit_scorecard


@pytest.fixture(scope="module")
def full_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo20k")
    write_demo_data(generate_demo_data(n_leads=20_000, seed=42), out)
    return out


@pytest.mark.slow
def test_learned_half_lives_within_a_factor_of_two_and_velocity_helps(full_demo, make_config):
    config = load_config(make_config("demo", data_dir=full_demo))
    truth = json.loads((full_demo / "truth.json").read_text())
    raw = read_table(config.data.leads).frame
    leads = validate_leads(raw, config, source="leads.csv")
    features = build_features(leads, config, events=config.data.events)
    for group, true_h in truth["half_life_days"].items():
        learned = features.half_lives[group]
        assert true_h / 2 <= learned <= true_h * 2, (group, learned, true_h)
        assert truth[f"half_life_days_{group}"] == true_h
    y = features.frame["converted"].to_numpy()
    scorecard = fit_scorecard(features.frame[features.factors], y, features.groups,
                              features.numeric, config)
    velocity = next(f for f in scorecard.rules_.factors if f.name == "velocity_product")
    assert velocity.bin_points[-1] > velocity.bin_points[0]
