"""Honest on new data: no signal when nothing beats the base rate, selection that costs no
accuracy silently, a benchmark on every eligible column, a table refit on every lead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from pipeline.config import load_config
from pipeline.inputs.features import build_features
from pipeline.inputs.reader import read_table
from pipeline.inputs.validate import validate_leads
from pipeline.model.evaluate import auc_interval, base_rate_log_loss, signal_check
from pipeline.model.train import train
from pipeline.registry.aliases import gate_decision


def _features(tmp_path: Path, frame: pd.DataFrame, **sections):
    """Features of ``frame`` (label ``converted``, id ``lead_id``) under a config whose
    sections ``sections`` override the defaults."""
    leads = tmp_path / "leads.csv"
    frame.to_csv(leads, index=False)
    settings_ = {"root": str(tmp_path), "data": {"leads": str(leads)},
                 "registry": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                              "artifact_location": str(tmp_path / "artifacts")}, **sections}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(settings_))
    cfg = load_config(path)
    validated = validate_leads(read_table(leads).frame, cfg, source=str(leads), training=True)
    return cfg, build_features(validated, cfg, events=None)


def _leads(n: int, seed: int, *, effects: dict[str, float], n_noise: int = 4,
           base_rate: float = 0.15) -> pd.DataFrame:
    """``n`` leads with categorical columns ``real_<k>`` (3 levels, log-odds effect of level
    "c" = the given effect) and ``noise_<k>`` (8 levels, no effect)."""
    rng = np.random.default_rng(seed)
    logit = np.full(n, np.log(base_rate / (1 - base_rate)))
    columns: dict[str, np.ndarray] = {"lead_id": np.array([f"L{i}" for i in range(n)])}
    for name, effect in effects.items():
        values = rng.choice(["a", "b", "c"], n)
        logit = logit + effect * (values == "c")
        columns[name] = values
    for k in range(n_noise):
        columns[f"noise_{k}"] = rng.choice([f"n{j}" for j in range(8)], n)
    columns["converted"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(columns)


# --- the signal check ---------------------------------------------------------------------


def _naive_auc(y, score):
    """Share of (won, lost) pairs ranked right, ties counting half."""
    wins = [s for s, t in zip(score, y, strict=True) if t == 1]
    losses = [s for s, t in zip(score, y, strict=True) if t == 0]
    pairs = [(w > v) + 0.5 * (w == v) for w in wins for v in losses]
    return sum(pairs) / len(pairs)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 1)), min_size=4, max_size=60))
def test_auc_interval_holds_the_auc_and_matches_the_pair_count(data):
    y = np.array([t for _, t in data])
    score = np.array([s for s, _ in data])
    auc, low, high = auc_interval(y, score)
    if 0 < y.sum() < len(y):
        assert auc == pytest.approx(_naive_auc(y, score))
        assert 0 <= low <= auc <= high <= 1


def test_auc_interval_narrows_with_more_leads():
    rng = np.random.default_rng(0)
    widths = []
    for n in (500, 5000, 50000):
        y = rng.integers(0, 2, n)
        score = y + rng.normal(0, 2, n)
        _, low, high = auc_interval(y, score)
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    # Hanley-McNeil at n=5000, AUC ~0.64: the half-width is about 1.96 x 0.0078
    assert widths[1] == pytest.approx(2 * 1.96 * 0.0078, rel=0.15)


def test_signal_check_names_each_reason():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    prior = base_rate_log_loss(y)
    assert prior == pytest.approx(np.log(2), abs=0.01)
    noise = signal_check(cv_log_loss=prior + 0.001, y_cv=y, y_holdout=y,
                         score_holdout=rng.normal(size=2000))
    assert not noise.has_signal
    assert "is not below the base rate's" in noise.reason and "does not exclude 0.5" in noise.reason
    real = signal_check(cv_log_loss=prior - 0.05, y_cv=y, y_holdout=y,
                        score_holdout=y + rng.normal(0, 1, 2000))
    assert real.has_signal and real.reason == "" and real.auc_low > 0.5
    assert real.auc == pytest.approx(roc_auc_score(y, y + rng.normal(0, 1, 2000)), abs=0.05)


# --- training end to end -------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chance_factors_let_through_are_still_no_signal(tmp_path, seed):
    """With selection wide open (every factor kept), a label independent of every column is
    still 'no signal': the holdout shows the kept factors were chance; nothing is promoted and
    no lead is SDR-ready."""
    frame = _leads(5000, seed, effects={}, n_noise=6)
    cfg, features = _features(tmp_path, frame, analysis={"min_lift_pp": 0.0, "min_leads": 20,
                                                     "significance": 1.0})
    result = train(features, cfg)
    assert result.analysis.kept  # selection let chance factors through ...
    assert result.no_signal  # ... the signal check does not
    assert result.points_table.empty and result.rules.factors == []
    note = next(n for n in result.notes if n.startswith("no signal"))
    assert "does not beat the base rate out of sample" in note
    assert "holdout AUC" in note or "CV log loss" in note
    m = result.metrics
    assert m["holdout_auc_low"] <= 0.5 or m["cv_log_loss"] >= m["prior_log_loss"]
    decision = gate_decision(challenger_auc=m["holdout_auc"], champion_auc=None, margin=0.005,
                             no_signal=result.no_signal, champion_version=None)
    assert not decision["promoted"] and "no signal" in decision["summary"]


def test_real_signal_is_kept_refit_on_every_lead(tmp_path):
    frame = _leads(6000, 5, effects={"real_0": 1.5, "real_1": -1.2})
    cfg, features = _features(tmp_path, frame)
    result = train(features, cfg)
    assert not result.no_signal
    assert {"real_0", "real_1"} <= set(result.analysis.kept)
    m = result.metrics
    assert m["holdout_auc_low"] > 0.5 and m["cv_log_loss"] < m["prior_log_loss"]
    # the registered table is fitted on every lead; the holdout figures on the other 80%
    assert m["n_final_fit"] == 6000 and m["n_train"] == 4800
    leads_per_factor = result.points_table.groupby("factor")["leads"].sum()
    assert (leads_per_factor == 6000).all()
    assert any("refit on all 6,000 labelled leads" in n for n in result.notes)
    assert result.threshold.sdr_ready_share <= 0.5


def test_without_refit_the_table_is_the_evaluated_one(tmp_path):
    frame = _leads(6000, 5, effects={"real_0": 1.5, "real_1": -1.2})
    cfg, features = _features(tmp_path, frame, model={"refit_on_all": False})
    result = train(features, cfg)
    assert result.metrics["n_final_fit"] == 4800
    assert (result.points_table.groupby("factor")["leads"].sum() == 4800).all()


def test_selection_that_costs_accuracy_is_undone_and_reported(tmp_path):
    """max_factors is large but min_lift_pp drops a factor with a real, modest effect: the CV
    check brings it back with its gain, and the metrics show kept vs eligible CV AUC."""
    frame = _leads(8000, 3, effects={"real_0": 1.6, "real_1": 0.45})
    cfg, features = _features(tmp_path, frame, analysis={"min_lift_pp": 8.0})
    result = train(features, cfg)
    report = result.analysis.selection.set_index("column")
    assert report.loc["real_0", "kept"]
    assert report.loc["real_1", "kept"]
    assert report.loc["real_1", "reason"].startswith("kept: adds ")
    assert "(the rules said weak" in report.loc["real_1", "reason"]
    check = result.analysis.cv_check.set_index("set")["cv_auc"]
    assert check["kept"] > check["kept by the selection rules"] + 0.002
    assert result.metrics["cv_auc_kept"] == pytest.approx(check["kept"])
    assert result.metrics["cv_auc_eligible"] == pytest.approx(check["all eligible candidates"])
    assert not any(report.loc[f"noise_{k}", "kept"] for k in range(4))


def test_benchmark_sees_every_eligible_column(tmp_path):
    """With max_factors 1 the points table keeps one of two strong factors; the benchmark,
    trained on every eligible column, shows what the table gives up."""
    frame = _leads(6000, 8, effects={"real_0": 1.8, "real_1": 1.8}, n_noise=1)
    cfg, features = _features(tmp_path, frame,
                              analysis={"max_factors": 1, "min_cv_auc_gain": 0.4})
    result = train(features, cfg)
    assert len(result.analysis.kept) == 1
    m = result.metrics
    assert m["holdout_auc_benchmark"] > m["holdout_auc"] + 0.03
