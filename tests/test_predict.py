"""Batch prediction through ``lead-scoring score``: streaming in batches, rejects, incremental
scoring (``--since``), the account roll-up, locks and atomic outputs; and the scoring-time event
features of :mod:`pipeline.inputs.event_features` against naive references.

One model is trained once per module (demo data, 3,000 leads, fast grid) and registered in a
temporary store; every test scores with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import invoke, run_cli
from typer.testing import CliRunner

from pipeline.errors import LockedError, UserError

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Trained:
    config: Path
    no_accounts: Path  # the same model and store, without data.account_column
    folder: Path
    leads: Path
    events: Path




@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Trained:
    folder = tmp_path_factory.mktemp("predict")
    settings = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    settings["root"] = str(REPO)
    settings["data"]["leads"] = str(demo_dir / "leads.csv")
    settings["data"]["events"] = str(demo_dir / "events.csv")
    settings["events"]["half_life_grid"] = [3, 7, 14]
    settings["model"] = {"c_grid": [0.1, 1.0], "cv_folds": 3}
    settings["registry"] = {"tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
                            "artifact_location": str(folder / "artifacts")}
    config = folder / "demo.yaml"
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    settings["data"]["account_column"] = None
    no_accounts = folder / "demo_no_accounts.yaml"
    no_accounts.write_text(yaml.safe_dump(settings, sort_keys=False))
    invoke(["train", "--config", str(config), "--no-score", "--out", str(folder / "train")])
    return Trained(config, no_accounts, folder, demo_dir / "leads.csv", demo_dir / "events.csv")


@pytest.fixture(scope="module")
def full_scores(trained: Trained) -> pd.DataFrame:
    """All 3,000 leads scored in one batch (the reference for the other runs)."""
    out = trained.folder / "full.csv"
    invoke(["score", "--config", str(trained.config), "--output", str(out)])
    return pd.read_csv(out, dtype={"lead_id": str})


def _score(trained: Trained, out: Path, *extra: str, config: Path | None = None):
    return invoke(["score", "--config", str(config or trained.config), "--output", str(out),
                   *extra])


def test_streaming_in_batches_preserves_rows_and_scores(trained, full_scores, tmp_path):
    out = tmp_path / "batched.csv"
    _score(trained, out, "--batch-size", "500")
    batched = pd.read_csv(out, dtype={"lead_id": str})
    leads = pd.read_csv(trained.leads, dtype=str)
    assert len(leads) == 3000
    assert len(batched) == len(leads)  # no rejects in clean data: every lead scored once
    assert batched["lead_id"].tolist() == leads["lead_id"].tolist()
    pd.testing.assert_frame_equal(batched, full_scores)
    assert pd.read_csv(tmp_path / "batched_rejects.csv").empty
    for column in ("points", "fit", "pain", "probability", "sdr_ready", "reason_codes"):
        assert column in batched.columns
    assert (batched["points"] == batched["fit"] + batched["pain"]).all()


def test_parquet_output_matches_csv(trained, full_scores, tmp_path):
    out = tmp_path / "scored.parquet"
    _score(trained, out, "--batch-size", "700")
    parquet = pd.read_parquet(out)
    assert parquet["lead_id"].astype(str).tolist() == full_scores["lead_id"].tolist()
    assert parquet["points"].tolist() == full_scores["points"].tolist()


def _broken_leads(trained: Trained, tmp_path: Path) -> tuple[Path, int, int]:
    """300 leads with a missing id, a duplicate id and a malformed row: (file, rows, fields)."""
    lines = trained.leads.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:301]
    broken = list(rows)
    broken[10] = "," + broken[10].split(",", 1)[1]          # missing id
    broken[20] = broken[5]                                  # duplicate of an earlier id
    broken[30] = broken[30] + ",extra,fields"               # malformed row
    source = tmp_path / "leads.csv"
    source.write_text("\n".join([header, *broken]) + "\n", encoding="utf-8")
    return source, len(broken), header.count(",") + 1


def test_rejects_file_lists_every_unscorable_row_with_its_reason(trained, full_scores,
                                                                tmp_path):
    source, n_rows, n_fields = _broken_leads(trained, tmp_path)
    out, rejects = tmp_path / "scored.csv", tmp_path / "rejects.csv"
    _score(trained, out, "--input", str(source), "--rejects", str(rejects), "--batch-size", "64",
           config=trained.no_accounts)
    scored = pd.read_csv(out, dtype={"lead_id": str})
    rej = pd.read_csv(rejects, dtype={"lead_id": str})
    assert len(scored) + len(rej) == n_rows
    reasons = " | ".join(rej["reason"])
    assert "missing id" in reasons and "duplicate id" in reasons
    assert f"expected {n_fields}" in reasons
    assert len(rej) == 3
    # scored rows carry the same scores as in the full run (nothing shifted by the bad rows)
    ref = full_scores.set_index("lead_id").loc[scored["lead_id"], "points"].to_numpy()
    assert (scored["points"].to_numpy() == ref).all()


def test_account_rollup_survives_duplicate_and_missing_ids(trained, tmp_path):
    source, _, _ = _broken_leads(trained, tmp_path)
    out = tmp_path / "scored.csv"
    _score(trained, out, "--input", str(source))
    accounts = pd.read_csv(tmp_path / "scored_accounts.csv")
    assert accounts["leads"].sum() == len(pd.read_csv(out))


def test_incremental_scoring_rescores_only_changed_leads(trained, full_scores, tmp_path):
    events = pd.read_csv(trained.events, dtype=str)
    leads = pd.read_csv(trained.leads, dtype=str)
    stamps = pd.to_datetime(events["timestamp"])
    since = stamps.quantile(0.97).floor("D")
    expected = set(events.loc[stamps >= since, "lead_id"]) | \
        set(leads.loc[pd.to_datetime(leads["created_at"]) >= since, "lead_id"])
    assert 0 < len(expected) < len(leads)
    out = tmp_path / "incremental.csv"
    _score(trained, out, "--since", since.isoformat())
    part = pd.read_csv(out, dtype={"lead_id": str})
    assert set(part["lead_id"]) == expected
    ref = full_scores.set_index("lead_id").loc[part["lead_id"]]
    assert part["points"].tolist() == ref["points"].tolist()


@pytest.mark.parametrize("leads_format", ["parquet", "csv"])
def test_incremental_run_equals_the_full_run_on_the_changed_leads(trained, tmp_path,
                                                                  leads_format):
    """``--since`` with a Parquet event log in time order (its old row groups skipped by
    their statistics) and Parquet or CSV leads (picked in Arrow or in pandas), the event
    features made for the changed leads only: every output column of the changed leads is
    the full run's, in the file's order, and the other leads are left out."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    events = pd.read_csv(trained.events, dtype=str)
    events["timestamp"] = pd.to_datetime(events["timestamp"])
    events = events.sort_values("timestamp", kind="stable")
    log = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pandas(events, preserve_index=False), log,
                   row_group_size=len(events) // 20)
    leads = pd.read_csv(trained.leads, dtype=str)
    source = tmp_path / f"leads.{leads_format}"
    if leads_format == "parquet":
        typed = leads.assign(created_at=pd.to_datetime(leads["created_at"]))
        pq.write_table(pa.Table.from_pandas(typed, preserve_index=False), source,
                       row_group_size=250)
    else:
        leads.to_csv(source, index=False)
    settings = yaml.safe_load(trained.no_accounts.read_text())
    settings["data"]["events"] = str(log)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    since = events["timestamp"].quantile(0.95).floor("D")
    created = pd.to_datetime(leads["created_at"])
    changed = set(events.loc[events["timestamp"] >= since, "lead_id"]) | \
        set(leads.loc[created >= since, "lead_id"])
    assert 0 < len(changed) < len(leads) / 4
    full, part = tmp_path / "full.parquet", tmp_path / "part.parquet"
    _score(trained, full, "--input", str(source), "--as-of", "2025-06-01", config=config)
    _score(trained, part, "--input", str(source), "--as-of", "2025-06-01",
           "--since", since.isoformat(), config=config)
    from pipeline.scoring.output import read_scored

    whole, picked = read_scored(full), read_scored(part)
    assert set(picked["lead_id"]) == changed
    expected = whole[whole["lead_id"].isin(changed)].reset_index(drop=True)
    pd.testing.assert_frame_equal(picked, expected)


def test_since_with_nothing_new_exits_0_and_leaves_the_outputs(trained, tmp_path):
    """Cron semantics: an hourly run with nothing new is not a failure."""
    out = tmp_path / "incremental.csv"
    out.write_text("yesterday\n")
    result = _score(trained, out, "--since", "2099-01-01")
    assert "nothing new since 2099-01-01 00:00:00" in result.output
    assert out.read_text() == "yesterday\n"
    assert not (tmp_path / "incremental_rejects.csv").exists()


@pytest.mark.parametrize("option, value", [("--since", "31/02/2025"),
                                           ("--as-of", "next tuesday")])
def test_unparseable_times_are_one_line_errors(trained, tmp_path, option, value, monkeypatch,
                                               capsys):


    code, _, err = run_cli(monkeypatch, capsys, "score", "--config", trained.config,
                           "--output", tmp_path / "s.csv", option, value)
    assert code == 2
    assert f"{option} {value!r} is not a date or time" in err
    assert len(err.strip().splitlines()) <= 2  # the message and its hint


def test_account_rollup_matches_a_naive_reference(trained, full_scores, tmp_path):
    out = tmp_path / "scored.csv"
    _score(trained, out)
    accounts = pd.read_csv(tmp_path / "scored_accounts.csv", dtype={"account": str,
                                                                    "best_lead": str})
    leads = pd.read_csv(trained.leads, dtype=str).set_index("lead_id")
    scored = pd.read_csv(out, dtype={"lead_id": str})
    scored["account"] = leads.loc[scored["lead_id"], "account_id"].to_numpy()
    expected = {}
    for account, group in scored.dropna(subset=["account"]).groupby("account"):
        rows = sorted(zip(group["points"], group["lead_id"], group["sdr_ready"], strict=True),
                      key=lambda r: (-r[0], r[1]))
        top3 = [r[0] for r in rows[:3]]
        expected[account] = (len(rows), rows[0][1], sum(top3), sum(top3) / len(top3),
                             sum(bool(r[2]) for r in rows) / len(rows))
    assert len(accounts) == len(expected) == accounts["account"].nunique()
    for row in accounts.itertuples():
        n, best, top_sum, top_mean, share = expected[row.account]
        assert (row.leads, row.best_lead, row.top3_sum) == (n, best, top_sum)
        assert row.top3_mean == pytest.approx(top_mean)
        assert row.sdr_ready_share == pytest.approx(share)
    assert accounts["leads"].sum() == scored["account"].notna().sum()


def test_score_under_a_held_lock_refuses_and_writes_nothing(trained, tmp_path):
    from pipeline.cli.main import _lock_path, app
    from pipeline.config import load_config
    from pipeline.inputs.reader import run_lock

    cfg = load_config(trained.config)
    out = tmp_path / "locked.csv"
    with run_lock(_lock_path(cfg, "score"), what="test"):
        result = CliRunner().invoke(app, ["score", "--config", str(trained.config), "--lock",
                                          "--output", str(out)])
    assert isinstance(result.exception, LockedError)
    assert result.exception.exit_code == 75
    assert "already running" in result.exception.message
    assert not out.exists()


def test_a_failed_score_leaves_the_previous_output_untouched(trained, tmp_path):
    from pipeline.cli.main import app

    out = tmp_path / "scored.csv"
    out.write_text("previous run\n")
    bad = tmp_path / "no_columns.csv"
    bad.write_text("lead_id,unrelated\nL1,x\nL2,y\n")
    result = CliRunner().invoke(app, ["score", "--config", str(trained.config), "--input",
                                      str(bad), "--output", str(out)])
    assert isinstance(result.exception, UserError)
    assert out.read_text() == "previous run\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# --------------------------------------------------------------------------- scoring_events


def _config(trained: Trained):
    from pipeline.config import load_config

    return load_config(trained.config)


def test_leads_with_created_reads_ids_and_times_from_any_file(trained, tmp_path):
    from pipeline.inputs.event_features import _leads_with_created

    cfg = _config(trained)
    leads = pd.read_csv(trained.leads, dtype=str).head(40)
    leads.loc[3, "created_at"] = ""           # missing: dropped
    leads.loc[4, "created_at"] = "not a date"  # unparseable: dropped
    odd = tmp_path / "it's here"
    odd.mkdir()
    path = odd / "leads.csv"
    leads.to_csv(path, index=False)
    frame = _leads_with_created(cfg, path)
    kept = leads.drop(index=[3, 4])
    assert frame["lead_id"].tolist() == kept["lead_id"].tolist()
    assert (frame["created_at"].to_numpy() ==
            pd.to_datetime(kept["created_at"]).to_numpy()).all()
    leads.to_parquet(tmp_path / "leads.parquet", index=False)
    pq = _leads_with_created(cfg, tmp_path / "leads.parquet")
    assert pq["lead_id"].tolist() == frame["lead_id"].tolist()
    leads.drop(columns=["created_at"]).to_csv(tmp_path / "nocreated.csv", index=False)
    with pytest.raises(UserError, match=r"\['created_at'\] not found"):
        _leads_with_created(cfg, tmp_path / "nocreated.csv")


def test_event_features_for_a_subset_file_equal_the_full_computation(trained, tmp_path):
    from pipeline.inputs.event_features import event_features_for_scoring
    from pipeline.registry import store as registry

    cfg = _config(trained)
    registry.connect(cfg.registry.tracking_uri)
    rules = registry.load_rules(registry.resolve("lead-scoring@champion"))
    if not rules.decay_half_life_days:
        pytest.skip("the model kept no event feature")
    as_of = pd.Timestamp("2025-06-01")
    full = event_features_for_scoring(cfg, trained.events, rules, as_of=as_of)
    subset = pd.read_csv(trained.leads, dtype=str).sample(50, random_state=1)
    path = tmp_path / "subset.csv"
    subset.to_csv(path, index=False)
    part = event_features_for_scoring(cfg, trained.events, rules, as_of=as_of, leads=path)
    created = pd.to_datetime(subset["created_at"])
    assert set(part.index) == set(subset.loc[created <= as_of, "lead_id"])
    pd.testing.assert_frame_equal(part.sort_index(), full.loc[part.index].sort_index())
    # a timezone-aware as-of is the same instant in UTC
    aware = event_features_for_scoring(cfg, trained.events, rules,
                                       as_of=pd.Timestamp("2025-06-01T02:00+02:00"), leads=path)
    pd.testing.assert_frame_equal(aware.sort_index(), part.sort_index())


def test_event_features_of_the_changed_leads_equal_the_whole_file_s(trained, tmp_path):
    """``--since`` makes the event features of the changed leads only (Parquet leads picked
    in Arrow, CSV in pandas): the same rows as the whole file's, every column, for the
    decayed features (half-lives, windows, velocity) and for the model's CRM counts."""
    from dataclasses import replace

    from pipeline.inputs.event_features import event_features_for_scoring
    from pipeline.inputs.features import FeatureSettings
    from pipeline.registry import store as registry

    cfg = _config(trained)
    registry.connect(cfg.registry.tracking_uri)
    rules = registry.load_rules(registry.resolve("lead-scoring@champion"))
    groups = sorted(set(FeatureSettings.from_config(cfg).event_to_group.values()))
    decayed = replace(rules, decay_half_life_days={g: 7.0 + i for i, g in enumerate(groups)},
                      event_rules=type(rules.event_rules)())
    leads = pd.read_csv(trained.leads, dtype=str)
    leads.loc[7, "lead_id"] = f"  {leads.loc[7, 'lead_id']} "  # stripped as scoring strips
    parquet = tmp_path / "leads.parquet"
    leads.assign(created_at=pd.to_datetime(leads["created_at"])).to_parquet(parquet, index=False)
    csv = tmp_path / "leads.csv"
    leads.to_csv(csv, index=False)
    chosen = set(leads["lead_id"].str.strip().sample(60, random_state=2)) | \
        {leads.loc[7, "lead_id"].strip(), "nobody"}
    as_of = pd.Timestamp("2025-06-01")
    for table, path in [(t, p) for t in (decayed, rules) for p in (parquet, csv)]:
        whole = event_features_for_scoring(cfg, trained.events, table, as_of=as_of, leads=path)
        part = event_features_for_scoring(cfg, trained.events, table, as_of=as_of, leads=path,
                                          only_ids=chosen)
        assert set(part.index) == chosen & set(whole.index) and len(part.columns)
        pd.testing.assert_frame_equal(part.sort_index(), whole.loc[part.index].sort_index())
        assert table is rules or any(c.startswith("decayed_") for c in part.columns)


def test_changed_since_matches_a_naive_reference(trained):
    from pipeline.inputs.event_features import changed_since

    cfg = _config(trained)
    events = pd.read_csv(trained.events, dtype=str)
    leads = pd.read_csv(trained.leads, dtype=str)
    for since in (pd.Timestamp("2025-03-01"), pd.Timestamp("2025-05-15T12:00")):
        expected = set(events.loc[pd.to_datetime(events["timestamp"]) >= since, "lead_id"]) | \
            set(leads.loc[pd.to_datetime(leads["created_at"]) >= since, "lead_id"])
        assert changed_since(cfg, trained.events, since) == expected
    aware = changed_since(cfg, trained.events, pd.Timestamp("2025-03-01T01:00+01:00"))
    assert aware == changed_since(cfg, trained.events, pd.Timestamp("2025-03-01"))


def test_newest_event_time_is_the_maximum_timestamp(trained):
    from pipeline.inputs.event_features import newest_event_time

    events = pd.read_csv(trained.events, dtype=str)
    assert newest_event_time(trained.events) == pd.to_datetime(events["timestamp"]).max()
    assert np.isfinite(newest_event_time(trained.events).value)
