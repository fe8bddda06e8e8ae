"""The demo dataset: deterministic, well-formed, and its known truth is recoverable.

The true features are recomputed here from the written CSV files with slow, obviously right
Python loops, and compared with the generator's own (vectorised) truth.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from pipeline.inputs.demo_data import DemoData, generate_demo_data, write_demo_data
from pipeline.inputs.demo_truth import COEFFICIENTS, LEAD_COLUMNS, truth_json

N_LEADS = 3000
SEED = 7
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate_demo_data(n_leads=N_LEADS, seed=SEED)


@pytest.fixture(scope="module")
def written(demo: DemoData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    write_demo_data(demo, out)
    return out


@pytest.fixture(scope="module")
def files(written: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The three files as a consumer reads them: every cell as text, blank -> missing."""
    leads = pd.read_csv(written / "leads.csv", dtype=str, keep_default_na=False, na_values=[""])
    events = pd.read_csv(written / "events.csv", dtype=str, keep_default_na=False)
    truth = json.loads((written / "truth.json").read_text(encoding="utf-8"))
    return leads, events, truth


# --- naive reference implementation of the truth's feature definitions -------------------------

KEYBOARD_ROWS = (
    "qwertyuiop", "asdfghjkl", "zxcvbnm", "qwertzuiop", "yxcvbnm", "azertyuiop", "qsdfghjklm",
    "wxcvbn",
)  # fmt: skip
FAKE_NAMES = {"test", "testing", "tester", "fake", "dummy"}


def spam_like(name: object) -> bool:
    """A name is spam-like: no capital letter, 4 keys in keyboard order, 4 repeats, a fake."""
    if not isinstance(name, str):
        return False
    low = name.casefold()
    if not any(ch.isupper() for ch in name) or low in FAKE_NAMES:
        return True
    for row in KEYBOARD_ROWS:
        for i in range(len(row) - 3):
            if row[i : i + 4] in low or row[i : i + 4][::-1] in low:
                return True
    return any(low[i] == low[i + 1] == low[i + 2] == low[i + 3] for i in range(len(low) - 3))


def naive_features(leads: pd.DataFrame, events: pd.DataFrame, truth: dict) -> pd.DataFrame:
    """Every feature of the true model, one lead and one event at a time, from the files."""
    group_of = {e: g for g, names in truth["event_groups"].items() for e in names}
    half_life = truth["half_life_days"]
    horizon = timedelta(days=truth["snapshot_horizon_days"])
    by_lead: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for lead_id, event, ts in events.itertuples(index=False):
        by_lead[lead_id].append((event, datetime.fromisoformat(ts)))
    rows = []
    for lead in leads.itertuples(index=False):
        created = datetime.fromisoformat(lead.created_at)
        snapshot = created + horizon
        decayed = {"product": 0.0, "non_product": 0.0, "trivial": 0.0}
        velocity = 0
        for event, ts in by_lead[lead.lead_id]:
            if ts >= snapshot:
                continue
            group = group_of[event]
            age_days = (snapshot - ts).total_seconds() / 86400
            decayed[group] += 0.5 ** (age_days / half_life[group])
            if group == "product" and created <= ts < min(created + timedelta(days=7), snapshot):
                velocity += 1
        email = lead.email
        if not isinstance(email, str):
            domain_type = "missing"
        else:
            domain = email.rsplit("@", 1)[1]
            if domain in truth["disposable_domains"]:
                domain_type = "disposable"
            elif domain in truth["freemail_domains"]:
                domain_type = "freemail"
            else:
                domain_type = "business"
        title = lead.job_title
        seniority = "missing"
        if isinstance(title, str):
            seniority = truth["title_seniority"][title.casefold()]
        spam = spam_like(lead.first_name) or spam_like(lead.last_name)
        rows.append(
            {
                "lead_id": lead.lead_id,
                "email_domain_type": domain_type,
                "name_spam": "yes" if spam else "no",
                "seniority": seniority,
                "company_size": lead.company_size,
                "industry": lead.industry,
                "target_account": lead.target_account,
                "lead_source": lead.lead_source,
                "decayed_product": decayed["product"],
                "decayed_non_product": decayed["non_product"],
                "decayed_trivial": decayed["trivial"],
                "velocity_product": velocity / 7,
            }
        )
    return pd.DataFrame(rows)


def design(features: pd.DataFrame) -> pd.DataFrame:
    """One column per truth coefficient: indicators, log1p of decayed sums, velocity."""
    columns = {}
    for name in COEFFICIENTS:
        if "=" in name:
            column, level = name.split("=", 1)
            columns[name] = (features[column] == level).astype(float).to_numpy()
        elif name.startswith("log1p("):
            columns[name] = np.log1p(features[name[len("log1p(") : -1]].to_numpy(dtype=float))
        else:
            columns[name] = features[name].to_numpy(dtype=float)
    return pd.DataFrame(columns)


@pytest.fixture(scope="module")
def reference(files: tuple[pd.DataFrame, pd.DataFrame, dict]) -> pd.DataFrame:
    leads, events, truth = files
    return naive_features(leads, events, truth)


# --- determinism -------------------------------------------------------------------------------


def test_same_seed_gives_identical_frames_and_bytes(demo: DemoData, written: Path, tmp_path: Path):
    again = generate_demo_data(n_leads=N_LEADS, seed=SEED)
    pd.testing.assert_frame_equal(again.leads, demo.leads)
    pd.testing.assert_frame_equal(again.events, demo.events)
    pd.testing.assert_frame_equal(again.features, demo.features)
    assert again.truth == demo.truth
    paths = write_demo_data(again, tmp_path)
    assert [p.name for p in paths] == ["leads.csv", "events.csv", "truth.json"]
    for path in paths:
        assert path.read_bytes() == (written / path.name).read_bytes(), path.name


def test_different_seed_gives_different_data(demo: DemoData):
    other = generate_demo_data(n_leads=N_LEADS, seed=SEED + 1)
    assert not other.leads["email"].equals(demo.leads["email"])
    assert not other.leads["created_at"].equals(demo.leads["created_at"])
    assert len(other.events) != len(demo.events) or not other.events.equals(demo.events)


def test_write_is_atomic_and_overwrites(demo: DemoData, tmp_path: Path):
    (tmp_path / "leads.csv").write_text("stale\n", encoding="utf-8")
    small = generate_demo_data(n_leads=20, seed=1)
    write_demo_data(small, tmp_path)
    write_demo_data(small, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv", "leads.csv", "truth.json"]
    assert (tmp_path / "leads.csv").read_text(encoding="utf-8").startswith("lead_id,created_at,")
    assert (tmp_path / "truth.json").read_text(encoding="utf-8") == truth_json(small.truth)


# --- schema ------------------------------------------------------------------------------------


def test_lead_columns_and_values(demo: DemoData, files):
    leads, _, truth = files
    assert list(leads.columns) == list(LEAD_COLUMNS)
    assert list(demo.leads.columns) == list(LEAD_COLUMNS)
    assert leads["lead_id"].iloc[0] == "L000001"
    assert leads["lead_id"].is_unique and leads["lead_id"].str.fullmatch(r"L\d{6}").all()
    assert leads["created_at"].str.match(ISO).all() and leads["outcome_at"].str.match(ISO).all()
    created = pd.to_datetime(leads["created_at"])
    assert created.min() >= pd.Timestamp("2025-01-01")
    assert created.max() < pd.Timestamp("2026-01-01")
    assert created.dt.month.nunique() == 12  # spread over the year
    snapshot = created + pd.Timedelta(days=30)
    delay = pd.to_datetime(leads["outcome_at"]) - snapshot
    assert (delay >= pd.Timedelta(days=1)).all() and (delay <= pd.Timedelta(days=60)).all()
    assert set(leads["outcome"]) == {"won", "lost"}
    assert set(leads["target_account"]) == {"yes", "no"}
    assert 0.06 <= (leads["target_account"] == "yes").mean() <= 0.15
    assert set(leads["company_size"].dropna()) == {"1-10", "11-50", "51-200", "201-1000", "1000+"}
    assert 0.02 <= leads["company_size"].isna().mean() <= 0.12
    assert set(leads["lead_source"]) == {
        "organic", "paid_search", "referral", "event", "partner", "outbound", "social"
    }  # fmt: skip
    assert leads["industry"].nunique() == 8
    assert 10 <= leads["country"].nunique() <= 12
    shares = leads["country"].value_counts(normalize=True)
    assert shares.iloc[0] > 3 * shares.iloc[-1]  # skewed
    # several leads per account, about 0.3 accounts per lead; one company per account
    assert 0.25 * N_LEADS <= leads["account_id"].nunique() <= 0.35 * N_LEADS
    assert (leads.groupby("account_id")["company"].nunique() == 1).all()
    assert 0.02 <= leads["job_title"].isna().mean() <= 0.15
    assert truth["n_leads"] == N_LEADS and truth["seed"] == SEED


def test_event_columns_order_and_timing(demo: DemoData, files):
    leads, events, truth = files
    assert list(events.columns) == ["lead_id", "event", "timestamp"]
    assert events["timestamp"].str.match(ISO).all()
    names = {e for group in truth["event_groups"].values() for e in group}
    assert set(events["event"]) <= names
    assert set(events["lead_id"]) <= set(leads["lead_id"])
    ts = pd.to_datetime(events["timestamp"])
    key = pd.DataFrame({"lead_id": events["lead_id"], "ts": ts})
    assert key.equals(key.sort_values(["lead_id", "ts"], kind="stable"))
    created = events["lead_id"].map(leads.set_index("lead_id")["created_at"]).pipe(pd.to_datetime)
    assert (ts > created).all()
    assert ts.max() < pd.Timestamp(truth["window_end"])
    assert 15 <= len(events) / len(leads) <= 30
    group = events["event"].map({e: g for g, es in truth["event_groups"].items() for e in es})
    assert (group == "product").sum() < (group == "trivial").sum()


def test_product_events_only_after_one_trial_signup(files):
    _, events, truth = files
    product = set(truth["event_groups"]["product"])
    for lead_id, rows in events.groupby("lead_id", sort=False):
        kinds = [e for e in rows["event"] if e in product]
        if kinds:
            assert kinds[0] == "trial_signup", lead_id
            assert kinds.count("trial_signup") == 1, lead_id
            first = rows.loc[rows["event"] == "trial_signup", "timestamp"].iloc[0]
            later = rows.loc[rows["event"].isin(product - {"trial_signup"}), "timestamp"]
            assert (later > first).all(), lead_id


def test_truth_contents(demo: DemoData, files):
    leads, _, truth = files
    assert truth == json.loads(truth_json(demo.truth))
    assert truth["snapshot_horizon_days"] == 30
    assert truth["half_life_days"] == {"product": 10, "non_product": 30, "trivial": 5}
    for group, days in truth["half_life_days"].items():
        assert truth[f"half_life_days_{group}"] == days
    assert truth["event_groups"] == {
        "product": ["trial_signup", "document_created", "document_signed", "teammate_invited",
                    "login"],
        "non_product": ["whitepaper_download", "webinar", "pricing_page"],
        "trivial": ["email_open", "email_click", "site_visit"],
    }  # fmt: skip
    assert truth["label"] == {"column": "outcome", "positive": ["won"], "negative": ["lost"]}
    assert set(truth["coefficients"]) == {*COEFFICIENTS, "intercept"}
    assert truth["coefficients"]["log1p(decayed_product)"] == 1.1
    assert truth["coefficients"]["intercept"] == truth["intercept"]
    assert truth["conversion_rate"] == pytest.approx((leads["outcome"] == "won").mean(), abs=1e-6)


def test_conversion_rate_in_range(files):
    leads, _, truth = files
    rate = (leads["outcome"] == "won").mean()
    assert 0.12 <= rate <= 0.18
    assert 0.7 <= truth["oracle_auc"] <= 0.95


# --- profile shares ----------------------------------------------------------------------------


def test_email_and_name_shares(demo: DemoData, files, reference: pd.DataFrame):
    leads, _, _ = files
    kind = reference["email_domain_type"].value_counts(normalize=True)
    assert 0.2 <= kind["freemail"] <= 0.3
    assert 0.015 <= kind["disposable"] <= 0.05
    assert 0.003 <= kind["missing"] <= 0.03
    assert kind["business"] >= 0.6
    # business addresses are firstname.lastname-like at the account's one company domain
    business = leads[reference["email_domain_type"].eq("business").to_numpy()]
    domains = business["email"].str.split("@").str[1]
    assert (domains.groupby(business["account_id"]).nunique() == 1).all()
    assert business["email"].str.fullmatch(r"[a-z0-9.\-]+@[a-z0-9.\-]+").all()
    spam_share = (reference["name_spam"] == "yes").mean()
    assert 0.025 <= spam_share <= 0.055
    names = set(leads["first_name"]) | set(leads["last_name"])
    assert any(not n.isascii() for n in names)  # Élodie, Müller, Nguyễn, ...
    assert any(n.startswith(("van ", "de ", "von ")) for n in names)
    assert any("'" in n for n in names)


def test_name_spam_is_detectable_by_construction(demo: DemoData, reference: pd.DataFrame):
    """The generator's spam flag equals what the naive spam-name rules find, row by row."""
    assert reference["name_spam"].tolist() == demo.features["name_spam"].tolist()


def test_seniority_and_email_type_match_truth_mappings(demo: DemoData, reference: pd.DataFrame):
    for column in ("email_domain_type", "seniority"):
        assert reference[column].tolist() == demo.features[column].tolist(), column
    assert set(reference["seniority"]) == {
        "c_level", "vp", "director", "manager", "individual", "student", "missing"
    }  # fmt: skip


# --- the truth is the truth --------------------------------------------------------------------


def test_naive_features_equal_generator_truth(demo: DemoData, files, reference: pd.DataFrame):
    _, _, truth = files
    for column in ("decayed_product", "decayed_non_product", "decayed_trivial", "velocity_product"):
        np.testing.assert_allclose(
            reference[column].to_numpy(), demo.features[column].to_numpy(), rtol=1e-9, atol=1e-12
        )
    logit = truth["intercept"] + design(reference).to_numpy() @ np.array(
        [truth["coefficients"][name] for name in COEFFICIENTS]
    )
    np.testing.assert_allclose(logit, demo.features["true_logit"].to_numpy(), atol=1e-9)
    assert reference["decayed_product"].gt(0).mean() >= 0.2  # enough spread to learn from
    assert reference["velocity_product"].gt(0).mean() >= 0.1


def test_l2_logistic_regression_recovers_the_truth(files, reference: pd.DataFrame):
    leads, _, truth = files
    y = (leads["outcome"] == "won").to_numpy()
    x = design(reference)
    model = LogisticRegression(C=1.0, max_iter=5000).fit(x, y)
    fitted = dict(zip(x.columns, model.coef_[0], strict=True))
    large = [name for name, coef in truth["coefficients"].items() if abs(coef) >= 0.5]
    assert len(large) >= 10
    for name in large:
        if name != "intercept":
            assert np.sign(fitted[name]) == np.sign(truth["coefficients"][name]), name
    assert (
        fitted["log1p(decayed_product)"]
        > fitted["log1p(decayed_non_product)"]
        > fitted["log1p(decayed_trivial)"]
    )


def test_label_leaks_only_after_the_snapshot(files):
    """Won leads have many more post-snapshot events than lost ones; before, far less so."""
    leads, events, _ = files
    created = pd.to_datetime(events["lead_id"].map(leads.set_index("lead_id")["created_at"]))
    after = pd.to_datetime(events["timestamp"]) >= created + pd.Timedelta(days=30)
    won = leads.set_index("lead_id")["outcome"].eq("won")
    post = events[after.to_numpy()].groupby("lead_id").size().reindex(won.index, fill_value=0)
    pre = events[~after.to_numpy()].groupby("lead_id").size().reindex(won.index, fill_value=0)
    post_ratio = post[won].mean() / post[~won].mean()
    pre_ratio = pre[won].mean() / pre[~won].mean()
    assert post_ratio > 4
    assert post_ratio > 2 * pre_ratio
    # a post-snapshot count separates won from lost better than the true model can: a leak
    ranks = post.rank().to_numpy()
    n_pos, n_neg = int(won.sum()), int((~won).sum())
    auc = (ranks[won.to_numpy()].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    assert auc > files[2]["oracle_auc"]


# --- arguments and invariants ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_leads": 0}, r"n_leads must be a positive integer, got 0"),
        ({"n_leads": 2.5}, r"n_leads must be a positive integer, got 2.5"),
        ({"days": 0}, r"days must be a positive integer, got 0"),
        ({"seed": -1}, r"seed must be a non-negative integer, got -1"),
        ({"start": "yesterday"}, r"start must be an ISO date .* got 'yesterday'"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, message: str):
    with pytest.raises(ValueError, match=message):
        generate_demo_data(**kwargs)


@settings(max_examples=25, deadline=None)
@given(
    n_leads=st.integers(1, 60),
    seed=st.integers(0, 2**32 - 1),
    days=st.integers(1, 400),
)
def test_invariants_hold_for_any_small_dataset(n_leads: int, seed: int, days: int):
    data = generate_demo_data(n_leads=n_leads, seed=seed, start="2024-02-29", days=days)
    leads, events = data.leads, data.events
    assert len(leads) == n_leads and list(leads.columns) == list(LEAD_COLUMNS)
    created = events["lead_id"].map(leads.set_index("lead_id")["created_at"])
    assert (events["timestamp"] > created).all()
    start = pd.Timestamp("2024-02-29")
    assert leads["created_at"].between(start, start + pd.Timedelta(days=days), "left").all()
    assert (leads["outcome_at"] > leads["created_at"] + pd.Timedelta(days=30)).all()
    order = events.sort_values(["lead_id", "timestamp"], kind="stable").index
    assert (order == events.index).all()
    is_product = events["event"].isin(data.truth["event_groups"]["product"])
    first_product = events[is_product].groupby("lead_id")["event"].first()
    assert (first_product == "trial_signup").all()
    assert data.truth["conversion_rate"] == pytest.approx((leads["outcome"] == "won").mean())
    assert np.isfinite(data.features["true_logit"].to_numpy()).all()


@pytest.mark.slow
def test_full_size_generation_is_fast_and_learnable():
    began = time.perf_counter()
    data = generate_demo_data()
    elapsed = time.perf_counter() - began
    assert elapsed < 15, f"20k leads took {elapsed:.1f} s"
    assert len(data.leads) == 20_000
    assert 5_500 <= data.leads["account_id"].nunique() <= 6_500
    assert 300_000 <= len(data.events) <= 600_000
    assert 0.12 <= data.truth["conversion_rate"] <= 0.18
    y = (data.leads["outcome"] == "won").to_numpy()
    fitted = LogisticRegression(C=1.0, max_iter=5000).fit(design(data.features), y).coef_[0]
    estimate = dict(zip(COEFFICIENTS, fitted, strict=True))
    for name, coef in COEFFICIENTS.items():
        if abs(coef) >= 0.25:
            assert np.sign(estimate[name]) == np.sign(coef), name
            assert abs(estimate[name] - coef) < 0.45, name
