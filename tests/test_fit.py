"""The regularised fit (C by stratified CV log loss), the statsmodels table, holdout splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from pipeline.model.encoding import FactorEncoder
from pipeline.model.evaluate import holdout_split
from pipeline.model.fit import coefficient_table, fit_regularised, reference_slots

SENIORITY = {"individual": 0.0, "manager": 0.3, "director": 0.55, "vp": 0.75, "c_level": 0.9,
             "student": -1.1}
EMAIL = {"business": 0.0, "freemail": -0.8, "disposable": -1.6}
SOURCE = {"organic": 0.0, "referral": 0.4, "outbound": -0.2, "event": 0.0}


def _demo_like(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Demo-like leads: seniority, email type, source, target account and product usage."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "seniority": rng.choice(list(SENIORITY), n, p=[0.35, 0.2, 0.1, 0.1, 0.1, 0.15]),
        "email_domain_type": rng.choice(list(EMAIL), n, p=[0.65, 0.27, 0.08]),
        "lead_source": rng.choice(list(SOURCE), n, p=[0.4, 0.2, 0.25, 0.15]),
        "target_account": rng.choice(["no", "yes"], n, p=[0.85, 0.15]),
        "product_events": rng.poisson(1.0, n).astype(float),
    })
    z = (-2.0 + frame["seniority"].map(SENIORITY) + frame["email_domain_type"].map(EMAIL)
         + frame["lead_source"].map(SOURCE) + 0.8 * (frame["target_account"] == "yes")
         + 0.6 * np.log1p(frame["product_events"])).to_numpy()
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return frame, y


@pytest.fixture(scope="module")
def demo_like():
    X, y = _demo_like(3000, 5)
    encoder = FactorEncoder(min_leads=30).fit(X)
    design = encoder.transform(X)
    fit = fit_regularised(design, y, c_grid=[0.01, 0.1, 1.0, 10.0], folds=5, seed=0,
                          max_iter=2000)
    return X, y, encoder, design, fit


COLUMNS = ["factor", "level", "group", "leads", "reference", "coef", "std_err", "z", "p_value",
           "ci_low", "ci_high", "odds_ratio", "sklearn_coef"]


def test_c_is_chosen_by_stratified_cv_log_loss(demo_like):
    _, y, _, design, fit = demo_like
    curve = fit.cv_curve
    assert list(curve.columns) == ["C", "cv_log_loss", "cv_auc"]
    assert curve.loc[curve["cv_log_loss"].idxmin(), "C"] == fit.C
    # naive reference for one grid point
    splitter = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    losses = []
    oof = np.empty(len(y))
    for train, test in splitter.split(np.zeros(len(y)), y):
        model = LogisticRegression(C=1.0, max_iter=2000, tol=1e-10).fit(design[train], y[train])
        oof[test] = model.predict_proba(design[test])[:, 1]
        losses.append(log_loss(y[test], oof[test]))
    assert curve.loc[curve["C"] == 1.0, "cv_log_loss"].item() == pytest.approx(np.mean(losses),
                                                                                rel=1e-4)
    assert curve.loc[curve["C"] == 1.0, "cv_auc"].item() == pytest.approx(roc_auc_score(y, oof),
                                                                           abs=1e-4)
    assert fit.n_iter >= 1
    assert fit.coef.shape == (design.shape[1],)


def test_coefficient_table_columns_and_formulas(demo_like):
    X, y, encoder, design, fit = demo_like
    groups = {c: "FIT" for c in X.columns} | {"product_events": "PAIN"}
    table, notes = coefficient_table(encoder, design, y, fit, groups)
    assert list(table.columns) == COLUMNS
    assert table.iloc[0]["factor"] == "(intercept)"
    body = table.iloc[1:]
    assert len(body) == design.shape[1]  # one row per encoded level
    refs = body[body["reference"]]
    assert (refs["coef"] == 0).all() and refs["std_err"].isna().all()
    assert len(refs) == len(encoder.factors_)
    rest = body[~body["reference"]]
    assert rest["std_err"].gt(0).all()
    np.testing.assert_allclose(rest["z"], rest["coef"] / rest["std_err"])
    np.testing.assert_allclose(rest["p_value"], 2 * stats.norm.sf(np.abs(rest["z"])))
    np.testing.assert_allclose(rest["ci_low"], rest["coef"] - 1.959964 * rest["std_err"])
    np.testing.assert_allclose(rest["ci_high"], rest["coef"] + 1.959964 * rest["std_err"])
    np.testing.assert_allclose(rest["odds_ratio"], np.exp(rest["coef"]))
    assert set(body.loc[body["factor"] == "product_events", "group"]) == {"PAIN"}
    assert not any("separation" in n for n in notes)


def test_statsmodels_matches_its_own_logit(demo_like):
    import statsmodels.api as sm

    X, y, encoder, design, fit = demo_like
    table, _ = coefficient_table(encoder, design, y, fit, {})
    keep = [i for i in range(design.shape[1]) if i not in set(reference_slots(encoder))]
    result = sm.Logit(y, np.column_stack([np.ones(len(y)), design[:, keep].toarray()])).fit(
        disp=False)
    rest = table.iloc[1:][~table.iloc[1:]["reference"]]
    np.testing.assert_allclose(rest["coef"], result.params[1:], atol=1e-3)
    np.testing.assert_allclose(rest["std_err"], result.bse[1:], rtol=1e-2)


@pytest.fixture(scope="module")
def collinear():
    """"copy" repeats "seniority" under other names: the design is rank-deficient."""
    X, y = _demo_like(1500, 4)
    X = X.assign(copy="s_" + X["seniority"].astype(str))
    encoder = FactorEncoder(min_leads=30).fit(X)
    design = encoder.transform(X)
    fit = fit_regularised(design, y, c_grid=[1.0], folds=3, seed=0, max_iter=2000)
    return y, encoder, design, fit


def test_collinear_levels_still_give_a_table_and_a_note(collinear):
    y, encoder, design, fit = collinear
    table, notes = coefficient_table(encoder, design, y, fit, {})
    assert any(n.startswith("collinear levels") for n in notes), notes
    body = table.iloc[1:][~table.iloc[1:]["reference"]]
    assert np.isfinite(body["coef"]).all() and np.isfinite(body["std_err"]).all()
    assert len(table) == design.shape[1] + 1


def test_collinear_estimate_is_the_same_from_any_start(collinear, monkeypatch):
    # the likelihood is flat along some directions, so the estimate would depend on where
    # Newton starts; the table reports the shortest one
    import pipeline.model.fit as fit_module

    y, encoder, design, fit = collinear
    reference, notes = coefficient_table(encoder, design, y, fit, {})
    assert not any("did not converge" in n for n in notes), notes
    body = reference.iloc[1:][~reference.iloc[1:]["reference"]]
    copies = body[body["factor"] == "copy"].set_index("level")["coef"]
    originals = body[body["factor"] == "seniority"].set_index("level")["coef"]
    # the shortest estimate splits each level's effect equally between the two copies
    np.testing.assert_allclose(copies.rename(lambda v: v[2:]).sort_index(),
                               originals.sort_index(), atol=1e-6)
    start = fit_module._sample_start
    for seed in range(2):
        noise = np.random.default_rng(seed).normal(0, 0.3, design.shape[1] + 1)

        def moved(sampled, labels, noise=noise):
            values = start(sampled, labels)
            return values + noise[:len(values)]

        monkeypatch.setattr(fit_module, "_sample_start", moved)
        table, _ = coefficient_table(encoder, design, y, fit, {})
        np.testing.assert_allclose(table["coef"].to_numpy(float),
                                   reference["coef"].to_numpy(float), atol=1e-6)
        np.testing.assert_allclose(table["std_err"].to_numpy(float),
                                   reference["std_err"].to_numpy(float), rtol=1e-5)


def test_a_warning_raised_as_an_error_costs_only_the_start(demo_like, monkeypatch):
    # warning filters are process-wide: another thread leaving a catch_warnings block can
    # restore an "error" filter while the start is fitted; the table must not change
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    import pipeline.model.fit as fit_module

    X, y, encoder, design, fit = demo_like
    reference, _ = coefficient_table(encoder, design, y, fit, {})

    class Raising(LogisticRegression):
        def fit(self, *args, **kwargs):
            warnings.warn("raised by an 'error' filter", ConvergenceWarning, stacklevel=2)
            return super().fit(*args, **kwargs)

    monkeypatch.setattr(fit_module, "LogisticRegression", Raising)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.setattr(warnings, "simplefilter", lambda *a, **k: None)  # "error" stays
        table, notes = coefficient_table(encoder, design, y, fit, {})
        monkeypatch.undo()
    assert not any("failed" in n for n in notes), notes
    np.testing.assert_allclose(table["coef"].to_numpy(float), reference["coef"].to_numpy(float),
                               atol=1e-6)


def test_levels_absent_from_the_statsmodels_sample_get_no_estimate(demo_like):
    X, y, encoder, design, fit = demo_like
    # drop the leads of one non-reference level: its design column is all zero
    column = next(i for i in range(design.shape[1]) if i not in set(reference_slots(encoder)))
    rows = np.flatnonzero(np.asarray(design[:, column].todense()).ravel() == 0)
    table, notes = coefficient_table(encoder, design[rows], y[rows], fit, {})
    absent = table.iloc[1 + column]
    assert np.isnan(absent["coef"]) and np.isnan(absent["std_err"])
    assert any("no lead in the statsmodels sample" in n for n in notes), notes
    others = table.iloc[1:][~table.iloc[1:]["reference"]].drop(index=1 + column)
    assert np.isfinite(others["coef"]).all() and (others["std_err"] > 0).all()


def test_statsmodels_and_sklearn_agree_on_signs_of_significant_levels(demo_like):
    X, y, encoder, design, fit = demo_like
    table, _ = coefficient_table(encoder, design, y, fit, {})
    significant = table.iloc[1:].query("p_value < 0.05")
    assert len(significant) >= 8
    assert (np.sign(significant["coef"]) == np.sign(significant["sklearn_coef"])).all()
    # and both recover the true direction
    by_level = significant.set_index(["factor", "level"])["coef"]
    assert by_level[("email_domain_type", "disposable")] < 0
    assert by_level[("seniority", "c_level")] > 0
    assert by_level[("target_account", "yes")] > 0


@pytest.mark.parametrize("outcome", [1, 0])
def test_separation_is_reported_by_level_not_raised(outcome):
    X, y = _demo_like(1500, 9)
    X = X.assign(partner=np.where(np.arange(len(X)) % 25 == 0, "gold", "none"))
    y = np.where(X["partner"] == "gold", outcome, y)
    encoder = FactorEncoder(min_leads=30).fit(X)
    design = encoder.transform(X)
    fit = fit_regularised(design, y, c_grid=[1.0], folds=3, seed=0, max_iter=2000)
    table, notes = coefficient_table(encoder, design, y, fit, {})
    word = "won" if outcome else "lost"
    assert any(n.startswith("separation") and "partner=gold" in n and word in n for n in notes)
    assert np.isfinite(fit.coef).all()
    gold = table[(table["factor"] == "partner") & (table["level"] == "gold")]
    assert len(gold) == 1
    assert np.sign(gold["sklearn_coef"].item()) == (1 if outcome else -1)


def test_quasi_separation_is_reported():
    # gold leads win unless flagged "b", and gold + "b" is a level of its own: that level
    # separates perfectly, and partner=gold separates once it is accounted for (quasi)
    rng = np.random.default_rng(2)
    n = 800
    gold = rng.random(n) < 0.1
    flag = rng.choice(["a", "b"], n)
    y = np.where(gold, flag == "a", rng.random(n) < 0.2).astype(int)
    X = pd.DataFrame({"partner": np.where(gold, "gold", "none"), "flag": flag})
    X = X.assign(combo=np.where(gold & (flag == "b"), "gold_b", "other"))
    encoder = FactorEncoder(min_leads=10).fit(X)
    design = encoder.transform(X)
    fit = fit_regularised(design, y, c_grid=[1.0], folds=3, seed=0, max_iter=2000)
    table, notes = coefficient_table(encoder, design, y, fit, {})
    assert any(n.startswith("separation") and "combo=gold_b" in n for n in notes), notes
    assert any(n.startswith("quasi-separation") and "partner=gold" in n for n in notes), notes
    assert table.loc[table["level"] == "gold", "odds_ratio"].item() > 1e4
    assert np.isfinite(fit.coef).all()


def test_forward_in_time_holdout():
    rng = np.random.default_rng(4)
    n = 500
    created = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.permutation(n), unit="D")
    frame = pd.DataFrame({"created_at": created})
    y = (rng.random(n) < 0.2).astype(int)
    split = holdout_split(frame, y, share=0.2, seed=0)
    assert split.method == "forward_in_time"
    assert len(split.holdout) == 100 and len(split.train) == 400
    created_at = frame["created_at"]
    assert created_at.iloc[split.train].max() < created_at.iloc[split.holdout].min()
    assert split.cutoff == str(frame["created_at"].iloc[split.holdout].min())
    assert sorted(np.concatenate([split.train, split.holdout]).tolist()) == list(range(n))


def test_holdout_falls_back_to_stratified():
    rng = np.random.default_rng(4)
    n = 500
    y = (rng.random(n) < 0.2).astype(int)
    no_dates = holdout_split(pd.DataFrame({"x": np.arange(n)}), y, share=0.2, seed=0)
    assert no_dates.method == "stratified_random" and no_dates.cutoff is None
    assert y[no_dates.holdout].mean() == pytest.approx(y.mean(), abs=0.01)
    # the newest leads never convert (not yet closed): a forward split has one class only
    frame = pd.DataFrame({"created_at": pd.date_range("2025-01-01", periods=n, freq="D")})
    y_late = y.copy()
    y_late[-100:] = 0
    late = holdout_split(frame, y_late, share=0.2, seed=0)
    assert late.method == "stratified_random"
    assert y_late[late.holdout].sum() > 0


def test_a_remembered_stratified_sample_is_the_sample_drawn_afresh():
    from sklearn.model_selection import train_test_split

    from pipeline.model import fit

    rng = np.random.default_rng(5)
    fit._SAMPLES.clear()
    for trial in range(12):  # more than are kept: old ones are dropped, not wrong
        y = (rng.random(5_000 + trial) < 0.3).astype(int)
        seed, size = trial % 3, 1_000 + 10 * trial
        fresh = np.sort(train_test_split(np.arange(len(y)), train_size=size, stratify=y,
                                         random_state=seed)[0])
        first = fit.stratified_sample(y, size, seed)
        first[:] = -1  # a caller's copy: changing it changes nothing remembered
        again = fit.stratified_sample(y, size, seed)
        assert np.array_equal(again, fresh)
        assert np.array_equal(fit.stratified_sample(y.astype(bool), size, seed), fresh)
        flipped = y.copy()
        flipped[0] = 1 - flipped[0]  # other labels: their own draw, never the remembered one
        assert np.array_equal(fit.stratified_sample(flipped, size, seed), np.sort(
            train_test_split(np.arange(len(y)), train_size=size, stratify=flipped,
                             random_state=seed)[0]))
    assert len(fit._SAMPLES) <= fit._SAMPLES_KEPT
    assert np.array_equal(fit.stratified_sample(np.zeros(10, dtype=int), 20, 0), np.arange(10))
