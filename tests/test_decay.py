"""Half-life choice recovers planted decay rates; the CRM "lose X% per month" conversion."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from pipeline.errors import UserError
from pipeline.inputs.decay import (
    HalfLifeChoice,
    choose_half_lives,
    half_life_from_monthly_loss,
    monthly_loss_percent,
)
from pipeline.inputs.events import aggregate_events

GRID = (1, 2, 3, 5, 7, 10, 14, 21, 30, 45, 60, 90)
TRUE_HALF_LIFE = {"product": 10.0, "non_product": 40.0}
EVENT_GROUPS = {"trial_signup": "product", "webinar": "non_product", "email_open": "trivial"}
T0 = datetime(2024, 1, 1)


def planted(seed: int = 0, n_leads: int = 2500):
    """Leads whose conversion follows log1p(decayed count) at known half-lives per group."""
    rng = np.random.default_rng(seed)
    snapshot = T0 + timedelta(days=200)
    rows = []
    true_decayed = {g: np.zeros(n_leads) for g in TRUE_HALF_LIFE}
    for i in range(n_leads):
        for event, group in EVENT_GROUPS.items():
            # each lead has its own burst of activity somewhere in the last 180 days
            centre = rng.uniform(0, 180)
            ages = np.clip(centre + rng.normal(0, 8, rng.poisson(5)), 0.001, 199)
            for age in ages:
                rows.append((f"L{i}", event, snapshot - timedelta(seconds=round(age * 86400))))
                if group in true_decayed:
                    age_exact = round(age * 86400) / 86400
                    true_decayed[group][i] += 0.5 ** (age_exact / TRUE_HALF_LIFE[group])
    logit = -2.0 + sum(2.0 * np.log1p(true_decayed[g]) for g in TRUE_HALF_LIFE)
    y = pd.Series((rng.random(n_leads) < 1 / (1 + np.exp(-logit))).astype(int), name="won")
    events = pd.DataFrame(rows, columns=["lead_id", "event", "timestamp"])
    snapshots = pd.DataFrame(
        {"lead_id": [f"L{i}" for i in range(n_leads)], "created_at": T0, "snapshot_at": snapshot}
    )
    features = aggregate_events(
        events,
        snapshots,
        event_groups=EVENT_GROUPS,
        half_lives={"product": 14.0},
        extra_half_life_grid={g: GRID for g in ("product", "non_product", "trivial")},
    ).features
    return features, y, true_decayed


@pytest.fixture(scope="module")
def planted_data():
    return planted()


def test_recovers_planted_half_lives_within_factor_two(planted_data):
    features, y, true_decayed = planted_data
    np.testing.assert_allclose(features["decayed_product__hl10"], true_decayed["product"])
    choice = choose_half_lives(features, y, groups=["product", "non_product"], grid=GRID)
    assert isinstance(choice, HalfLifeChoice)
    for group, truth in TRUE_HALF_LIFE.items():
        assert truth / 2 <= choice.half_life_days[group] <= truth * 2, choice.half_life_days
    table = choice.cv_log_loss
    assert list(table.columns) == ["group", "half_life_days", "cv_log_loss"]
    assert len(table) == 2 * len(GRID)
    for group, h in choice.half_life_days.items():
        rows = table[table["group"] == group]
        assert rows.loc[rows["cv_log_loss"].idxmin(), "half_life_days"] == h


def test_is_deterministic_and_leaves_inputs_alone(planted_data):
    features, y, _ = planted_data
    before = features.copy()
    a = choose_half_lives(features, y, groups=["non_product"], grid=(5, 45, 90), seed=3)
    b = choose_half_lives(features, y, groups=["non_product"], grid=(90, 5, 45), seed=3)
    assert a.half_life_days == b.half_life_days
    pd.testing.assert_frame_equal(a.cv_log_loss, b.cv_log_loss)
    pd.testing.assert_frame_equal(features, before)


def test_single_group_matches_naive_cross_validation(planted_data):
    features, y, _ = planted_data
    grid = (3, 14, 60)
    base = ["n_trivial_30d"]
    got = choose_half_lives(
        features, y, groups=["product"], grid=grid, base_columns=base, folds=4, seed=1
    )
    naive = {}
    folds = list(StratifiedKFold(4, shuffle=True, random_state=1).split(features, y))
    for h in grid:
        x = np.column_stack([features[base[0]], np.log1p(features[f"decayed_product__hl{h}"])])
        proba = np.zeros(len(y))
        for train, test in folds:
            scaler = StandardScaler().fit(x[train])
            model = LogisticRegression(C=1.0, max_iter=1000, tol=1e-10).fit(
                scaler.transform(x[train]), y.iloc[train]
            )
            proba[test] = model.predict_proba(scaler.transform(x[test]))[:, 1]
        naive[h] = log_loss(y, proba)
    # same model, another solver (lbfgs here, newton-cholesky in the code): equal to ~1e-7
    np.testing.assert_allclose(got.cv_log_loss["cv_log_loss"], [naive[h] for h in grid],
                               rtol=1e-6)
    assert got.half_life_days == {"product": float(min(naive, key=naive.get))}


def test_errors_name_the_problem(planted_data):
    features, y, _ = planted_data
    with pytest.raises(UserError, match=r"missing column\(s\) \['decayed_product__hl4'\]"):
        choose_half_lives(features, y, groups=["product"], grid=(4, 10))
    with pytest.raises(UserError, match=r"y: needs exactly two classes, got \[1\]"):
        choose_half_lives(features, y * 0 + 1, groups=["product"], grid=GRID)
    with pytest.raises(UserError, match=r"y: index must equal"):
        choose_half_lives(features, y.set_axis(y.index + 1), groups=["product"], grid=GRID)
    with pytest.raises(UserError, match=r"grid: must be a positive number of days, got 0"):
        choose_half_lives(features, y, groups=["product"], grid=(0, 10))
    with pytest.raises(UserError, match=r"folds: must be a whole number from 2"):
        choose_half_lives(features, y, groups=["product"], grid=GRID, folds=1)
    with pytest.raises(UserError, match=r"base column\(s\) \['days_to_first_product'\]"):
        choose_half_lives(
            features, y, groups=["product"], grid=GRID, base_columns=["days_to_first_product"]
        )


def test_monthly_loss_percent():
    assert monthly_loss_percent(30) == 50.0
    assert monthly_loss_percent(15) == pytest.approx(75.0)
    assert monthly_loss_percent(60) == pytest.approx(100 * (1 - math.sqrt(0.5)))
    losses = [monthly_loss_percent(h) for h in GRID]
    assert all(a > b for a, b in zip(losses, losses[1:], strict=False))
    for h in GRID:
        assert half_life_from_monthly_loss(monthly_loss_percent(h)) == pytest.approx(h)
    with pytest.raises(UserError, match=r"half_life_days: must be a positive.*-3"):
        monthly_loss_percent(-3)
    with pytest.raises(UserError, match=r"percent: .*between 0 and 100 \(exclusive\), got 100"):
        half_life_from_monthly_loss(100)
