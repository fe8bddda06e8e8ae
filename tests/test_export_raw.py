"""Exports that take raw CRM leads (issue 23): the SQL (DuckDB) and Python exports compute the
derived signals from the raw e-mail / name / title columns exactly as
:mod:`pipeline.inputs.signals` does, every export refuses leads it cannot score right, the
HubSpot body follows the Lead Scoring API's names with a score limit, and the reference
simulator scores an exported rule set as HubSpot would, lead by lead like ``lead-scoring
score``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import exports as ex
from pipeline.errors import UserError
from pipeline.exports import signals_sql as S
from pipeline.exports import simulator as sim
from pipeline.exports import verify as vf
from pipeline.inputs import signals as sig
from pipeline.inputs.features import FeatureSettings, derive_signals, scoring_features
from pipeline.inputs.reader import read_table
from pipeline.inputs.text_cleaning import clean_text
from pipeline.model.rules import DerivedSignals, FactorRules, PointsRules
from pipeline.scoring.frame import score_frame

DERIVED = DerivedSignals(email_column="email", name_columns=["first_name", "last_name"],
                         title_column="job_title", extra_free_domains=["corp.example"])
# the hard cases of each detector, beside the demo's own values
EMAILS = ["a@b.co", "x@mail.gmail.com", "bad", "a@b.c1", " A@GMAIL.COM ", "a b@c.de",
          "x@mailinator.com", "x@sub.mailinator.com", "a@@b.com", "a@b..com", "a@b.çom",
          "boss@corp.example", "NA", "", None]
NAMES = ["John", "Doe", "asdfg", "Wertz", "reza", "qwer", "Na", "NA", "bar2", "Bar", "test 123",
         "李", "x", "aaaa", "mmm", "Müller", "van der Berg", "n/a", "Dr. Who", "Éric", "ASDF",
         "hjkl", "lkjh", "Test", "Max", "Mustermann", "  ", "O'Brien", "4444", "ssss", None]
TITLES = ["Geschäftsführer", "Assistant to the CEO", "Teamleiter Vertrieb", "Vertriebsleiter",
          "Product Owner", "VP Sales", "Head of IT", "Lead Generation Specialist",
          "Werkstudentin", "Student Services Manager", "", "CTO", "Projektleiterin",
          "Abteilungsleiterin", "Directrice Générale", "Trainee Manager", None]


def _signal_rules(**overrides) -> PointsRules:
    """A points table that reads the three derived signals, a raw factor and an event
    feature, with the spam gate on."""
    base = dict(
        factors=[
            FactorRules("email_domain_type", "FIT", "categorical",
                        levels={"business": 12, "freemail": -4, "disposable": -20,
                                "invalid": -9, "missing": -6}, missing_points=0,
                        unseen_points=0),
            FactorRules("seniority", "FIT", "categorical",
                        levels={"c_level": 15, "vp": 10, "director": 7, "manager": 3,
                                "student": -8, "missing": -2}, missing_points=0,
                        unseen_points=0),
            FactorRules("name_spam", "FIT", "categorical", levels={"yes": -15, "no": 2},
                        missing_points=0, unseen_points=0),
            FactorRules("lead_source", "FIT", "categorical", levels={"Webinar": 6, "Ads": -3},
                        missing_points=-1, unseen_points=1),
            FactorRules("decayed_product", "PAIN", "numeric", edges=[0.5, 2.0],
                        bin_points=[0, 9, 21], missing_points=-3),
        ],
        missing_values=["NA"], id_column="lead_id", sdr_threshold=20, prob_intercept=-3.0,
        prob_slope=0.08, derived=DERIVED, spam_gate=True,
        decay_half_life_days={"product": 7.0}, data_hash="d4t4", model_name="raw")
    return PointsRules(**{**base, **overrides})


def _raw_leads(n: int = 60) -> pd.DataFrame:
    """Raw CRM-like leads: every hard case of every detector, as text."""
    def pad(values):
        return [values[i % len(values)] for i in range(n)]
    return pd.DataFrame({
        "lead_id": [f"L{i:03d}" for i in range(n)],
        "email": pad(EMAILS), "first_name": pad(NAMES), "last_name": pad(NAMES[::-1]),
        "job_title": pad(TITLES), "lead_source": pad(["Webinar", "Ads", "NA", "Other", None]),
        "decayed_product": pad([0.0, 0.7, 3.5, None, 2.0]),
    })


def _reference_features(rules: PointsRules, raw: pd.DataFrame) -> pd.DataFrame:
    """What ``lead-scoring score`` scores: raw leads cleaned, derived signals added."""
    settings = FeatureSettings(id_column="lead_id", derived=rules.derived)
    return scoring_features(raw, rules, settings)


def _duckdb_signals(frame: pd.DataFrame, rules: PointsRules) -> pd.DataFrame:
    cleaned = {c: S.clean_text(c, rules, "duckdb")
               for c in ("email", "first_name", "last_name", "job_title")}
    domain = S.email_domain_sql(cleaned["email"], "duckdb")
    sql = (f"WITH {S.domain_table_sql(rules.derived, 'duckdb')} SELECT rid, "
           f"{S.email_type_sql(cleaned['email'], 'dom')} AS email_domain_type, "
           f"{S.name_spam_sql(cleaned['first_name'], cleaned['last_name'], 'duckdb')} AS "
           f"name_spam, {S.seniority_sql(cleaned['job_title'], 'duckdb')} AS seniority "
           f"FROM (SELECT *, {domain} AS dom FROM leads) AS parsed ORDER BY rid")
    with duckdb.connect() as con:
        con.register("leads", frame.assign(rid=range(len(frame))))
        return con.execute(sql).df().drop(columns="rid")


def _python_signals(frame: pd.DataFrame, rules: PointsRules) -> pd.DataFrame:
    derive = vf.load_python_export(ex.export_python(rules))["derive"]
    rows = [derive({**lead, "decayed_product": 0.0}) for lead in frame.to_dict("records")]
    return pd.DataFrame(rows)[list(S.DERIVED_SIGNALS)]


def _expected_signals(frame: pd.DataFrame, rules: PointsRules) -> pd.DataFrame:
    cleaned = clean_text(frame, rules.missing_values)
    return derive_signals(cleaned, rules.derived)[list(S.DERIVED_SIGNALS)]


# ------------------------------------------------------------------ derived signals in SQL / Python


def test_duckdb_and_python_signals_equal_the_pipelines_on_the_hard_cases():
    rules = _signal_rules()
    frame = _raw_leads(120)[["email", "first_name", "last_name", "job_title"]]
    expected = _expected_signals(frame, rules).reset_index(drop=True)
    pd.testing.assert_frame_equal(_duckdb_signals(frame, rules), expected, check_dtype=False)
    pd.testing.assert_frame_equal(_python_signals(frame, rules), expected, check_dtype=False)
    assert set(expected["email_domain_type"]) == set(sig.EMAIL_DOMAIN_TYPES)
    assert set(expected["name_spam"]) == {"yes", "no"}


def test_duckdb_signals_equal_the_pipelines_on_the_demo_leads(demo_dir: Path):
    rules = _signal_rules()
    frame = pd.read_csv(demo_dir / "leads.csv", dtype=str, keep_default_na=False)
    frame = frame[["email", "first_name", "last_name", "job_title"]]
    expected = _expected_signals(frame, rules).reset_index(drop=True)
    pd.testing.assert_frame_equal(_duckdb_signals(frame, rules), expected, check_dtype=False)


_LATIN = st.text(alphabet=st.sampled_from(list("aAbBeEiIlLnNoOqQrRsStTwWzZäöüÜéÉß0123 .-@'_/")),
                 max_size=14)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(_LATIN, _LATIN, _LATIN, _LATIN), min_size=1, max_size=40))
def test_duckdb_signals_equal_the_pipelines_on_random_latin_text(rows):
    """Any text over Latin letters, digits, spaces and punctuation (the alphabet where SQL
    follows Python exactly). ``ß`` only in job titles: Python upper-cases it to "SS" where SQL
    keeps it, so a name like "Sß" differs in the capital-letter spam rule (the README's known
    limit of the SQL signals)."""
    rules = _signal_rules()
    frame = pd.DataFrame(rows, columns=["email", "first_name", "last_name", "job_title"])
    frame = frame.assign(email=frame["email"].str.replace("ß", "s") + "@x" + frame["job_title"]
                         .str[:3] + ".com",
                         first_name=frame["first_name"].str.replace("ß", "s"),
                         last_name=frame["last_name"].str.replace("ß", "s"))
    expected = _expected_signals(frame, rules).reset_index(drop=True)
    got = _duckdb_signals(frame, rules)
    for column in ("email_domain_type", "name_spam"):
        assert got[column].tolist() == expected[column].tolist(), column
    plain = ~frame["job_title"].str.contains("ß")  # casefold("ß") = "ss"; SQL lower keeps ß
    assert got["seniority"][plain].tolist() == expected["seniority"][plain].tolist()


# ------------------------------------------------------------------ raw leads through the exports


@pytest.mark.parametrize("spam_gate", [True, False])
def test_every_export_scores_raw_leads_like_lead_scoring_score(spam_gate):
    """SQL and Python get the raw leads (signals computed inside), PMML gets them with the
    signals added; all three agree with the reference on every lead, spam gate on or off."""
    rules = _signal_rules(spam_gate=spam_gate)
    raw = _raw_leads()
    reference = _reference_features(rules, raw)
    with_signals = raw.assign(**{c: reference[c] for c in S.DERIVED_SIGNALS})
    results = vf.verify_exports(rules, raw, reference=reference, inputs={"pmml": with_signals})
    assert [r.format for r in results] == ["sql", "pmml", "python"]
    for result in results:
        assert result.ok, (result.format, result.examples)
    scored = score_frame(rules, reference)
    assert (vf.score_reference(rules, reference)["points"].to_numpy()
            == scored["points"].to_numpy()).all()
    if spam_gate:
        assert (reference["name_spam"].eq("yes") & scored["sdr_ready"]).sum() == 0


def test_raw_duckdb_sql_does_not_need_the_derived_columns():
    rules = _signal_rules()
    sql = ex.export_sql(rules)
    assert sql.startswith("-- email_domain_type, name_spam, seniority: computed here")
    with duckdb.connect() as con:
        con.register("leads", _raw_leads())
        rows = con.execute(sql).fetchall()
    assert len(rows) == 60
    assert '"email"' not in ex.export_sql(rules, dialect="postgres")  # reads the columns


def test_a_raw_file_missing_a_needed_column_is_refused_with_its_name():
    rules = _signal_rules()
    raw = _raw_leads().drop(columns=["email"])
    for fmt in ("sql", "python"):
        with pytest.raises(UserError, match="'email_domain_type' nor the raw column") as info:
            vf.verify_exports(rules, raw, formats=(fmt,))
        assert "'email'" in str(info.value)
    with pytest.raises(UserError, match="pmml: the leads lack 'email_domain_type'"):
        vf.verify_exports(rules, _raw_leads(), formats=("pmml",))
    score = vf.load_python_export(ex.export_python(rules))["score"]
    with pytest.raises(ValueError, match=r"neither 'email_domain_type' nor .*\['email'\]"):
        score(raw.iloc[0].to_dict())


def test_event_features_absent_from_raw_leads_are_refused_naming_them_and_the_way_to_make_them():
    rules = _signal_rules()
    raw = _raw_leads().drop(columns=["decayed_product"])
    with pytest.raises(UserError, match=r"event features \['decayed_product'\]") as info:
        vf.verify_exports(rules, raw, formats=("sql",))
    assert "lead-scoring features" in info.value.hint
    score = vf.load_python_export(ex.export_python(rules))["score"]
    with pytest.raises(ValueError, match="decayed_product.*lead-scoring features"):
        score(raw.iloc[0].to_dict())


def test_the_python_export_script_refuses_a_csv_without_the_raw_columns(tmp_path):
    import subprocess
    import sys

    rules = _signal_rules()
    script = tmp_path / "score_leads.py"
    script.write_text(ex.export_python(rules), encoding="utf-8")
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    _raw_leads().to_csv(good, index=False)
    _raw_leads().drop(columns=["job_title"]).to_csv(bad, index=False)
    ok = subprocess.run([sys.executable, str(script), str(good)], capture_output=True, text=True)
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 61
    refused = subprocess.run([sys.executable, str(script), str(bad)], capture_output=True,
                             text=True)
    assert refused.returncode == 2
    assert "line 2" in refused.stderr and "'seniority'" in refused.stderr


# ------------------------------------------------------------------ HubSpot body and simulator


def test_hubspot_body_uses_the_api_names_a_default_limit_and_the_data_hash():
    rules = _signal_rules()
    body = json.loads(ex.export_hubspot(rules))
    assert body["maxScore"] == 56  # the highest total the factors can give, below 100
    assert "scoreLimits" not in body and body["lead_scoring"]["data_hash"] == "d4t4"
    wide = replace(rules, factors=[replace(f, levels={k: v * 10 for k, v in f.levels.items()})
                                   if f.kind == "categorical" else f for f in rules.factors])
    assert json.loads(ex.export_hubspot(wide))["maxScore"] == 100
    assert json.loads(ex.export_hubspot(wide, max_score=None))["maxScore"] == 371
    assert json.loads(ex.export_hubspot(replace(wide, score_max=80)))["maxScore"] == 80


@pytest.mark.parametrize("max_score", [None, 30, 100])
def test_simulator_scores_raw_leads_like_lead_scoring_score(max_score):
    rules = _signal_rules()
    raw = _raw_leads(200)
    properties = _reference_features(rules, raw)
    body = json.loads(ex.export_hubspot(rules, max_score=max_score))
    simulated = sim.simulate_hubspot(body, properties)
    scored = score_frame(rules, properties)
    assert sim.simulated_mismatches(simulated, scored, max_score=body["maxScore"]) == 0
    if max_score == 30:
        assert (scored["points"] > 30).any() and simulated["points"].max() == 30


def test_simulator_filters_follow_hubspot_semantics():
    assert sim.filter_matches({"operator": "NOT_HAS_PROPERTY"}, "  ")
    assert not sim.filter_matches({"operator": "NOT_IN", "values": ["a"]}, None)
    assert sim.filter_matches({"operator": "EQ", "value": "999"}, 999.0)
    assert not sim.filter_matches({"operator": "GT", "value": "3"}, "lots")
    assert sim.filter_matches({"operator": "LTE", "value": "3"}, " 3 ")


def test_simulator_refuses_event_criteria_without_a_handler_and_uses_one_given():
    body = {"maxScore": 100, "lead_scoring": {"sdr_threshold": 5},
            "groupConfigs": [{"groupCategory": "ENGAGEMENT", "ruleConfigurations": [
                {"name": "trial", "configuration": {"calculation": {"value": 7}},
                 "filters": [{"eventType": "trial_signup", "withinDays": 30}]}]}]}
    leads = pd.DataFrame({"lead_id": ["a", "b"]}, index=["a", "b"])
    with pytest.raises(ValueError, match="event criterion"):
        sim.simulate_hubspot(body, leads)
    events = {"a": pd.DataFrame({"event": ["trial_signup"]})}
    out = sim.simulate_hubspot(body, leads, events=events,
                               event_criteria=lambda ev, crit, as_of: bool(
                                   (ev.get("event", pd.Series(dtype=str)) == crit["eventType"])
                                   .any()))
    assert out["points"].tolist() == [7, 0] and out["sdr_ready"].tolist() == [True, False]


def test_simulator_on_the_demo_leads_as_of_two_dates(demo_dir: Path):
    """Raw demo leads and raw events as of two dates: every lead as ``lead-scoring score``."""
    from pipeline.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml",
                      data=demo_dir / "leads.csv")
    rules = _signal_rules(decay_half_life_days={"product": 10.0})
    raw = read_table(demo_dir / "leads.csv").frame
    body = json.loads(ex.export_hubspot(rules))
    for as_of in (pd.Timestamp("2025-06-01"), None):
        properties = sim.crm_properties(raw, rules, FeatureSettings.from_config(cfg),
                                        events=demo_dir / "events.csv", as_of=as_of)
        simulated = sim.simulate_hubspot(body, properties)
        scored = score_frame(rules, properties)
        assert sim.simulated_mismatches(simulated, scored, max_score=body["maxScore"]) == 0
        assert simulated["sdr_ready"].any() and not simulated["sdr_ready"].all()


def test_the_pmml_refuses_a_lead_without_its_derived_signals():
    """The Scorecard returns invalid for a lead whose derived signal is absent, instead of
    scoring it as missing; with the signals it scores every lead like the reference."""
    import xml.etree.ElementTree as ET

    rules = _signal_rules()
    root = ET.fromstring(ex.export_pmml(rules))
    treatment = {f.get("name"): f.get("missingValueTreatment")
                 for f in root.iter(f"{{{ex.PMML_NAMESPACE}}}MiningField")}
    assert treatment["email_domain_type"] == treatment["seniority"] == "returnInvalid"
    assert treatment["lead_source"] == "asIs"
    raw = _raw_leads(10)
    reference = _reference_features(rules, raw)
    blind = raw.assign(**{c: reference[c] for c in S.DERIVED_SIGNALS}).assign(seniority=None)
    with pytest.raises(RuntimeError, match="JPMML failed on 10 leads"):
        vf.score_pmml(rules, blind)


def test_spark_sql_scores_raw_leads_like_lead_scoring_score(spark):
    """The Spark SQL computes the derived signals (Java regex, an accent table for NFKD) and
    scores the raw hard cases like the reference."""
    rules = _signal_rules()
    raw = _raw_leads(120)
    reference = _reference_features(rules, raw)
    columns = vf.sql_input_columns(rules, raw)
    kinds = {"bigint": "BIGINT", "double": "DOUBLE", "text": "STRING"}
    schema = ", ".join(f"`{name}` {kinds[kind]}" for name, (kind, _) in columns.items())
    rows = list(zip(*[values for _, values in columns.values()], strict=True))
    spark.createDataFrame(rows, schema=schema).createOrReplaceTempView("leads")
    got = spark.sql(ex.export_sql(rules, dialect="spark")).collect()
    result = vf.compare_scores(vf.score_reference(rules, reference),
                               vf.sql_rows_to_frame([tuple(r) for r in got], raw.index),
                               fmt="spark")
    assert result.ok, result.examples
