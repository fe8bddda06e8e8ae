"""Drift: PSI per factor over the points table's outcomes, and for the total score."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.model.rules import FactorRules, PointsRules
from pipeline.scoring.drift import (
    COLUMNS,
    EPSILON,
    SCORE_ROW,
    drift_chart,
    drift_report,
    psi,
    score_bin_edges,
    verdict,
)

SIZES = ["1-10", "11-50", "51-200", "201-1000", "1000+"]


def _rules() -> PointsRules:
    return PointsRules(factors=[
        FactorRules("company_size", "FIT", "categorical",
                    levels={"1-10": -5, "11-50": 0, "51-200": 4, "201-1000": 12, "1000+": 9},
                    missing_points=-2, unseen_points=0),
        FactorRules("industry", "FIT", "categorical", levels={"saas": 6, "retail": -3, "other": 0},
                    missing_points=0, unseen_points=1),
        FactorRules("logins", "PAIN", "numeric", edges=[0.0, 3.0, 10.0],
                    bin_points=[0, 8, 15, 25], missing_points=-1, unseen_points=0),
    ], missing_values=["Select"], sdr_threshold=20)


def _leads(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.choice(SIZES + ["Select"], n, p=[0.25, 0.3, 0.2, 0.1, 0.1, 0.05])
    industry = rng.choice(["saas", "retail", "other"], n, p=[0.4, 0.3, 0.3])
    logins = rng.poisson(4, n).astype(float)
    logins[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({"company_size": pd.Series(size, dtype=object),
                         "industry": pd.Series(industry, dtype=object), "logins": logins})


def naive_psi(reference: list, batch: list, cells: list) -> float:
    """Textbook PSI written out cell by cell."""
    total = 0.0
    for cell in cells:
        r = max(sum(1 for v in reference if v == cell) / len(reference), EPSILON)
        b = max(sum(1 for v in batch if v == cell) / len(batch), EPSILON)
        total += (b - r) * math.log(b / r)
    return total


def _outcome(value: object, factor: FactorRules) -> str:
    """The outcome a value falls into, written from the points-table definition."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "Select":
        return "(missing)"
    if factor.kind == "categorical":
        return value if value in factor.levels else "(unseen)"
    return str(sum(1 for e in factor.edges if e < value))


def test_identical_batches_are_stable() -> None:
    leads = _leads(2000, 0)
    report = drift_report(_rules(), leads, leads.sample(frac=1.0, random_state=1))
    assert list(report.table.columns) == COLUMNS
    assert report.table["factor"].tolist() == ["company_size", "industry", "logins", SCORE_ROW]
    assert np.allclose(report.table["psi"], 0.0, atol=1e-12)
    assert set(report.table["verdict"]) == {"stable"} and report.worst == "stable"


def test_psi_per_factor_matches_the_naive_formula() -> None:
    rules = _rules()
    reference, batch = _leads(1500, 1), _leads(700, 2)
    batch.loc[batch.index[:120], "industry"] = "mining"  # unseen
    batch.loc[batch.index[200:400], "logins"] = 30.0
    report = drift_report(rules, reference, batch).table.set_index("factor")
    for factor in rules.factors:
        ref = [_outcome(v, factor) for v in reference[factor.name]]
        bat = [_outcome(v, factor) for v in batch[factor.name]]
        cells = sorted(set(ref) | set(bat) | {"(missing)", "(unseen)"})
        assert report.loc[factor.name, "psi"] == pytest.approx(naive_psi(ref, bat, cells))


def test_score_psi_uses_reference_quantile_bins() -> None:
    rules = _rules()
    reference, batch = _leads(1000, 3), _leads(800, 4)
    batch["logins"] = batch["logins"] + 4
    from pipeline.scoring.frame import score_frame

    ref_total = score_frame(rules, reference)["points"].tolist()
    bat_total = score_frame(rules, batch)["points"].tolist()
    edges = sorted(set(np.quantile(ref_total, np.linspace(0, 1, 11))[1:-1]))

    def band(x: float) -> int:
        return sum(1 for e in edges if e < x)

    expected = naive_psi([band(x) for x in ref_total], [band(x) for x in bat_total],
                         list(range(len(edges) + 1)))
    row = drift_report(rules, reference, batch).table.set_index("factor").loc[SCORE_ROW]
    assert row["psi"] == pytest.approx(expected)
    assert list(score_bin_edges(np.asarray(ref_total), 10)) == edges


def test_shifting_one_factor_flags_that_factor_only() -> None:
    """Most company sizes replaced by '1-10' within each industry/logins cell: the other
    factors' distributions are untouched, so only company_size reads 'retrain'."""
    reference = _leads(3000, 5)
    batch = reference.copy()
    rng = np.random.default_rng(6)
    batch.loc[rng.random(len(batch)) < 0.8, "company_size"] = "1-10"
    table = drift_report(_rules(), reference, batch).table.set_index("factor")
    assert table.loc["company_size", "verdict"] == "retrain"
    assert table.loc["company_size", "psi"] > 1.0
    for other in ("industry", "logins"):
        assert table.loc[other, "psi"] == pytest.approx(0.0, abs=1e-12)
        assert table.loc[other, "verdict"] == "stable"


def test_unseen_levels_are_counted() -> None:
    reference, batch = _leads(500, 7), _leads(400, 8)
    batch.loc[batch.index[:30], "industry"] = "mining"
    batch.loc[batch.index[30:35], "industry"] = "fishing"
    batch.loc[batch.index[35:40], "company_size"] = "5000+"
    table = drift_report(_rules(), reference, batch).table.set_index("factor")
    assert table.loc["industry", ["unseen_levels", "unseen_leads"]].tolist() == [2, 35]
    assert table.loc["company_size", ["unseen_levels", "unseen_leads"]].tolist() == [1, 5]
    assert table.loc["logins", ["unseen_levels", "unseen_leads"]].tolist() == [0, 0]
    assert table.loc[SCORE_ROW, ["unseen_levels", "unseen_leads"]].tolist() == [0, 0]


@pytest.mark.parametrize(("value", "expected"), [
    (0.0, "stable"), (0.0999, "stable"), (0.1, "watch"), (0.25, "watch"), (0.2501, "retrain")])
def test_verdict_bands(value: float, expected: str) -> None:
    assert verdict(value) == expected


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="shape"):
        psi(np.array([1, 2]), np.array([1, 2, 3]))
    from pipeline.errors import UserError

    with pytest.raises(UserError, match=r"batch lacks columns.*logins"):
        drift_report(_rules(), _leads(50, 0), _leads(50, 1).drop(columns="logins"))
    with pytest.raises(UserError, match="reference has no leads"):
        drift_report(_rules(), _leads(50, 0).iloc[:0], _leads(50, 1))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=2, max_size=8),
       st.lists(st.integers(0, 50), min_size=2, max_size=8))
def test_psi_is_symmetric_non_negative_and_zero_on_equal_shares(a: list[int], b: list[int]
                                                                ) -> None:
    n = min(len(a), len(b))
    ref, bat = np.asarray(a[:n]) + 1, np.asarray(b[:n]) + 1
    value = psi(ref, bat)
    assert value >= 0
    assert value == pytest.approx(psi(bat, ref))
    assert psi(ref, ref * 3) == pytest.approx(0.0, abs=1e-12)


def test_drift_chart_draws_one_bar_per_row() -> None:
    table = drift_report(_rules(), _leads(300, 0), _leads(300, 9)).table
    fig = drift_chart(table)
    ax = fig.axes[0]
    assert len(ax.patches) >= len(table)
    assert [t.get_text() for t in ax.get_yticklabels()] == table["factor"].tolist()


# --------------------------------------------------------------------------- demo data + CLI


@pytest.fixture(scope="module")
def demo_model(demo_features):
    """Demo features and a points table trained on them."""
    from pipeline.model.train import train

    cfg, features = demo_features
    return train(features, cfg).rules, features.frame


@pytest.mark.slow
def test_demo_data_against_itself_and_a_company_size_shift(demo_model) -> None:
    rules, frame = demo_model
    same = drift_report(rules, frame, frame).table
    assert np.allclose(same["psi"], 0.0) and set(same["verdict"]) == {"stable"}
    assert "company_size" in rules.factor_names()
    batch = frame.copy()
    rng = np.random.default_rng(0)
    batch.loc[rng.random(len(batch)) < 0.8, "company_size"] = "1-10"
    table = drift_report(rules, frame, batch).table.set_index("factor")
    assert table.loc["company_size", "verdict"] == "retrain"
    others = table.drop(index=["company_size", SCORE_ROW])
    assert (others["verdict"] == "stable").all() and np.allclose(others["psi"], 0.0)


@pytest.mark.slow
def test_drift_command_exit_codes(demo_model, demo_dir: Path, make_config,
                                  tmp_path: Path) -> None:
    """stable -> exit 0 and drift.csv/drift.png; a company_size shift -> DriftError (exit 3)."""
    from typer.testing import CliRunner

    from pipeline.cli.main import app
    from pipeline.cli.report import register
    from pipeline.config import load_config
    from pipeline.errors import DriftError
    from pipeline.inputs.features import FeatureSettings
    from pipeline.registry import store as registry

    register(app)
    rules, frame = demo_model
    cfg_path = make_config("demo", data_dir=demo_dir)
    cfg = load_config(cfg_path)
    registry.connect(cfg.registry.tracking_uri, experiment=cfg.experiment_name,
                     artifact_location=cfg.registry.artifact_location)
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "points_rules.json").write_text(rules.to_json(), encoding="utf-8")
    registry.log_training(model_name=cfg.model_name, params={}, metrics={}, tags={},
                          artifact_dir=tmp_path / "art", rules=rules,
                          feature_settings=FeatureSettings.from_config(cfg),
                          input_example=frame[rules.factor_names()].head(3))
    runner = CliRunner()
    out = tmp_path / "drift"
    same = runner.invoke(app, ["drift", "--config", str(cfg_path), "--model",
                               f"{cfg.model_name}@challenger", "--input",
                               str(demo_dir / "leads.csv"), "--out", str(out)])
    assert same.exit_code == 0, same.output + repr(same.exception)
    table = pd.read_csv(out / "drift.csv")
    assert set(table["verdict"]) == {"stable"} and np.allclose(table["psi"], 0.0)
    assert (out / "drift.png").read_bytes()[:4] == b"\x89PNG"
    leads = pd.read_csv(demo_dir / "leads.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(1)
    leads.loc[rng.random(len(leads)) < 0.8, "company_size"] = "1-10"
    shifted = tmp_path / "shifted.csv"
    leads.to_csv(shifted, index=False)
    moved = runner.invoke(app, ["drift", "--config", str(cfg_path), "--model",
                                f"{cfg.model_name}@challenger", "--input", str(shifted),
                                "--out", str(out)])
    assert isinstance(moved.exception, DriftError), moved.output + repr(moved.exception)
    assert moved.exception.exit_code == 3
    assert "company_size" in moved.exception.message
    table = pd.read_csv(out / "drift.csv").set_index("factor")
    assert table.loc["company_size", "verdict"] == "retrain"
    assert (table.drop(index=["company_size", SCORE_ROW])["verdict"] == "stable").all()
