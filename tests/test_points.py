"""PointsScorecard: scikit-learn conformance, scaling invariants and demo truth recovery."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.utils.estimator_checks import parametrize_with_checks

from pipeline.config import load_config
from pipeline.inputs.features import build_features
from pipeline.inputs.reader import read_table
from pipeline.inputs.validate import validate_leads
from pipeline.model.calibration import calibration_table, rounding_fidelity
from pipeline.model.encoding import FactorEncoder
from pipeline.model.points import PointsScorecard
from pipeline.model.scaling import build_rules, round_points, scale_points
from pipeline.model.train import train
from pipeline.scoring.factor_lookup import unseen_counts
from pipeline.scoring.frame import score_frame

FAST = {"c_grid": (1.0,), "cv_folds": 2}
SIZE_EFFECT = {"1-10": -0.5, "11-50": 0.0, "51-200": 0.3, "201+": 0.6}
EMAIL_EFFECT = {"business": 0.0, "freemail": -0.8, "disposable": -1.6}


def _leads(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Seeded leads with known effects: two categorical FIT factors, one numeric PAIN factor."""
    rng = np.random.default_rng(seed)
    size = rng.choice(list(SIZE_EFFECT), n, p=[0.3, 0.3, 0.25, 0.15])
    email = rng.choice(list(EMAIL_EFFECT), n, p=[0.6, 0.3, 0.1])
    visits = rng.poisson(2.0, n).astype(float)
    visits[rng.random(n) < 0.1] = np.nan
    z = (-1.5 + pd.Series(size).map(SIZE_EFFECT).to_numpy()
         + pd.Series(email).map(EMAIL_EFFECT).to_numpy() + 0.35 * np.nan_to_num(visits))
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return pd.DataFrame({"company_size": size, "email_type": email, "visits": visits}), y


GROUPS = {"company_size": "FIT", "email_type": "FIT", "visits": "PAIN"}


@pytest.fixture(scope="module")
def leads() -> tuple[pd.DataFrame, np.ndarray]:
    return _leads(1500, 0)


@pytest.fixture(scope="module")
def fitted(leads) -> PointsScorecard:
    X, y = leads
    return PointsScorecard(groups=GROUPS, **FAST).fit(X, y)


# --- scikit-learn conformance ------------------------------------------------------------


@parametrize_with_checks([PointsScorecard(**FAST)])
def test_sklearn_conformance(estimator, check):
    check(estimator)


@pytest.mark.parametrize("labels", [("lost", "won"), (-1, 1), (3, 7), (False, True)])
def test_any_two_labels_give_the_same_table(leads, fitted, labels):
    X, y = leads
    y_named = np.where(y == 1, labels[1], labels[0]).astype(type(labels[0]))
    model = PointsScorecard(groups=GROUPS, **FAST).fit(X, y_named)
    assert list(model.classes_) == sorted(labels)
    np.testing.assert_array_equal(model.points(X), fitted.points(X))
    assert set(model.predict(X)) <= set(labels)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba, fitted.predict_proba(X))
    # predict is the class with probability above one half
    expected = np.where(proba[:, 1] > 0.5, model.classes_[1], model.classes_[0])
    np.testing.assert_array_equal(model.predict(X), expected)


def test_fit_does_not_mutate_inputs(leads):
    X, y = leads
    X_before, y_before = X.copy(deep=True), y.copy()
    model = PointsScorecard(groups=GROUPS, **FAST)
    params_before = copy.deepcopy(model.get_params())
    model.fit(X, y)
    pd.testing.assert_frame_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    assert model.get_params() == params_before


def test_feature_names_and_column_validation(leads, fitted):
    X, _ = leads
    assert list(fitted.feature_names_in_) == list(X.columns)
    assert fitted.feature_names_in_.dtype == object
    assert fitted.n_features_in_ == 3
    with pytest.raises(ValueError, match="Feature names seen at fit time, yet now missing"):
        fitted.points(X.drop(columns="visits"))
    with pytest.raises(ValueError, match="Feature names unseen at fit time"):
        fitted.points(X.rename(columns={"visits": "page_views"}))
    with pytest.raises(ValueError, match="same order"):
        fitted.points(X[["visits", "company_size", "email_type"]])
    with (pytest.raises(ValueError, match="X has 2 features, but PointsScorecard is expecting 3"),
          pytest.warns(UserWarning, match="does not have valid feature names")):
        fitted.points(X.drop(columns="visits").to_numpy())
    # a bare array in the fitted column order still scores (scikit-learn warns about it)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(fitted.points(X.to_numpy()), fitted.points(X))


def test_numeric_array_with_nan(leads):
    X, y = leads
    array = np.column_stack([X["visits"].to_numpy(), np.random.default_rng(1).normal(size=len(X))])
    assert np.isnan(array).any()
    model = PointsScorecard(**FAST).fit(array, y)
    assert model.n_features_in_ == 2
    assert not hasattr(model, "feature_names_in_")
    assert list(model.transform(array).columns) == ["x0", "x1"]
    assert model.points_table().query("factor == 'x0'")["level"].eq("(missing)").any()
    assert np.isfinite(model.predict_proba(array)).all()
    with pytest.raises(ValueError, match="Reshape your data"):
        model.points(array[:, 0])


def test_single_class_and_multiclass_are_refused(leads):
    X, y = leads
    with pytest.raises(ValueError, match="one class"):
        PointsScorecard(**FAST).fit(X, np.ones(len(X), dtype=int))
    with pytest.raises(ValueError, match="Only binary classification"):
        PointsScorecard(**FAST).fit(X, np.arange(len(X)) % 3)


# --- points, transform, FIT + PAIN -------------------------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), scaling=st.sampled_from(["pdo", "minmax"]),
       cap=st.sampled_from([None, (-20, 40)]))
def test_points_are_transform_row_sums_and_fit_plus_pain(seed, scaling, cap):
    X, y = _leads(400, seed)
    model = PointsScorecard(groups=GROUPS, scaling=scaling, cap=cap, **FAST).fit(X, y)
    per_factor = model.transform(X)
    sums = per_factor.to_numpy().sum(axis=1)
    expected = sums if cap is None else np.clip(sums, *cap)
    np.testing.assert_array_equal(model.points(X), expected)
    scored = score_frame(model.rules_, X)
    np.testing.assert_array_equal(scored["fit"] + scored["pain"], sums)
    np.testing.assert_array_equal(scored["points"], expected)
    np.testing.assert_array_equal(scored["fit"],
                                  per_factor[["company_size", "email_type"]].sum(axis=1))
    np.testing.assert_array_equal(scored["pain"], per_factor["visits"])


# --- min-max scaling ---------------------------------------------------------------------


def _encoder(level_counts: list[int]) -> FactorEncoder:
    """An encoder whose factors have the given numbers of levels (one lead per level)."""
    width = max(level_counts)
    columns = {f"f{j}": [f"l{i % k}" for i in range(width)] for j, k in enumerate(level_counts)}
    return FactorEncoder(min_leads=1).fit(pd.DataFrame(columns))


def _check_minmax(level_counts, coef_values, score_range):
    encoder = _encoder(level_counts)
    coef = np.asarray(coef_values[: encoder.offsets_[-1]], dtype=float)
    low, high = score_range
    scaled = scale_points(coef, -1.0, encoder, scaling="minmax", pdo=20, base_score=None,
                          base_odds=None, score_range=score_range)
    rounded = round_points(scaled, encoder)
    blocks = list(zip(encoder.offsets_[:-1], encoder.offsets_[1:], strict=True))
    spread = sum(np.ptp(coef[a:b]) for a, b in blocks)
    for values, tol in ((scaled.values, 1e-6 * max(1, high - low)), (rounded, 0)):
        assert sum(values[a:b].min() for a, b in blocks) == pytest.approx(low, abs=tol)
        if spread > 0:
            assert sum(values[a:b].max() for a, b in blocks) == pytest.approx(high, abs=tol)
    assert np.issubdtype(rounded.dtype, np.integer)
    for a, b in blocks:  # rounding never reorders levels within a factor, nor splits ties
        c, p = coef[a:b], rounded[a:b]
        assert np.all((c[:, None] < c[None, :]) <= (p[:, None] <= p[None, :]))
        assert np.all((c[:, None] == c[None, :]) <= (p[:, None] == p[None, :]))
        assert np.max(np.abs(rounded[a:b] - scaled.values[a:b])) <= 1.0 + 1e-9
    # the rules carry the same range (missing and unseen included, unseen_points = 0)
    rules = build_rules(encoder, rounded, groups={}, unseen_points=0, missing_values=[],
                        scaling=scaled.params)
    assert sum(f.min_points for f in rules) == low
    if spread > 0:
        assert sum(f.max_points for f in rules) == high


@pytest.mark.parametrize("score_range", [(0, 100), (-50, 50), (10, 500)])
def test_minmax_range_exact_on_fitted_model(leads, score_range):
    X, y = leads
    model = PointsScorecard(groups=GROUPS, scaling="minmax", score_range=score_range,
                            **FAST).fit(X, y)
    assert sum(f.min_points for f in model.rules_.factors) == score_range[0]
    assert sum(f.max_points for f in model.rules_.factors) == score_range[1]
    _check_minmax([len(f.slots) for f in model.encoder_.factors_], model.fit_.coef, score_range)


@settings(max_examples=150, deadline=None)
@given(level_counts=st.lists(st.integers(1, 7), min_size=1, max_size=8),
       coef_values=st.lists(st.floats(-4, 4, allow_subnormal=False), min_size=56, max_size=56),
       score_range=st.one_of(
           st.sampled_from([(0, 100), (-50, 50), (10, 500)]),
           st.tuples(st.integers(-1000, 1000), st.integers(1, 2000)).map(
               lambda t: (t[0], t[0] + t[1]))))
def test_minmax_range_exact_for_any_coefficients(level_counts, coef_values, score_range):
    _check_minmax(level_counts, coef_values, score_range)


# --- PDO scaling and the base score offset -----------------------------------------------


@settings(max_examples=60, deadline=None)
@given(pdo=st.floats(0.5, 200), ref=st.floats(-3, 3), other=st.floats(-3, 3))
def test_pdo_doubling_the_odds_gives_pdo_points(pdo, ref, other):
    # factor f0: level l0 is the most common (reference), l1 doubles its odds, l2 halves them
    frame = pd.DataFrame({"f0": ["l0"] * 5 + ["l1"] * 3 + ["l2"] * 2,
                          "f1": ["a"] * 6 + ["b"] * 4})
    encoder = FactorEncoder(min_leads=1).fit(frame)
    coef = np.array([ref, ref + math.log(2), ref - math.log(2), other, other + 1.0])
    scaled = scale_points(coef, 0.3, encoder, scaling="pdo", pdo=pdo, base_score=None,
                          base_odds=None, score_range=(0, 100))
    np.testing.assert_allclose(scaled.values[:3], [0.0, pdo, -pdo], atol=1e-9 * pdo)
    assert scaled.values[3] == 0.0
    assert scaled.values[4] == pytest.approx(pdo / math.log(2))
    assert scaled.params["factor"] == pytest.approx(pdo / math.log(2))


@pytest.mark.parametrize(("base_score", "base_odds", "pdo"), [(600, 50, 20), (0, 1, 10),
                                                               (100, 0.2, 40)])
def test_base_score_puts_the_classic_offset_into_the_total(leads, base_score, base_odds, pdo):
    X, y = leads
    model = PointsScorecard(groups=GROUPS, pdo=pdo, base_score=base_score, base_odds=base_odds,
                            **FAST).fit(X, y)
    factor = pdo / math.log(2)
    offset = base_score - factor * math.log(base_odds)
    assert model.rules_.scaling["offset"] == pytest.approx(offset)
    log_odds = model.fit_.intercept + np.asarray(
        model.encoder_.transform(X) @ model.fit_.coef).ravel()
    classic = offset + factor * log_odds
    # before rounding only the constant is rounded to an integer ...
    assert np.max(np.abs(model.unrounded_points(X) - classic)) <= 0.5 + 1e-9
    # ... after rounding each factor adds at most half a point more
    n_factors = len(model.rules_.factors)
    assert np.max(np.abs(model.points(X) - classic)) <= 0.5 * (n_factors + 1) + 1e-9


# --- unseen levels -------------------------------------------------------------------------


@pytest.mark.parametrize(("scaling", "unseen_points"), [("pdo", 0), ("pdo", 7), ("minmax", 0),
                                                        ("minmax", -3)])
def test_unseen_levels_get_documented_points_and_are_counted(leads, scaling, unseen_points):
    X, y = leads
    model = PointsScorecard(groups=GROUPS, scaling=scaling, unseen_points=unseen_points,
                            **FAST).fit(X, y)
    table = model.points_table()
    sizes = table[(table["factor"] == "company_size") & (table["level"] != "(unseen)")]
    if scaling == "pdo":  # the reference (most common) level
        baseline = int(sizes.sort_values("leads", kind="stable")["points"].iloc[-1])
        assert baseline == 0
    else:  # the factor's minimum
        baseline = int(sizes["points"].min())
    new = X.head(20).copy()
    new.loc[new.index[:5], "company_size"] = "5000+"  # never seen in training
    scored = score_frame(model.rules_, new)
    assert scored.notna().all().all()
    per_factor = model.transform(new)
    assert (per_factor["company_size"].iloc[:5] == baseline + unseen_points).all()
    assert unseen_counts(model.rules_, new) == {"company_size": 5}
    assert np.isfinite(model.unrounded_points(new)).all()


def test_unrounded_points_are_the_design_times_the_unrounded_slot_points(leads, fitted):
    X, _ = leads
    new = X.head(50).copy()
    new.loc[new.index[:5], "company_size"] = "5000+"  # unseen: the integer unseen points
    codes = fitted.encoder_.codes(new)
    design = fitted.encoder_.transform(new)  # built from codes computed on its own
    want = np.asarray(design @ fitted.scaled_.values).ravel()
    for j, factor in enumerate(fitted.rules_.factors):
        want = want + np.where(codes[:, j] < 0, factor.unseen_points, 0)
    assert np.array_equal(fitted.unrounded_points(new), want)


def test_calibration_probability_per_lead_is_computed_once_per_total(leads, fitted):
    X, y = leads
    total = fitted.points(X)
    table = calibration_table(y, total, fitted.rules_, bands=5)
    edges = np.unique(np.quantile(total, np.linspace(0, 1, 6)))
    band = np.clip(np.searchsorted(edges, total, side="right") - 1, 0, len(edges) - 2)
    for row in table.itertuples(index=False):
        in_band = total[band == row.band - 1]
        want = float(np.mean([fitted.rules_.probability(t) for t in in_band]))
        assert row.predicted_rate == want and row.leads == in_band.size


# --- rounding fidelity ---------------------------------------------------------------------


def test_rounding_fidelity_keys_and_sanity():
    X, y = _leads(2000, 0)
    X_test, y_test = _leads(1000, 1)
    reports = {}
    for pdo in (200.0, 0.5):
        model = PointsScorecard(groups=GROUPS, pdo=pdo, **FAST).fit(X, y)
        reports[pdo] = rounding_fidelity(y_test, model.unrounded_points(X_test),
                                         model.points(X_test), threshold=0)
    assert set(reports[200.0]) == {
        "auc_unrounded", "auc_rounded", "rounding_auc_loss", "ks_unrounded", "ks_rounded",
        "spearman", "max_abs_diff_points", "threshold_crossings"}
    big, tiny = reports[200.0], reports[0.5]
    for report in reports.values():
        assert report["rounding_auc_loss"] == pytest.approx(
            report["auc_unrounded"] - report["auc_rounded"])
        assert 0.5 < report["auc_unrounded"] < 1
        assert report["max_abs_diff_points"] <= 0.5 * 3 + 1e-9  # three factors
    assert abs(big["rounding_auc_loss"]) < 0.005
    assert big["spearman"] > 0.99
    assert tiny["rounding_auc_loss"] > 0.02
    assert tiny["rounding_auc_loss"] > big["rounding_auc_loss"]
    assert tiny["spearman"] < big["spearman"]


def test_rounding_fidelity_naive_reference():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    unrounded = rng.normal(size=300) * 5 + y * 2
    rounded = np.rint(unrounded)
    report = rounding_fidelity(y, unrounded, rounded, threshold=1.0)
    crossed = sum((u >= 1.0) != (r >= 1.0) for u, r in zip(unrounded, rounded, strict=True))
    assert report["threshold_crossings"] == crossed
    assert report["max_abs_diff_points"] == pytest.approx(max(abs(unrounded - rounded)))
    assert report["spearman"] == pytest.approx(stats.spearmanr(unrounded, rounded).statistic)


# --- demo data: truth recovery and no signal -----------------------------------------------


def _train_demo(config_path: Path, demo_dir: Path):
    config = load_config(config_path)
    truth = json.loads((demo_dir / "truth.json").read_text())
    leads = validate_leads(read_table(config.data.leads).frame, config,
                           source=str(config.data.leads), training=True)
    # the true half-lives: the half-life search is tested in test_decay, not here
    features = build_features(leads, config, events=Path(config.data.events),
                              half_lives=truth["half_life_days"])
    return train(features, config), truth


def test_demo_truth_recovery(demo_dir, make_config):
    result, truth = _train_demo(make_config("demo", data_dir=demo_dir), demo_dir)
    assert not result.no_signal
    table = result.points_table
    pts = {(r.factor, r.level): r.points for r in table.itertuples()}
    coef = truth["coefficients"]
    # negative signals in the truth are negative points
    for level in ("freemail", "disposable"):
        assert pts[("email_domain_type", level)] < pts[("email_domain_type", "business")]
        assert pts[("email_domain_type", level)] < 0
    if ("name_spam", "yes") in pts:
        assert pts[("name_spam", "yes")] < pts[("name_spam", "no")]
    assert pts[("target_account", "yes")] > pts[("target_account", "no")]
    # seniority: the fitted points rank the levels as the true coefficients do
    levels = ["individual", "manager", "director", "vp", "c_level", "student"]
    true = [coef.get(f"seniority={lvl}", 0.0) for lvl in levels]
    fitted = [pts[("seniority", lvl)] for lvl in levels]
    assert stats.spearmanr(true, fitted).statistic > 0.9
    assert max(fitted) == pts[("seniority", "c_level")]
    assert min(fitted) == pts[("seniority", "student")]
    # product engagement outweighs non-product, which outweighs trivial engagement
    top = table.groupby("factor")["points"].max()
    assert top["decayed_product"] > top["decayed_non_product"] > top["decayed_trivial"]
    assert result.metrics["holdout_auc"] > 0.75


def test_demo_no_signal_when_label_is_shuffled(demo_dir, make_config, tmp_path):
    leads = pd.read_csv(demo_dir / "leads.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(11)
    shuffled = leads.assign(outcome=rng.permutation(leads["outcome"].to_numpy()),
                            outcome_at="")
    path = tmp_path / "leads.csv"
    shuffled.to_csv(path, index=False)
    result, _ = _train_demo(make_config("demo", data_dir=demo_dir, leads=path), demo_dir)
    assert result.analysis.kept == []
    assert result.no_signal is True
    assert result.points_table.empty
    assert result.rules.factors == []
    assert any("no signal" in note for note in result.notes)
