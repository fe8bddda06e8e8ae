"""Points people trust: monotone trends, sign consistency, small levels and locked points,
enforced in the fit (pipeline.model.constraints), and what they cost (pipeline.model.trust)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.analysis.associations import pairwise_associations
from pipeline.analysis.lift_levels import level_frame
from pipeline.model.constraints import against_lift
from pipeline.model.points import PointsScorecard
from pipeline.model.trends import choose_trend, direction_changes
from pipeline.model.trust import ConstraintEffect, contradictions, trend_changes, trust_table

PDO = 20.0


def _scorecard(**params) -> PointsScorecard:
    base = {"c_grid": (0.1, 1.0, 10.0), "cv_folds": 3, "pdo": PDO, "n_bins": 8}
    return PointsScorecard(**{**base, **params})


def _monotone(n: int = 1500, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """x has a monotone (increasing) true effect; colour is noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, n)
    colour = rng.choice(["red", "green", "blue"], n)
    logit = -2.0 + 0.25 * x
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"x": x, "colour": colour}), y


def _bin_points(model: PointsScorecard, name: str) -> np.ndarray:
    j = [f.name for f in model.encoder_.factors_].index(name)
    factor = model.encoder_.factors_[j]
    lo = model.encoder_.offsets_[j]
    return model.slot_points_[lo:lo + factor.n_bins]


def _confounded(n: int = 4000, seed: int = 5) -> pd.DataFrame:
    """``channel = partner`` converts well on its own only because partner leads are mostly
    ``size = large``; within each size it converts *worse* (a conditional effect of -0.6)."""
    rng = np.random.default_rng(seed)
    large = rng.random(n) < 0.4
    partner = rng.random(n) < np.where(large, 0.7, 0.1)
    logit = -2.0 + 2.5 * large - 0.6 * partner
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"size": np.where(large, "large", "small"),
                         "channel": np.where(partner, "partner", "direct"),
                         "converted": y})


def _level_points(model: PointsScorecard, factor: str, level: str) -> int:
    table = model.points_table()
    row = table[(table["factor"] == factor) & (table["level"] == level)]
    return int(row["points"].iloc[0])


def _weighted_average(model: PointsScorecard, factor: str) -> float:
    table = model.points_table()
    rows = table[(table["factor"] == factor) & (table["leads"] > 0)]
    return float(np.average(rows["points"], weights=rows["leads"]))


# ------------------------------------------------------------------------------- trends


def test_choose_trend_reads_the_shape_off_the_shrunk_rates():
    leads = np.full(6, 100.0)
    assert choose_trend(np.array([.1, .12, .15, .2, .22, .3]), leads, "auto") == ("ascending",
                                                                                 None)
    assert choose_trend(np.array([.3, .2, .2, .1, .1, .05]), leads, "auto")[0] == "descending"
    assert choose_trend(np.array([.1, .2, .35, .3, .15, .08]), leads, "auto") == ("peak", 2)
    assert choose_trend(np.array([.3, .1, .05, .1, .2, .4]), leads, "auto")[0] == "valley"
    assert choose_trend(np.array([.1, .2, .35, .3, .15, .08]), leads, "free") == ("free", None)
    assert direction_changes(np.array([1, 2, 2, 1, 3])) == 2


def test_auto_trend_makes_bin_points_monotone_in_the_truths_direction():
    X, y = _monotone()
    auto = _scorecard().fit(X, y)
    free = _scorecard(trend="free").fit(X, y)
    points = _bin_points(auto, "x")
    assert auto.trusted_.shapes["x"] == ("ascending", None)
    assert np.all(np.diff(points) >= 0) and points[-1] > points[0]
    assert "x" not in free.trusted_.shapes or free.trusted_.shapes["x"][0] == "free"
    # the rules hold the same monotone points
    rules = {f.name: f for f in auto.rules_.factors}
    assert rules["x"].bin_points == points.tolist()


def test_explicit_trend_and_peak_are_enforced():
    X, y = _monotone()
    descending = _scorecard(trend={"x": "descending"}).fit(X, y)
    assert np.all(np.diff(_bin_points(descending, "x")) <= 0)
    peak = _scorecard(trend={"x": "peak"}).fit(X, y)
    shape, split = peak.trusted_.shapes["x"]
    points = _bin_points(peak, "x")
    assert shape == "peak" and 1 <= split <= len(points) - 2
    assert np.all(np.diff(points[:split + 1]) >= 0) and np.all(np.diff(points[split:]) <= 0)
    with pytest.raises(ValueError, match="trend must be one of"):
        _scorecard(trend={"x": "sideways"}).fit(X, y)


# ---------------------------------------------------------------------- sign consistency


def test_sign_consistency_puts_a_confounded_level_on_its_lifts_side():
    data = _confounded()
    X, y = data[["size", "channel"]], data["converted"].to_numpy()
    rate = pd.Series(y).groupby(X["channel"].to_numpy()).mean()
    assert rate["partner"] > y.mean()  # alone, partner converts better ...
    free = _scorecard(sign_consistent=False).fit(X, y)
    assert _level_points(free, "channel", "partner") < _weighted_average(free, "channel")  # ...
    # ... but conditionally worse: without sign consistency its points argue with its lift
    pairwise = pairwise_associations(X, level_frame=level_frame(X)[0])
    found = contradictions(free, pairwise)
    row = found[(found["factor"] == "channel") & (found["level"] == "partner")]
    assert len(row) == 1 and row["explained_by"].iloc[0] == "size"
    assert row["association"].iloc[0] > 0.3
    trusted = _scorecard().fit(X, y)
    # held on its side (here at the average: a binary factor can only flatten)
    assert _level_points(trusted, "channel", "partner") >= _weighted_average(trusted, "channel")
    assert (_level_points(trusted, "channel", "partner")
            > _level_points(free, "channel", "partner"))
    assert len(contradictions(trusted, pairwise)) == 0
    assert len(against_lift(trusted.encoder_, trusted.fit_.coef, trusted.trusted_.evidence,
                            tol=1e-3)) == 0
    held = set(trusted.encoder_.get_feature_names_out()[trusted.trusted_.sign_bounded])
    assert held and held <= {"channel=partner", "channel=direct"}  # (two levels: one bound)


# ------------------------------------------------------------------- small levels, locks


def test_small_levels_carry_few_points():
    rng = np.random.default_rng(11)
    n = 3000
    source = rng.choice(["web", "ads", "event"], n).astype(object)
    rare = rng.choice(n, 80, replace=False)
    source[rare[:5]] = "fax"  # 5 leads: pooled into (other), still small
    source[rare[5:30]] = "radio"  # 25 leads: its own level, but thin
    source[rare[30:80]] = "tv"
    logit = np.where(source == "web", 0.5, -1.0)
    logit = np.where(np.isin(source, ["fax", "radio"]), 3.0, logit)  # tiny levels all win
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"source": source})
    trusted = _scorecard(min_leads=20).fit(X, y)
    table = trusted.points_table()
    table = table[table["level"] != "(unseen)"]
    assert set(table["level"]) >= {"(other)", "radio"}
    small = table[table["leads"] < 30]
    assert len(small) and small["points"].abs().max() <= 10
    assert int(table.loc[table["level"] == "(other)", "points"].iloc[0]) == 0  # merged: ref
    free = _scorecard(min_leads=20, trend="free", sign_consistent=False)
    assert _level_points(free.fit(X, y), "source", "radio") <= 10  # the cap is no constraint


def test_a_locked_level_keeps_its_points_and_a_correlated_factor_compensates():
    data = _confounded()
    X, y = data[["size", "channel"]], data["converted"].to_numpy()
    free = _scorecard(sign_consistent=False).fit(X, y)
    locked = _scorecard(sign_consistent=False, locked={"channel = partner": 15}).fit(X, y)
    assert _level_points(locked, "channel", "partner") == 15
    rules = {f.name: f for f in locked.rules_.factors}
    assert rules["channel"].levels["partner"] == 15
    # partner leads are mostly large: a partner bonus it never earned is taken off "large"
    assert _level_points(free, "channel", "partner") < 15
    assert _level_points(locked, "size", "large") < _level_points(free, "size", "large")
    with pytest.raises(ValueError, match="no level"):
        _scorecard(locked={"channel = fax": 5}).fit(X, y)


def test_trust_table_costs_are_with_minus_without():
    table = trust_table(0.90, [ConstraintEffect("columns.trend", "x: ascending", 0.905),
                               ConstraintEffect("all (unconstrained)", "all", 0.91)])
    assert table.columns.tolist() == ["constraint", "changed", "auc", "auc_without", "auc_cost"]
    assert table["auc_cost"].round(6).tolist() == [0.005, 0.01]


# ------------------------------------------------------------------------ real data


def _check_trusted(model: PointsScorecard) -> None:
    """0 significant levels against their lift (rounded points), no ordered factor that turns
    more often than its shrunk rates, no level under 30 leads with more than 10 points."""
    evidence = model.trusted_.evidence
    table = model.points_table()
    table = table[table["level"] != "(unseen)"].reset_index(drop=True)
    assert len(table) == len(evidence.leads)
    for _, rows in table.groupby("factor", sort=False):
        average = np.average(rows["points"], weights=rows["leads"])
        for i, row in rows.iterrows():
            if evidence.p_adjusted[i] < 0.05:
                assert evidence.side[i] * (row["points"] - average) >= 0, row.to_dict()
    turns = trend_changes(model)
    assert (turns["points_direction_changes"] <= turns["shrunk_direction_changes"]).all(), turns
    small = table[table["leads"] < 30]
    assert small.empty or small["points"].abs().max() <= 10


def _fit_on_all(cfg, features):
    """Selection and the points table on every lead of ``features``."""
    from pipeline.model.train_analysis import analyse, with_text_as_categories
    from pipeline.model.train_fit import fit_scorecard

    frame = with_text_as_categories(features.frame, features.factors)
    y = frame["converted"].to_numpy(dtype=int)
    analysis = analyse(frame[features.factors].reset_index(drop=True), pd.Series(y),
                       features.groups, cfg, numeric=features.numeric)
    X = frame[analysis.kept].reset_index(drop=True)
    groups = {c: features.groups[c] for c in analysis.kept}
    return fit_scorecard(X, y, groups, features.numeric, cfg)


def test_demo_points_are_trusted(demo_features):
    cfg, features = demo_features
    _check_trusted(_fit_on_all(cfg, features))


def test_x_education_points_are_trusted(shared_data):
    from pipeline.cli.main import read_leads
    from pipeline.config import load_config
    from pipeline.inputs.features import build_features

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "x_education.yaml",
                      data=shared_data)
    settings = cfg.model_dump()  # every trust constraint on (the shipped config turns them off)
    settings["columns"]["trend"] = {}
    settings["points"]["sign_consistent"] = True
    cfg = type(cfg).model_validate(settings)
    features = build_features(read_leads(cfg, training=True), cfg, events=None)
    _check_trusted(_fit_on_all(cfg, features))


def test_training_reports_what_each_constraint_costs(demo_features):
    from pipeline.model.train import train

    cfg, features = demo_features
    result = train(features, cfg)
    trust = result.trust
    assert trust["constraint"].tolist()[-1] == "all (unconstrained)"
    assert "points.sign_consistent" in trust["constraint"].tolist()
    assert result.metrics["holdout_auc_unconstrained"] == trust["auc_without"].iloc[-1]
    assert np.allclose(trust["auc_cost"], trust["auc_without"] - trust["auc"])
    # a lock, and sign consistency off: the lock's cost and each contradiction are listed
    table = result.points_table
    candidates = table[(table["kind"] == "categorical") & (table["leads"] >= 30)
                       & (table["points"] != 0) & ~table["level"].str.startswith("(")]
    factor, level = candidates[["factor", "level"]].iloc[0]
    settings = cfg.model_dump()
    settings["points"].update(sign_consistent=False, locked={f"{factor} = {level}": 12})
    loose = train(features, type(cfg).model_validate(settings))
    rows = loose.trust.set_index("constraint")
    assert f"points.locked: {factor} = {level}" in rows.index
    assert "points.sign_consistent" not in rows.index
    locked = loose.points_table
    assert locked.loc[(locked["factor"] == factor) & (locked["level"] == level),
                      "points"].item() == 12
    listed = loose.trust[loose.trust["constraint"] == "contradiction"]
    assert all("explained by" in text for text in listed["changed"])


def _leaves(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _leaves(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _leaves(value)
    else:
        yield tree


def _rule_objects(tree, text: str) -> list[dict]:
    """The smallest JSON objects that hold ``text`` somewhere inside (one per rule)."""
    if isinstance(tree, list):
        return [o for value in tree for o in _rule_objects(value, text)]
    if not isinstance(tree, dict) or text not in json.dumps(tree):
        return []
    inner = [o for value in tree.values() for o in _rule_objects(value, text)]
    holding_rule = [o for o in inner if any(isinstance(v, (int, float)) and not
                                             isinstance(v, bool) for v in _leaves(o))]
    return holding_rule or [tree]


@pytest.mark.slow
def test_a_locked_level_keeps_its_points_in_every_export():
    """``points.locked`` is a fact every export carries: the rules files state the locked 15
    points, and every executable export scores a partner lead 15 points above the same lead
    on the reference channel."""
    import pipeline.exports as exports
    from pipeline.exports import verify

    data = _confounded()
    X, y = data[["size", "channel"]], data["converted"].to_numpy()
    rules = _scorecard(sign_consistent=False, locked={"channel = partner": 15}).fit(X, y).rules_
    assert {f.name: f for f in rules.factors}["channel"].levels["partner"] == 15
    table = json.loads(exports.export_json(rules))
    channel = next(f for f in table["factors"] if f["name"] == "channel")
    assert channel["levels"]["partner"] == 15
    rows = pd.read_csv(io.StringIO(exports.export_csv(rules)))
    partner = rows[(rows["factor"] == "channel") & rows["condition"].str.contains("partner")]
    assert partner["points"].tolist() == [15]
    sheet = pd.read_csv(io.StringIO(exports.export_crm_csv(rules)), comment="#")
    assert sheet.loc[sheet["value"] == "partner", "points"].tolist() == [15]
    hubspot = json.loads(exports.export_hubspot(rules))
    partner_rules = _rule_objects(hubspot, '"partner"')
    assert partner_rules and all(15 in [v for v in _leaves(o) if isinstance(v, int)]
                                 for o in partner_rules)
    leads = pd.DataFrame({"lead_id": [1, 2, 3, 4], "size": ["small", "small", "large", "large"],
                          "channel": ["partner", "direct", "partner", "direct"]})
    reference = verify.score_reference(rules, leads)["points"].to_numpy()
    assert (reference[[0, 2]] - reference[[1, 3]]).tolist() == [15, 15]
    for result in verify.verify_exports(rules, leads):
        assert result.mismatches == 0, result.format
