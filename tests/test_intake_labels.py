"""The label and attribute shapes of real CRM exports: lookups, open labels, a closed-deals
file, a conversion window, the right-censoring check and date columns."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.config import load_config
from pipeline.errors import UserError
from pipeline.inputs.features import build_features
from pipeline.inputs.intake import read_leads
from pipeline.inputs.validate import DATE_DROPPED
from tests.helpers import run_cli


def _config(tmp_path: Path, leads: pd.DataFrame, **sections: dict) -> Path:
    """Write ``leads.csv`` and a config over it (MLflow store under tmp_path)."""
    leads.to_csv(tmp_path / "leads.csv", index=False)
    settings = {"data": {"leads": "leads.csv"},
                "registry": {"tracking_uri": "sqlite:///mlflow.db",
                             "artifact_location": "artifacts"}}
    for key, value in sections.items():
        settings.setdefault(key, {}).update(value)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def _leads(n: int = 400, seed: int = 0, **columns: list) -> pd.DataFrame:
    """``n`` leads with an id, a region and a 0/1 label (about a quarter won)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"lead_id": [f"L{i:05d}" for i in range(n)],
                          "region": rng.choice(["north", "south", "east"], n),
                          "converted": (rng.random(n) < 0.25).astype(int)})
    for name, values in columns.items():
        frame[name] = values
    return frame


# --------------------------------------------------------------------------- lookups


def _products(tmp_path: Path, rows: list[tuple[str, str]]) -> None:
    pd.DataFrame(rows, columns=["product", "tier"]).to_csv(tmp_path / "products.csv",
                                                           index=False)


def test_lookup_joins_columns_and_names_a_near_miss_key_with_its_count(tmp_path):
    products = ["GTX Pro"] * 200 + ["GTXPro"] * 37 + ["Basic"] * 150 + ["Basik"] * 13
    config = _config(tmp_path, _leads(product=products),
                     data={"lookups": [{"path": "products.csv", "on": "product"}]})
    _products(tmp_path, [("GTX Pro", "premium"), ("Basic", "entry")])
    leads = read_leads(load_config(config), training=True)
    assert ("GTXPro: 37 leads not in products.csv; did you mean 'GTX Pro'? "
            "(key column 'product')") in leads.warnings
    assert ("Basik: 13 leads not in products.csv; did you mean 'Basic'? "
            "(key column 'product')") in leads.warnings
    tier = leads.frame.set_index("lead_id")["tier"]
    assert tier["L00000"] == "premium" and tier["L00350"] == "entry"
    assert tier.isna().sum() == 37 + 13  # unmatched leads: missing, still kept
    assert len(leads.frame) == 400 and "tier" in leads.fit_columns


def test_lookup_with_a_duplicated_key_is_an_error_naming_file_column_and_values(tmp_path):
    config = _config(tmp_path, _leads(product=["GTX Pro", "Basic"] * 200),
                     data={"lookups": [{"path": "products.csv", "on": "product"}]})
    _products(tmp_path, [("GTX Pro", "premium"), ("Basic", "entry"), ("Basic", "legacy")])
    with pytest.raises(UserError, match=r"products\.csv: lookup key column 'product' is not "
                       r"unique: 'Basic' \(2 rows\)") as info:
        read_leads(load_config(config), training=True)
    assert "de-duplicate" in info.value.hint


def test_lookup_column_already_in_the_leads_is_an_error(tmp_path):
    config = _config(tmp_path, _leads(product=["GTX Pro"] * 400, tier=["x"] * 400),
                     data={"lookups": [{"path": "products.csv", "on": "product"}]})
    _products(tmp_path, [("GTX Pro", "premium")])
    with pytest.raises(UserError, match=r"products\.csv: lookup columns \['tier'\] are already "
                       r"columns of .*leads\.csv"):
        read_leads(load_config(config), training=True)


def test_lookup_key_missing_from_the_lookup_is_named(tmp_path):
    config = _config(tmp_path, _leads(product=["GTX Pro"] * 400),
                     data={"lookups": [{"path": "products.csv", "on": "Product"}]})
    _products(tmp_path, [("GTX Pro", "premium")])
    with pytest.raises(UserError, match=r"products\.csv: lookup key column 'Product' not found "
                       r"\(did you mean 'product'\?\)"):
        read_leads(load_config(config), training=True)


# --------------------------------------------------------------------------- open labels


def test_open_labels_are_counted_and_left_out_of_training(tmp_path):
    labels = ["Won", "Lost", "Lost", "Open"] * 100
    leads_frame = _leads(stage=labels).drop(columns="converted")
    config = _config(tmp_path, leads_frame, label={"column": "stage", "positive": ["Won"],
                                                   "negative": ["Lost"], "open": ["Open"]})
    leads = read_leads(load_config(config), training=True)
    assert leads.notes == ["100 open leads (label in ['Open']) left out of training; "
                           "score scores them"]
    assert len(leads.frame) == 300 and leads.frame["converted"].sum() == 100
    open_ids = set(leads_frame.loc[leads_frame["stage"] == "Open", "lead_id"])
    assert set(leads.undecided["lead_id"]) == open_ids
    assert not open_ids & set(leads.frame["lead_id"])
    features = build_features(leads, load_config(config), events=None)
    assert len(features.frame) == 300 and "stage" not in features.factors


def test_a_label_in_none_of_positive_negative_open_is_still_refused(tmp_path):
    labels = ["Won", "Lost", "Open", "Pending"] * 100
    config = _config(tmp_path, _leads(stage=labels).drop(columns="converted"),
                     label={"column": "stage", "positive": ["Won"], "negative": ["Lost"],
                            "open": ["Open"]})
    with pytest.raises(UserError, match=r"label column 'stage' has values that are neither won "
                       r"\['Won'\] nor lost \['Lost'\] nor open \['Open'\]: 'Pending': 100"):
        read_leads(load_config(config), training=True)


# --------------------------------------------------------------------------- won_in


def test_won_in_marks_members_won_and_joins_no_other_column(tmp_path):
    leads_frame = _leads().drop(columns="converted")
    won_ids = leads_frame["lead_id"].iloc[::5]  # 80 of 400
    pd.DataFrame({"lead_id": won_ids, "amount": 1000, "deal_stage": "closed won",
                  "closed_at": "2024-05-01"}).to_csv(tmp_path / "deals.csv", index=False)
    config = _config(tmp_path, leads_frame,
                     label={"won_in": {"path": "deals.csv", "on": "lead_id"}})
    cfg = load_config(config)
    leads = read_leads(cfg, training=True)
    label = leads.frame.set_index("lead_id")["converted"]
    assert label.sum() == 80 and (label[won_ids] == 1).all()
    assert leads.notes == ["80 of 400 leads are won ('lead_id' found in deals.csv); 320 lost"]
    features = build_features(leads, cfg, events=None)
    assert not {"amount", "deal_stage", "closed_at"} & set(features.frame.columns)
    assert features.factors == ["region"]


def test_won_in_with_a_label_column_takes_open_from_it(tmp_path):
    stage = ["Open" if i % 10 == 1 else "Closed" for i in range(400)]
    leads_frame = _leads(stage=stage).drop(columns="converted")
    won_ids = leads_frame["lead_id"].iloc[::10]  # i % 10 == 0: none of them open
    pd.DataFrame({"lead_id": won_ids}).to_csv(tmp_path / "deals.csv", index=False)
    config = _config(tmp_path, leads_frame,
                     label={"column": "stage", "open": ["Open"],
                            "won_in": {"path": "deals.csv", "on": "lead_id"}})
    leads = read_leads(load_config(config), training=True)
    assert len(leads.frame) == 360 and leads.frame["converted"].sum() == 40
    assert "40 open leads (label in ['Open']) left out of training; score scores them" \
        in leads.notes


# --------------------------------------------------------------------------- window


def test_window_days_wins_conversions_in_the_window_and_loses_later_ones(tmp_path):
    start = pd.Timestamp("2024-01-01")
    created = [start + pd.Timedelta(days=i // 4) for i in range(400)]  # 100 days of leads
    converted_at = []
    for i, c in enumerate(created):
        kind = i % 4
        converted_at.append({0: c + pd.Timedelta(days=10), 1: c + pd.Timedelta(days=45),
                             2: None, 3: None}[kind])
    leads_frame = _leads(created_at=[c.isoformat() for c in created],
                         converted_at=[c.isoformat() if c is not None else "" for c in
                                       converted_at]).drop(columns="converted")
    config = _config(tmp_path, leads_frame, data={"created_at_column": "created_at"},
                     label={"window_days": 30, "converted_at_column": "converted_at"})
    cfg = load_config(config)
    leads = read_leads(cfg, training=True)
    # the data end: the newest conversion, day 99 + 45 = 2024-05-24; young: created after
    # 2024-04-24, i.e. none of the 100 days (the newest is 2024-04-09)
    end = max(max(created), max(c for c in converted_at if c is not None))
    young = sum(c > end - pd.Timedelta(days=30) for c in created)
    assert young == 0
    assert leads.frame["converted"].sum() == 100  # only the 10-day conversions
    assert leads.notes[0] == ("100 leads converted within 30 days ('converted_at') are won; "
                              "100 converted later count as lost")
    assert "converted_at" not in leads.fit_columns


def test_window_days_young_leads_are_undecided_and_counted(tmp_path):
    start = pd.Timestamp("2024-01-01")
    created = [start + pd.Timedelta(days=i // 4) for i in range(400)]  # to 2024-04-09
    converted_at = [(c + pd.Timedelta(days=5)).isoformat() if i % 3 == 0 else ""
                    for i, c in enumerate(created)]
    leads_frame = _leads(created_at=[c.isoformat() for c in created],
                         converted_at=converted_at).drop(columns="converted")
    config = _config(tmp_path, leads_frame, data={"created_at_column": "created_at"},
                     label={"window_days": 20, "converted_at_column": "converted_at"})
    leads = read_leads(load_config(config), training=True)
    end = pd.Timestamp("2024-04-09") + pd.Timedelta(days=5)  # the newest conversion
    is_young = np.array([c > end - pd.Timedelta(days=20) for c in created])
    assert len(leads.undecided) == is_young.sum() == 60
    assert ("60 leads younger than 20 days at the data's end (2024-04-14) are undecided: "
            "left out of training; score scores them") in leads.notes
    assert len(leads.frame) == 340
    assert leads.frame["converted"].sum() == sum(1 for i in range(400) if i % 3 == 0
                                                 and not is_young[i])


# --------------------------------------------------------------------------- censoring


def _log(censored: bool, n: int = 2000, seed: int = 1) -> pd.DataFrame:
    """A year of leads converting at 30%; when ``censored``, the last 45 days at 5%."""
    rng = np.random.default_rng(seed)
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 365, n)),
                                                           unit="D")
    recent = created > pd.Timestamp("2024-11-16")
    rate = np.where(recent & censored, 0.05, 0.30)
    return _leads(n, seed, created_at=created.strftime("%Y-%m-%d %H:%M"),
                  converted=(rng.random(n) < rate).astype(int))


def test_right_censored_log_warns_with_the_period_and_both_rates(tmp_path):
    config = _config(tmp_path, _log(censored=True), data={"created_at_column": "created_at"})
    leads = read_leads(load_config(config), training=True)
    [warning] = [w for w in leads.warnings if "have not had time to close" in w]
    frame = leads.frame
    newest = frame["created_at"].dt.to_period("M") == frame["created_at"].dt.to_period("M").max()
    recent_rate = frame.loc[newest, "converted"].mean()
    rest_rate = frame.loc[~newest, "converted"].mean()
    assert recent_rate < rest_rate / 2
    assert (f"the newest month (2024-12, {newest.sum():,} leads) convert at {recent_rate:.1%} "
            f"against {rest_rate:.1%} for the earlier leads") in warning
    assert "label.window_days" in warning


def test_a_log_without_censoring_does_not_warn(tmp_path):
    config = _config(tmp_path, _log(censored=False), data={"created_at_column": "created_at"})
    leads = read_leads(load_config(config), training=True)
    assert not [w for w in leads.warnings if "have not had time to close" in w]
    assert leads.warnings == []


# --------------------------------------------------------------------------- dates


def test_a_date_column_is_dropped_with_its_reason(tmp_path):
    formats = ["2024-03-01", "2024-03-01 10:00", "01/03/2024", "2024-02-11T08:30:00Z"]
    last_touch = [formats[i % 4] for i in range(396)] + ["unknown"] * 4  # 99% dates
    months = ["March", "April"] * 200  # month names: a category, not dates
    config = _config(tmp_path, _leads(last_touch=last_touch, month=months))
    cfg = load_config(config)
    leads = read_leads(cfg, training=True)
    assert leads.dropped == {"last_touch": DATE_DROPPED}
    assert DATE_DROPPED == "date: not a factor (derive one, e.g. days since, to use it)"
    assert "month" in leads.fit_columns and "last_touch" not in leads.frame.columns
    assert any("column 'last_touch' holds dates: dropped" in w for w in leads.warnings)
    features = build_features(leads, cfg, events=None)
    assert features.dropped["last_touch"] == DATE_DROPPED
    from pipeline.model.train_analysis import analyse

    analysis = analyse(features.frame[features.factors], features.frame["converted"],
                       features.groups, cfg, dropped=features.dropped)
    row = analysis.selection.set_index("column").loc["last_touch"]
    assert not row["kept"] and row["reason"] == DATE_DROPPED


def test_mostly_text_with_some_dates_stays_a_category(tmp_path):
    values = (["2024-03-01"] * 30 + ["call back"] * 370)
    config = _config(tmp_path, _leads(note=values))
    leads = read_leads(load_config(config), training=True)
    assert "note" in leads.fit_columns and "note" not in leads.dropped


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(("sections", "pattern"), [
    ({"label": {"window_days": 30}}, r"window_days and converted_at_column go together"),
    ({"label": {"window_days": 30, "converted_at_column": "won_at"}},
     r"label\.window_days needs data\.created_at_column"),
    ({"label": {"window_days": 0, "converted_at_column": "won_at"},
      "data": {"created_at_column": "created_at"}}, r"window_days must be >= 1"),
    ({"label": {"won_in": {"path": "deals.csv"}}}, r"key 'label\.won_in\.on': Field required"),
    ({"data": {"lookups": {"path": "a.csv", "on": "x"}}}, r"key 'data\.lookups':"),
    ({"data": {"lookups": [{"path": "a.csv", "on": "x", "how": "inner"}]}},
     r"key 'data\.lookups\.0\.how': Extra inputs"),
    ({"label": {"open": [0]}}, r"open values \['0'\] are also positive or negative"),
    ({"label": {"open": ["Open"], "window_days": 9, "converted_at_column": "won_at"},
      "data": {"created_at_column": "created_at"}}, r"leave open empty"),
])
def test_invalid_label_shapes_name_the_key(tmp_path, sections, pattern):
    config = _config(tmp_path, _leads(), **sections)
    with pytest.raises(UserError, match=pattern):
        load_config(config)


def test_lookup_and_won_in_paths_are_relative_to_the_config_root(tmp_path):
    config = _config(tmp_path, _leads(), data={"lookups": [{"path": "x/a.csv", "on": "k"}]},
                     label={"won_in": {"path": "deals.csv", "on": "lead_id"}})
    cfg = load_config(config)
    assert cfg.data.lookups[0].path == tmp_path / "x" / "a.csv"
    assert cfg.label.won_in.path == tmp_path / "deals.csv"


# --------------------------------------------------------------------------- end to end


@pytest.mark.training  # trains through the CLI
def test_train_and_score_with_a_lookup_and_open_labels(tmp_path, mlflow_db_template,
                                                       monkeypatch, capsys):
    """Train through the CLI on leads whose product tier (from a lookup) drives conversion,
    with open deals in the label; score then scores the open leads too."""
    rng = np.random.default_rng(3)
    n = 1500
    product = rng.choice(["GTX Pro", "Basic", "Team"], n)
    rate = pd.Series(product).map({"GTX Pro": 0.45, "Basic": 0.08, "Team": 0.2}).to_numpy()
    won = rng.random(n) < rate
    stage = np.where(rng.random(n) < 0.1, "Open", np.where(won, "Won", "Lost"))
    typo = np.flatnonzero(product == "GTX Pro")[:40]
    product[typo] = "GTXPro"  # a near miss of the lookup's key
    leads = pd.DataFrame({"lead_id": [f"L{i:05d}" for i in range(n)], "product": product,
                          "region": rng.choice(["north", "south"], n), "stage": stage})
    _products(tmp_path, [("GTX Pro", "premium"), ("Basic", "entry"), ("Team", "mid")])
    shutil.copyfile(mlflow_db_template, tmp_path / "mlflow.db")
    config = _config(tmp_path, leads,
                     data={"lookups": [{"path": "products.csv", "on": "product"}]},
                     label={"column": "stage", "positive": ["Won"], "negative": ["Lost"],
                            "open": ["Open"]},
                     columns={"exclude": ["product"]},
                     threshold={"target_rate": [0.3, 0.5]})
    code, out, err = run_cli(monkeypatch, capsys, "train", "--config", config, "--out",
                             tmp_path / "out")
    assert code == 0, err
    n_open = int((stage == "Open").sum())
    assert f"{n_open:,} open leads (label in ['Open']) left out of training; score scores them" \
        in err
    assert f"validated {n - n_open:,} leads" in err
    assert ("warning: GTXPro: 40 leads not in products.csv; did you mean 'GTX Pro'? "
            "(key column 'product')") in err
    table = pd.read_csv(tmp_path / "out" / "points_table.csv")
    assert "tier" in set(table.iloc[:, 0])  # the looked-up column earned points
    scored = tmp_path / "scored.csv"
    code, _, err = run_cli(monkeypatch, capsys, "score", "--config", config, "--output", scored)
    assert code == 0, err
    result = pd.read_csv(scored)
    open_ids = set(leads.loc[stage == "Open", "lead_id"])
    assert len(result) == n and open_ids <= set(result["lead_id"])
    points = result.set_index("lead_id")["points"]
    premium = leads.set_index("lead_id")["product"].eq("GTX Pro")  # the typos are not
    assert points[premium].mean() > points[~premium].mean()


def test_a_stored_config_from_before_these_keys_still_loads(tmp_path):
    """A version registered before data.lookups / label.open ... existed: its config.json
    lacks the keys; score and drift fill them from the defaults."""
    from pipeline.config import Config, with_defaults

    stored = load_config(_config(tmp_path, _leads())).model_dump(mode="json")
    del stored["data"]["lookups"]
    for key in ("open", "won_in", "window_days", "converted_at_column"):
        del stored["label"][key]
    stored["targets"] = {"new": {"column": "converted", "positive": [1], "negative": [0]}}
    cfg = Config.model_validate(with_defaults(stored))
    assert cfg.data.lookups == [] and cfg.label.open == [] and cfg.label.won_in is None
    assert cfg.targets["new"].window_days is None


def test_other_engines_refuse_lookups_they_cannot_join(tmp_path):
    from pipeline.cli.score import score_to_file

    config = _config(tmp_path, _leads(product=["GTX Pro"] * 400),
                     data={"lookups": [{"path": "products.csv", "on": "product"}]})
    _products(tmp_path, [("GTX Pro", "premium")])
    with pytest.raises(UserError, match=r"--engine duckdb: data\.lookups are joined by the "
                       r"pandas engine only"):
        score_to_file(load_config(config), None, tmp_path / "leads.csv", tmp_path / "o.csv",
                       None, as_of=None, since=None, batch_size=100, engine="duckdb")


def test_won_in_on_another_key_counts_blank_keys_as_lost(tmp_path):
    emails = [f"p{i}@acme.com" if i % 8 else "" for i in range(400)]  # 50 blank
    leads_frame = _leads(contact=emails).drop(columns="converted")
    won = [e for i, e in enumerate(emails) if e and i % 4 == 1]  # 100 won
    pd.DataFrame({"contact": won + won[:5], "amount": 5}).to_csv(tmp_path / "deals.csv",
                                                                  index=False)
    config = _config(tmp_path, leads_frame,
                     label={"won_in": {"path": "deals.csv", "on": "contact"}})
    leads = read_leads(load_config(config), training=True)
    assert leads.frame["converted"].sum() == 100  # a lead with two deals is won once
    assert leads.notes == ["100 of 400 leads are won ('contact' found in deals.csv); 300 lost",
                           "50 leads have no 'contact': counted as lost"]
    assert "contact" not in leads.fit_columns  # the outcome key is never a factor


def test_won_in_matching_no_lead_is_an_error(tmp_path):
    pd.DataFrame({"lead_id": ["X1", "X2"]}).to_csv(tmp_path / "deals.csv", index=False)
    config = _config(tmp_path, _leads().drop(columns="converted"),
                     label={"won_in": {"path": "deals.csv", "on": "lead_id"}})
    with pytest.raises(UserError, match=r"no lead's 'lead_id' is in deals\.csv \(it holds e\.g\. "
                       r"'X1', 'X2'\)"):
        read_leads(load_config(config), training=True)


def test_events_of_open_leads_are_not_reported_as_unknown(demo_dir, tmp_path):
    """Open leads leave the training frame but keep their events: the event log warning
    counts only events of leads absent from the file."""
    from pipeline.inputs.validate import validate_leads

    leads_frame = pd.read_csv(demo_dir / "leads.csv", dtype=str, keep_default_na=False)
    leads_frame.loc[leads_frame.index[::10], "outcome"] = "open"
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml",
                      data=demo_dir / "leads.csv", overrides={"label": {"open": ["open"]}})
    leads = validate_leads(leads_frame, cfg, source="leads.csv")
    assert len(leads.undecided) == 300 and len(leads.frame) == 2700
    features = build_features(leads, cfg, events=demo_dir / "events.csv",
                              half_lives={"product": 7.0, "non_product": 14.0, "trivial": 3.0})
    assert features.event_diagnostics["events_unknown_lead"] == 0
    assert len(features.frame) == 2700
    assert set(features.frame["lead_id"]) == set(leads.frame["lead_id"])
