"""What the end-to-end sweep of a new company's shapes found (``;`` exports with decimal
commas, no id column, open deals, lookups, outcomes in a second file, sentinels, partial
leaks, a 40% base rate, pure noise), each pinned by a small generated case."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.model.rules import PointsRules
from pipeline.scoring.batch import score_file
from pipeline.scoring.frame import reason_pieces, score_frame

REPO = Path(__file__).resolve().parents[1]


def _noise_leads(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"lead_id": [f"N{i:04d}" for i in range(n)],
                         "industry": rng.choice(["retail", "tech", "gov"], n),
                         "visits": rng.poisson(3, n)})


def test_an_empty_points_table_scores_every_lead_with_no_reason(tmp_path):
    """No signal: the table is empty. Promoted by hand, it must still score every lead (0
    points, none SDR-ready, no reason) instead of failing on the reason codes (the pyfunc
    input-example check failed the same way at every no-signal training)."""
    rules = PointsRules(factors=[], sdr_threshold=1, prob_intercept=-0.4)
    leads = _noise_leads(7)
    scores = score_frame(rules, leads, reasons=True)
    assert len(scores) == 7
    assert (scores["points"] == 0).all() and not scores["sdr_ready"].any()
    assert list(scores["reason_codes"]) == [""] * 7
    pieces = reason_pieces(rules, leads)
    assert len(pieces) == 7 and pieces.to_pylist() == [[]] * 7

    source = tmp_path / "leads.csv"
    _noise_leads(250, seed=1).to_csv(source, index=False)
    for name in ("scored.csv", "scored.parquet"):
        summary = score_file(rules, source, tmp_path / name, rejects_path=tmp_path / "rej.csv",
                             id_column="lead_id")
        out = (pq.read_table(tmp_path / name).to_pandas() if name.endswith("parquet")
               else pd.read_csv(tmp_path / name))
        assert len(out) == 250 and summary.rejected == 0, name
        assert (out["points"] == 0).all()


def test_importing_the_model_class_prints_no_mlflow_notice():
    """MLflow's "Add type hints to the `predict` method" notice is raised under MLflow's own
    ``simplefilter('once')``, past every filter: it was printed on every command."""
    done = subprocess.run([sys.executable, "-W", "default", "-c",
                           "import pipeline.scoring.serving"],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    assert "Add type hints" not in done.stderr, done.stderr


def test_the_cli_keeps_mlflow_info_lines_off_stderr():
    """``INFO mlflow.pyfunc: Validating input example ...`` was printed at every training:
    MLflow sets its loggers' level when imported, after the CLI had set it."""
    code = ("from pipeline.cli import main; main._quiet_third_party(); import logging, mlflow; "
            "print(logging.getLogger('mlflow.pyfunc').getEffectiveLevel())")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=True)
    import logging

    assert int(done.stdout.split()[-1]) >= logging.ERROR, done.stdout


def test_lift_charts_are_written_atomically(tmp_path, monkeypatch):
    """``lift --out`` drew each chart straight into its file: a run that failed half-way
    left a truncated PNG under the old name. Now a failure leaves the previous chart."""
    from matplotlib.figure import Figure

    from pipeline.analysis.lift import lift_table
    from pipeline.reports.plots_lift import save_lift_charts

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"source": rng.choice(["web", "ads"], 200)})
    y = pd.Series((rng.random(200) < 0.4).astype(int))
    table = lift_table(X, y, {"source": "FIT"})
    (path,) = save_lift_charts(table, float(y.mean()), tmp_path)
    before = path.read_bytes()
    assert before[:8] == b"\x89PNG\r\n\x1a\n"

    def broken(self, fname, **kwargs):  # noqa: ANN001 - a disk that fills mid-write
        if hasattr(fname, "write"):
            fname.write(b"\x89PNG half")
        else:
            Path(fname).write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError):
        save_lift_charts(table, float(y.mean()), tmp_path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def _check(X, y, report, significance):  # noqa: ANN001, ANN202
    from pipeline.analysis.selection_check import check_selection

    return check_selection(X, y, report, ["real"], numeric=[], n_bins=5, min_leads=30,
                           missing_values=("",), max_factors=20, min_gain=0.002,
                           c_grid=[0.1, 0.3, 1.0, 3.0], folds=5, seed=0, max_rows=50_000,
                           max_iter=2000, significance=significance)


def test_a_factor_that_failed_its_significance_test_never_comes_back():
    """The CV check brought back any factor dropped as weak that gained 0.002 CV AUC, even one
    whose chi-square test said no association (a pure-noise ``Calls`` column with p = 0.57
    was kept on 3,000 leads). ``other`` here does add AUC; its report says p = 0.6: it stays
    out at significance 0.05 and comes back with the test off (significance 1)."""
    rng = np.random.default_rng(0)
    n = 3000
    real = rng.choice(["a", "b", "c"], n)
    other = rng.choice(["x", "y"], n)
    logit = -1 + 1.5 * (real == "c") + 0.6 * (other == "y")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"real": real, "other": other})
    report = pd.DataFrame({"column": ["real", "other"], "kept": [True, False],
                           "reason": ["kept", "weak: best level changes the close rate by "
                                              "4.0 pp < 5 pp"],
                           "p_adjusted": [1e-30, 0.6]})
    assert _check(X, y, report, significance=1.0).added.keys() == {"other"}
    stays_out = _check(X, y, report, significance=0.05)
    assert stays_out.kept == ["real"] and stays_out.added == {}
    table = stays_out.table.set_index("set")
    assert table.loc["all eligible candidates", "n_factors"] == 2  # still measured against


def test_an_id_equal_to_a_missing_value_code_is_still_an_id(tmp_path):
    """``data.missing_values: ["", "N/A", "999"]`` (attribute codes) with ``id_column: null``:
    lead 999's generated row_id is "999". Training refused the file (``id column 'row_id' is
    blank on rows 1000``) and scoring rejected that lead as ``missing id`` (pandas and
    DuckDB). An id is missing only when blank; attributes still read the codes as missing."""
    import yaml

    from pipeline.config import load_config
    from pipeline.inputs.reader import read_options, read_table
    from pipeline.inputs.validate import validate_leads
    from pipeline.model.rules import FactorRules
    from pipeline.scoring.duckdb_engine import score_duckdb

    rng = np.random.default_rng(0)
    n = 1200
    tier = rng.choice(["a", "b", "999"], n)
    frame = pd.DataFrame({"tier": tier, "converted": (rng.random(n) < 0.4).astype(int)})
    leads = tmp_path / "leads.csv"
    frame.to_csv(leads, sep=";", index=False)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "root": str(tmp_path), "data": {"leads": str(leads), "id_column": None,
                                        "missing_values": ["", "N/A", "999"]},
        "columns": {"fit": ["tier"]}}))
    cfg = load_config(config)
    raw = read_table(leads, options=read_options(cfg)).frame
    validated = validate_leads(raw, cfg, source=str(leads), training=True)
    assert len(validated.frame) == n
    assert validated.frame["row_id"].tolist() == [str(i) for i in range(1, n + 1)]
    assert validated.frame["tier"].isna().sum() == (tier == "999").sum()  # still a code

    rules = PointsRules(factors=[FactorRules("tier", "FIT", "categorical",
                                             levels={"a": 10, "b": 0}, missing_points=-5)],
                        missing_values=["", "N/A", "999"], id_column="row_id", sdr_threshold=5)
    expected = np.select([tier == "a", tier == "b"], [10, 0], -5)
    for engine in ("pandas", "duckdb"):
        out, rejects = tmp_path / f"{engine}.csv", tmp_path / f"{engine}_rejects.csv"
        if engine == "pandas":
            summary = score_file(rules, leads, out, rejects_path=rejects, id_column="row_id",
                                 options=read_options(cfg))
        else:
            summary = score_duckdb(rules, leads, out, rejects, id_column="row_id",
                                   options=read_options(cfg))
        scored = pd.read_csv(out, dtype={"row_id": str})
        assert (summary.scored, summary.rejected) == (n, 0), engine
        assert scored["row_id"].tolist() == [str(i) for i in range(1, n + 1)], engine
        assert scored["points"].tolist() == expected.tolist(), engine


def test_a_special_value_key_naming_no_column_is_warned_about(tmp_path):
    """``columns.special_values: {pday: [999]}`` for a file with ``pdays`` was silently ignored:
    the 999 sentinel stayed inside the top bin. Training now warns, naming the key and the
    close column; keys that name a column are not warned about."""
    import yaml

    from pipeline.config import load_config
    from pipeline.inputs.reader import read_options, read_table
    from pipeline.inputs.validate import validate_leads

    rng = np.random.default_rng(1)
    n = 400
    frame = pd.DataFrame({"lead_id": [f"L{i}" for i in range(n)],
                          "pdays": np.where(rng.random(n) < 0.3, 999, rng.integers(1, 30, n)),
                          "age": rng.integers(18, 80, n),
                          "converted": (rng.random(n) < 0.4).astype(int)})
    leads = tmp_path / "leads.csv"
    frame.to_csv(leads, index=False)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "root": str(tmp_path), "data": {"leads": str(leads)},
        "columns": {"special_values": {"pday": [999], "age": [-1]},
                    "trend": {"agee": "ascending"}}}))
    cfg = load_config(config)
    raw = read_table(leads, options=read_options(cfg)).frame
    warned = validate_leads(raw, cfg, source="leads.csv", training=True).warnings
    assert ("leads.csv: columns.special_values names 'pday', which is not a column of the "
            "leads: ignored (did you mean 'pdays'?)") in warned
    assert any("columns.trend names 'agee'" in w and "'age'" in w for w in warned)
    assert not any("'age'," in w or "names 'age'" in w for w in warned)
    assert validate_leads(raw, cfg, source="leads.csv", training=False).warnings == []


def test_own_event_rule_exports_are_read_back_with_their_event_rules():
    """``audit --rules`` on this project's HubSpot / crm-csv export of a table with event rules
    (the default CRM representation) failed with "a rule's filters must name one property" /
    "'occurred at least' is not one of ...". Both exports are now read back with the event rule
    (its events, window and cap) and the FIT factor's points."""
    from pipeline.exports.crm_sheet import export_crm_csv
    from pipeline.exports.hubspot import export_hubspot
    from pipeline.exports.importers import parse_rules
    from pipeline.model.rules import EventRule, FactorRules

    factor = FactorRules(name="p_events_30d", group="PAIN", kind="numeric",
                         edges=[0.0, 1.0, 2.0], bin_points=[0, 5, 8, 20], missing_points=-3)
    fit = FactorRules(name="size", group="FIT", kind="categorical", levels={"big": 10})
    rules = PointsRules(factors=[fit, factor], sdr_threshold=15,
                        event_rules=[EventRule("p_events_30d", ["login", "trial"], 30, 3)])
    for name, text in (("hubspot.json", export_hubspot(rules)),
                       ("crm.csv", export_crm_csv(rules))):
        imported = parse_rules(text, name).rules
        assert imported.factor("size").levels["big"] == 10, name
        [event_rule] = imported.event_rules
        assert sorted(event_rule.events) == ["login", "trial"], name
        assert event_rule.window_days == 30, name

def test_a_numeric_label_matches_by_value_whatever_its_spelling():
    """A 0/1 label exported as floats (``1.0``) or from a decimal-comma file (``1,0``, read as
    1.0) was refused: "neither won ['1'] nor lost ['0']: '0.0': 853, '1.0': 647". Numbers now
    compare by value; text labels and the message (raw values, with counts) are unchanged."""
    from pipeline.config_sections import LabelConfig
    from pipeline.errors import UserError
    from pipeline.inputs.labels import outcome_from_label

    def label(**kw):  # noqa: ANN003, ANN202
        return LabelConfig(**{"column": "y", "positive": [1], "negative": [0], "open": [],
                              "won_in": None, "window_days": None,
                              "converted_at_column": None, **kw})

    cells = pd.Series(["1.0", "0.0", "1", "0", "01", None, "0.00"])
    with pytest.raises(UserError, match=r"neither won \['1'\] nor lost \['0'\]: '\(blank\)': 1"):
        outcome_from_label(cells, label(), "f.csv")
    got = outcome_from_label(cells.fillna("1e0"), label(), "f.csv").label
    assert got.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    words = pd.Series(["yes", "no", "1.0", "open"])
    with pytest.raises(UserError, match=r"'1.0': 1"):
        outcome_from_label(words, label(positive=["yes"], negative=["no"], open=["open"]), "f")
    shares = pd.Series(["0.5", "0.50", "0.25"])
    assert outcome_from_label(shares, label(positive=[0.5], negative=[0.25]),
                              "f").label.tolist() == [1.0, 1.0, 0.0]


def test_a_deals_file_matching_no_lead_says_why_when_it_can():
    """Outcomes in a second file: deal ids exported as floats (``12.0``) or e-mails in another
    case matched no lead, and the hint only said to check the key. It now names the fix."""
    from pipeline.config_sections import LabelConfig
    from pipeline.errors import UserError
    from pipeline.inputs.labels import WonKeys, outcome_from_won_in

    label = LabelConfig(column="converted", positive=[1], negative=[0], open=[], won_in=None,
                        window_days=None, converted_at_column=None)
    ids = pd.Series([str(i) for i in range(1, 11)])
    cases = {"12 keys": (WonKeys(frozenset({"3.0", "7.0"}), "deals.csv", "id"), ids,
                         "2 keys match once '.0' is dropped"),
             "case": (WonKeys(frozenset({"A@X.COM"}), "deals.csv", "email"),
                      pd.Series(["a@x.com", "b@x.com"]), "1 keys match when upper and lower"),
             "none": (WonKeys(frozenset({"Z9"}), "deals.csv", "id"), ids,
                      "check label.won_in.on names the same key")}
    for name, (won, keys, hint) in cases.items():
        with pytest.raises(UserError) as caught:
            outcome_from_won_in(keys, won, label, "leads.csv")
        assert hint in (caught.value.hint or ""), name
    matched = outcome_from_won_in(ids, WonKeys(frozenset({"3", "7"}), "d", "id"), label, "l")
    assert matched.label.tolist() == [float(i in (3, 7)) for i in range(1, 11)]


def test_verify_export_refuses_leads_without_a_factor_column(tmp_path):
    """``score`` refuses leads lacking a factor column, but ``verify-export`` scored them as
    missing through every export and printed "0 mismatches of 3000", a vacuous pass; the
    drift batch was refused without naming the file. Both now name it."""
    import yaml

    from pipeline.cli.exports import raw_and_features
    from pipeline.config import load_config
    from pipeline.errors import UserError
    from pipeline.model.rules import FactorRules

    leads = tmp_path / "batch.csv"
    pd.DataFrame({"lead_id": ["a", "b"], "tier": ["x", "y"]}).to_csv(leads, index=False)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"root": str(tmp_path), "data": {"leads": str(leads)}}))
    cfg = load_config(config)
    rules = PointsRules(factors=[
        FactorRules("tier", "FIT", "categorical", levels={"x": 5}),
        FactorRules("contact", "FIT", "categorical", levels={"cell": 9})], sdr_threshold=5)
    with pytest.raises(UserError, match=r"batch.csv: lacks columns the points table needs: "
                                        r"\['contact'\]"):
        raw_and_features(cfg, rules, leads, None, None)
    whole = PointsRules(factors=rules.factors[:1], sdr_threshold=5)
    raw, features = raw_and_features(cfg, whole, leads, None, None)
    assert list(features["tier"]) == ["x", "y"] and len(raw) == 2


def test_report_of_a_version_edited_by_hand_says_where_the_report_is(tmp_path, monkeypatch):
    """After ``register-rules`` promoted an edited table, ``make report`` (the champion's)
    failed with "has no report.html artifact ... retrain with this version of lead-scoring":
    such a version never had a training report. The message now says so and names the
    parent's report."""
    from types import SimpleNamespace

    from pipeline.cli import main as cli
    from pipeline.cli.report import report
    from pipeline.errors import UserError
    from pipeline.registry import store

    ref = store.ModelRef("bank", "4", "run4")
    monkeypatch.setattr(cli, "resolve_model", lambda *args: (ref, None))

    def absent(*args):  # noqa: ANN002, ANN202
        raise OSError("Failed to download artifacts from path 'report.html'")

    monkeypatch.setattr(store, "download_artifact", absent)
    tags = {"edited_by_hand": "true", "parent_version": "1"}
    client = SimpleNamespace(get_model_version=lambda name, version: SimpleNamespace(tags=tags))
    monkeypatch.setattr(store, "mlflow_client", lambda: client)
    with pytest.raises(UserError, match="registered from rules edited by hand") as caught:
        report(model="bank/4", config=None, output=tmp_path / "r.html", screenshot=None,
               tracking_uri=None)
    assert "lead-scoring report --model bank/1" in caught.value.hint
    tags.clear()  # a trained version without the artifact: the old message
    with pytest.raises(UserError, match="has no report.html artifact"):
        report(model="bank/4", config=None, output=tmp_path / "r.html", screenshot=None,
               tracking_uri=None)
    assert not (tmp_path / "r.html").exists()
