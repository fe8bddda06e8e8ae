"""Selection on data without signal keeps nothing; with three real factors, keeps those three.

Null datasets: a label drawn independently of 15 columns (2-50 levels with skewed shares,
some numeric, some cells missing), 5k-20k leads, a base rate of 5 %-40 %. The whole
analysis (:func:`pipeline.model.train_analysis.analyse`) runs with the shipped defaults. The
per-factor significance test is Holm-corrected at ``analysis.significance`` = 0.05, so at
most 5 % of null datasets may keep a factor by chance (the lift rule makes it rarer still):
19 of 20 seeds must keep none.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Config, load_config
from pipeline.model.train_analysis import analyse

N_COLUMNS = 15
REAL = ("real_source", "real_visits", "real_flag")


@pytest.fixture(scope="module")
def default_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The shipped defaults (``pipeline/resources/defaults.yaml``), nothing overridden."""
    path = Path(tmp_path_factory.mktemp("cfg")) / "defaults.yaml"
    path.write_text("data:\n  leads: leads.csv\n", encoding="utf-8")
    config = load_config(path)
    assert config.analysis.significance == 0.05
    return config


def noise_columns(rng: np.random.Generator, n: int, k: int) -> pd.DataFrame:
    """``k`` columns unrelated to anything: every third numeric (a count or a skewed
    amount), the others categorical with 2-50 levels of Dirichlet shares; up to 30 % of
    each column's cells missing."""
    columns: dict[str, object] = {}
    for j in range(k):
        missing = rng.random(n) < rng.uniform(0.0, 0.3)
        if j % 3 == 2:
            x = (rng.lognormal(1.0, 1.0, n) if j % 2
                 else rng.poisson(rng.uniform(0.5, 6.0), n).astype(float))
            x[missing] = np.nan
            columns[f"num_{j}"] = x
        else:
            n_levels = int(rng.integers(2, 51))
            shares = rng.dirichlet(np.full(n_levels, rng.uniform(0.3, 3.0)))
            values = rng.choice([f"v{i}" for i in range(n_levels)], size=n, p=shares)
            values = values.astype(object)
            values[missing] = None
            columns[f"cat_{j}"] = pd.Series(values, dtype=object)
    return pd.DataFrame(columns)


def null_dataset(seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """15 columns and a label independent of all of them."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5_000, 20_001))
    base = rng.uniform(0.05, 0.40)
    X = noise_columns(rng, n, N_COLUMNS)
    return X, pd.Series((rng.random(n) < base).astype(int))


def three_factor_dataset(seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """12 noise columns and 3 that drive the label: a 4-level source (log-odds -0.7 to
    +1.0), a visit count (+0.25 per visit) and a yes/no flag (+0.6)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5_000, 20_001))
    base = rng.uniform(0.10, 0.40)
    X = noise_columns(rng, n, N_COLUMNS - len(REAL))
    source = rng.choice(["web", "event", "partner", "ads"], size=n, p=[0.4, 0.25, 0.2, 0.15])
    visits = rng.poisson(3.0, n).astype(float)
    flag = rng.random(n) < 0.3
    logit = (np.log(base / (1 - base))
             + np.select([source == "event", source == "partner", source == "ads"],
                         [0.6, 1.0, -0.7], 0.0)
             + 0.25 * (visits - 3.0) + 0.6 * flag)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = X.assign(real_source=pd.Series(source, dtype=object), real_visits=visits,
                 real_flag=pd.Series(np.where(flag, "yes", "no"), dtype=object))
    return X, pd.Series(y)


def kept_factors(X: pd.DataFrame, y: pd.Series, config: Config) -> list[str]:
    return analyse(X, y, dict.fromkeys(X.columns, "FIT"), config).kept


def test_null_generator_has_what_it_promises():
    for seed in range(3):
        X, y = null_dataset(seed)
        assert X.shape[1] == N_COLUMNS and 5_000 <= len(X) <= 20_000
        assert 0.03 < y.mean() < 0.42
        n_levels = [X[c].nunique() for c in X.columns if c.startswith("cat_")]
        assert min(n_levels) >= 2 and max(n_levels) <= 50
        assert any(c.startswith("num_") for c in X.columns)


def test_no_factor_is_kept_without_signal(default_config):
    kept = {seed: kept_factors(*null_dataset(seed), default_config) for seed in range(20)}
    with_factors = {seed: k for seed, k in kept.items() if k}
    assert len(with_factors) <= 1, with_factors


@pytest.mark.slow  # ~20 s: five trainings / two MLflow stores built from scratch
def test_three_real_factors_among_fifteen_are_kept(default_config):
    kept = {seed: kept_factors(*three_factor_dataset(seed), default_config) for seed in range(5)}
    exact = [seed for seed, k in kept.items() if sorted(k) == sorted(REAL)]
    assert len(exact) >= 4, kept
    assert all(set(REAL) <= set(k) for k in kept.values()), kept
