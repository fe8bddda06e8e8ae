"""One binning: the lift table and the points table have the same levels for every factor, and
a sentinel value (``999`` = "never contacted") is a level of its own in both, and in every
scorer and export."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipeline import exports as ex
from pipeline.analysis.levels import (
    MISSING,
    SentinelWarning,
    dominant_value,
    nines_code,
    numeric_cut,
    quantile_edges,
    special_values_of,
)
from pipeline.analysis.lift import lift_table
from pipeline.analysis.lift_levels import level_frame
from pipeline.cli import main as cli
from pipeline.config import load_config
from pipeline.errors import UserError
from pipeline.exports import verify as vf
from pipeline.model.encoding import FactorEncoder
from pipeline.model.points import PointsScorecard
from pipeline.model.reference import factor_points
from pipeline.model.rules import PointsRules
from pipeline.scoring import engines
from pipeline.scoring.frame import score_frame

# ------------------------------------------------------------------------------ helpers


def lift_levels(lift: pd.DataFrame, name: str) -> list[tuple[str, int]]:
    """``(level, leads)`` of one attribute of a lift table, in its row order."""
    rows = lift[lift["attribute"] == name]
    return list(zip(rows["level"], rows["leads"].astype(int), strict=True))


def encoder_levels(encoder: FactorEncoder, name: str) -> list[tuple[str, int]]:
    """``(slot, training leads)`` of one fitted factor, leaving out a bin no lead fell in (the
    points table keeps one bin even when training saw only special or missing values)."""
    (factor,) = [f for f in encoder.factors_ if f.name == name]
    return [(s, n) for s, n in zip(factor.slots, factor.counts, strict=True) if n > 0]


def assert_same_levels(X: pd.DataFrame, y: pd.Series, encoder: FactorEncoder, *,
                       min_leads: int, n_bins: int, special_values: dict | None = None) -> None:
    """Lift table levels == encoder levels (labels, order, leads); numeric edges and special
    values equal too."""
    groups = dict.fromkeys(map(str, X.columns), "FIT")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SentinelWarning)
        lift = lift_table(X, y, groups, min_leads=min_leads, n_bins=n_bins,
                          special_values=special_values)
        _, meta = level_frame(X, min_leads=min_leads, n_bins=n_bins,
                              special_values=special_values)
    for factor in encoder.factors_:
        assert lift_levels(lift, factor.name) == encoder_levels(encoder, factor.name), factor.name
        if factor.kind == "numeric":
            assert meta[factor.name]["edges"] == factor.edges, factor.name
            assert meta[factor.name]["special"] == list(factor.special), factor.name


# ------------------------------------------------------------------------------ the one binning

SENTINEL = st.sampled_from([999.0, -1.0, 0.0, 7.5, 1e6])
NUMBER = st.one_of(st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
                   st.integers(-20, 20).map(float), st.just(np.nan), st.just(np.inf))
TEXT = st.one_of(st.sampled_from(["a", "b", "c", "Web", "1", "d e"]), st.none())


@st.composite
def synthetic_columns(draw):
    """1-3 columns of 1-150 rows: numbers (some dominated by a sentinel), or text levels."""
    n = draw(st.integers(1, 150))
    columns: dict[str, pd.Series] = {}
    special: dict[str, list[float]] = {}
    for i in range(draw(st.integers(1, 3))):
        name = f"x{i}"
        if draw(st.booleans()):
            values = draw(st.lists(NUMBER, min_size=n, max_size=n))
            if draw(st.booleans()):  # a sentinel in a random share of the rows
                sentinel = draw(SENTINEL)
                share = draw(st.floats(0.0, 1.0))
                values = [sentinel if k < share * n else v for k, v in enumerate(values)]
                if draw(st.booleans()):
                    special[name] = [sentinel]
            columns[name] = pd.Series(values, dtype=float)
        else:
            columns[name] = pd.Series(draw(st.lists(TEXT, min_size=n, max_size=n)), dtype=object)
    y = pd.Series(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), name="converted")
    return pd.DataFrame(columns), y, special


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=synthetic_columns(), min_leads=st.integers(1, 10), n_bins=st.integers(1, 8))
def test_lift_levels_equal_points_levels_on_synthetic_columns(case, min_leads, n_bins):
    X, y, special = case
    encoder = FactorEncoder(min_leads=min_leads, n_bins=n_bins, special_values=special).fit(X)
    assert_same_levels(X, y, encoder, min_leads=min_leads, n_bins=n_bins,
                       special_values=special)
    # and the points table scores each training value into the level it was counted in
    codes = encoder.codes(X)
    for j, factor in enumerate(encoder.factors_):
        if factor.kind != "numeric":
            continue
        counted = np.bincount(codes[:, j], minlength=len(factor.slots)).tolist()
        assert counted == factor.counts, factor.name


def test_lift_levels_equal_points_levels_on_the_demo_data(demo_features):
    cfg, features = demo_features
    X = features.frame[features.factors].reset_index(drop=True)
    y = features.frame["converted"].reset_index(drop=True)
    a = cfg.analysis
    encoder = FactorEncoder(min_leads=a.min_leads, n_bins=a.n_bins, numeric=features.numeric,
                            missing_values=tuple(cfg.data.missing_values)).fit(X)
    assert_same_levels(X, y, encoder, min_leads=a.min_leads, n_bins=a.n_bins)


def test_lift_levels_equal_points_levels_on_x_education(shared_data):
    """The real X Education leads: every column the pipeline would analyse ("Select" means
    missing), the lift table's levels and the points table's are the same."""
    raw = pd.read_csv(shared_data)
    y = raw["Converted"].astype(int)
    X = raw.drop(columns=["Prospect ID", "Lead Number", "Converted"])
    X = X.mask(X.isin(["Select", ""]))
    X = X.apply(lambda c: c.astype(object) if c.dtype == object else c)
    encoder = FactorEncoder(min_leads=30, n_bins=5).fit(X)
    assert_same_levels(X, y, encoder, min_leads=30, n_bins=5)
    scorecard = PointsScorecard(groups=dict.fromkeys(X.columns, "FIT"), min_leads=30, n_bins=5,
                                c_grid=(1.0,), cv_folds=2).fit(X, y)
    table = scorecard.points_table()
    lift = lift_table(X, y, dict.fromkeys(X.columns, "FIT"), min_leads=30, n_bins=5)
    for name in X.columns:
        rows = table[(table["factor"] == name) & (table["leads"] > 0)]
        assert list(zip(rows["level"], rows["leads"], strict=True)) == lift_levels(lift, name)


# ------------------------------------------------------------------------------ sentinels


def test_quantile_edges_are_the_points_tables():
    """The kept binning is the encoder's (``method="lower"``), so points tables stay as they
    were: 1..12 in 5 bins cuts at 3, 5, 7, 9 (the lift table's old rule, ``inverted_cdf``, cut
    at 3, 5, 8, 10); on 1..10 both rules agree."""
    assert quantile_edges(np.arange(1.0, 11.0), 5) == [2.0, 4.0, 6.0, 8.0]
    assert quantile_edges(np.arange(1.0, 13.0), 5) == [3.0, 5.0, 7.0, 9.0]


def test_dominant_value_and_which_sentinels_get_a_level():
    values = np.array([999.0] * 8 + [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] + [np.nan] * 20)
    assert dominant_value(values) == (999.0, 8 / 14)
    assert dominant_value(np.array([1.0, 2.0, np.nan])) is None
    with pytest.warns(SentinelWarning, match=r"column 'pdays': the value 999 holds 57%"):
        assert special_values_of(values, (), 5, name="pdays") == ([999.0], [999.0])
    # configured: no warning, and a configured value absent from the data gets no level
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert special_values_of(values, [999, -1], 5) == ([999.0], [])
    # the smallest value holding most of a count column is already the bin "<= 0"
    counts = np.array([0.0] * 60 + list(range(1, 41)), dtype=float)
    assert special_values_of(counts, (), 5) == ([], [])
    # few distinct values: each already a level of its own
    assert special_values_of(np.array([1.0, 999.0, 999.0]), (), 5) == ([], [])


def test_a_nines_code_at_the_top_gets_a_level_below_half_of_the_values():
    """999 on 30% of a column (the sweep's ``Calls``) is below the dominant share, yet in the
    top quantile bin it would give the real large values the code's points."""
    rng = np.random.default_rng(3)
    real = rng.integers(0, 60, 700).astype(float)
    values = np.concatenate([real, np.full(300, 999.0)])
    assert nines_code(values) == (999.0, 0.3)
    with pytest.warns(SentinelWarning, match=r"column 'calls': the value 999 holds 30%"):
        assert special_values_of(values, (), 8, name="calls") == ([999.0], [999.0])
    with pytest.warns(SentinelWarning):
        codes, cut = numeric_cut(values, n_bins=8, name="calls")
    assert all(edge < 999 for edge in cut.edges) and cut.special == [999.0]
    assert set(codes[700:]) == {cut.labels.index("= 999")}
    # not a code: a top value that is no run of nines, a rare 999, or 9 (a small count)
    assert nines_code(np.concatenate([real, np.full(300, 1000.0)])) is None
    assert nines_code(np.concatenate([real, np.full(20, 999.0)])) is None
    assert nines_code(np.array([1.0, 2.0, 9.0, 9.0])) is None
    # a real value above the code: the code is not the top, nothing is taken apart
    assert nines_code(np.concatenate([values, [1500.0]])) is None


def test_numeric_cut_levels_order_bins_then_special_then_missing():
    values = np.array([999.0, 1.0, 2.0, 3.0, 999.0, np.nan, 4.0, 5.0, 6.0, 999.0])
    codes, cut = numeric_cut(values, n_bins=3, special_values=[999.0])
    assert cut.labels == ["<= 2", "(2, 4]", "> 4", "= 999", MISSING]
    assert cut.counts == [2, 2, 2, 3, 1]
    assert codes.tolist() == [3, 0, 0, 1, 3, 4, 1, 2, 2, 3]
    only_special, cut = numeric_cut(np.array([999.0, 999.0]), n_bins=3, special_values=[999])
    assert cut.labels == ["= 999"] and cut.edges == [] and only_special.tolist() == [0, 0]


def sentinel_leads(n: int = 5000, seed: int = 0) -> pd.DataFrame:
    """``pdays`` is 999 ("never contacted") for 96 % of the leads, who convert at about 8 %;
    the other 4 % (contacted 0-27 days ago) convert at about 64 %. ``channel`` is noise."""
    rng = np.random.default_rng(seed)
    never = rng.random(n) < 0.96
    return pd.DataFrame({
        "lead_id": [f"L{i:05d}" for i in range(n)],
        "pdays": np.where(never, 999, rng.integers(0, 28, n)),
        "channel": rng.choice(["email", "phone", "web"], n),
        "converted": np.where(never, rng.random(n) < 0.08, rng.random(n) < 0.64).astype(int),
    })


@pytest.fixture(scope="module")
def sentinel_model(tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path):
    """The 5k sentinel leads trained through the CLI: (config path, output folder, rules)."""
    tmp = tmp_path_factory.mktemp("sentinel")
    sentinel_leads().to_csv(tmp / "leads.csv", index=False)
    shutil.copyfile(mlflow_db_template, tmp / "mlflow.db")
    settings_ = {
        "name": "sentinel", "root": str(tmp),
        "data": {"leads": "leads.csv", "id_column": "lead_id"},
        "label": {"column": "converted", "positive": [1], "negative": [0]},
        "columns": {"fit": ["pdays", "channel"]},
        "registry": {"tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}",
                     "artifact_location": str(tmp / "artifacts")},
    }
    config = tmp / "sentinel.yaml"
    config.write_text(yaml.safe_dump(settings_, sort_keys=False))
    with warnings.catch_warnings():
        warnings.simplefilter("always", SentinelWarning)  # shown by the CLI, not an error
        result = CliRunner().invoke(cli.app, ["train", "--config", str(config), "--no-score",
                                              "--out", str(tmp / "out")])
    assert result.exit_code == 0, result.output
    assert ("warning: column 'pdays': the value 999 holds 96% of the present values; it gets "
            "its own level '= 999'") in result.output
    rules = PointsRules.from_json((tmp / "out" / "points_rules.json").read_text())
    return config, tmp / "out", rules


def test_sentinel_gets_its_own_level_and_the_factor_is_kept(sentinel_model):
    _, out, rules = sentinel_model
    lift = pd.read_csv(out / "lift_table.csv")
    levels = lift[lift["attribute"] == "pdays"]
    assert levels["level"].iloc[-1] == "= 999"
    assert len(levels) >= 3 and not levels["level"].iloc[:-1].str.startswith("=").any()
    special = levels[levels["level"] == "= 999"].iloc[0]
    assert special["leads"] > 0.93 * levels["leads"].sum()  # the lift is on the training split
    assert special["conversion_rate"] < 0.12
    assert (levels["level"] != "= 999").sum() >= 2  # the other 4 % are binned as usual
    assert (levels.loc[levels["level"] != "= 999", "conversion_rate"] > 0.4).all()
    selection = pd.read_csv(out / "selection.csv")
    row = selection[selection["column"] == "pdays"].iloc[0]
    assert bool(row["kept"]), row["reason"]
    (pdays,) = [f for f in rules.factors if f.name == "pdays"]
    assert list(pdays.special_points) == ["999"]
    assert all(p > pdays.special_points["999"] + 20 for p in pdays.bin_points), pdays


def test_a_lead_with_999_gets_the_special_points_in_every_engine_and_export(
        sentinel_model, tmp_path):
    config, _, rules = sentinel_model
    (pdays,) = [f for f in rules.factors if f.name == "pdays"]
    want = pdays.special_points["999"]
    assert factor_points(pdays, 999, rules.missing_values) == (want, "= 999")
    leads = pd.DataFrame({"lead_id": ["a", "b", "c", "d"], "pdays": [999, 3, 999, 20],
                          "channel": ["email", "web", "phone", "email"]})
    reference = vf.score_reference(rules, leads)
    assert score_frame(rules, leads)["points"].tolist() == reference["points"].tolist()
    for r in vf.verify_exports(rules, leads, formats=("sql", "pmml", "python")):
        assert r.ok, f"{r.format}: {r.examples.to_string()}"
    # the SQL engine reads the leads from a file, as the CLI's --engine duckdb does
    leads.to_csv(tmp_path / "leads.csv", index=False)
    cfg = load_config(config)
    summary = engines.score_with_engine("duckdb", cfg, rules, tmp_path / "leads.csv",
                                        tmp_path / "scored.csv", None)
    assert summary.scored == 4
    scored = pd.read_csv(tmp_path / "scored.csv", dtype={"lead_id": str}).set_index("lead_id")
    assert scored.loc[["a", "b", "c", "d"], "points"].tolist() == reference["points"].tolist()
    # the people-facing sheets list the special level with its points, before the bins
    table = ex.rules_table(rules)
    rows = table[table["factor"] == "pdays"]
    assert rows.iloc[0].tolist() == ["pdays", "FIT", "= 999", want]
    hubspot = json.loads(ex.export_hubspot(rules))
    names = [r["name"] for g in hubspot["groupConfigs"] for r in g["ruleConfigurations"]]
    assert ("pdays = 999" in names) == (want != 0)
    assert "pdays,FIT,= 999," in ex.export_csv(rules)
    assert ",pdays,equals,999," in ex.export_crm_csv(rules)


def test_special_values_config_key(sentinel_model, tmp_path):
    config, _, _ = sentinel_model
    settings_ = yaml.safe_load(config.read_text())
    settings_["columns"]["special_values"] = {"pdays": ["never"]}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(settings_))
    with pytest.raises(UserError, match=r"columns\.special_values\.pdays"):
        load_config(bad)
    settings_["columns"]["special_values"] = {"pdays": [999], "channel": [1]}
    bad.write_text(yaml.safe_dump(settings_))
    cfg = load_config(bad)
    assert cfg.columns.special_values == {"pdays": [999.0], "channel": [1.0]}
    from pipeline.model.train_analysis import check_special_columns

    with pytest.raises(UserError, match=r"columns\.special_values names \['channel'\]"):
        check_special_columns(sentinel_leads(50), cfg.columns.special_values)
