"""Unit tests of every export format on one small hand-made points table with known answers."""

from __future__ import annotations

import ast
import csv
import io
import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import duckdb
import jsonschema
import pandas as pd
import pytest

from pipeline import exports as ex
from pipeline.exports import verify as vf
from pipeline.model.reference import score_record
from pipeline.model.rules import DerivedSignals, FactorRules, PointsRules

INJECTION = "x'; DROP TABLE leads; --"


def make_rules(**overrides) -> PointsRules:
    """One categorical FIT factor, one numeric PAIN factor, a missing token and a cap."""
    base = dict(
        factors=[
            FactorRules(
                "lead_source",
                "FIT",
                "categorical",
                levels={"Lead Add Form": 20, "Web": 5, INJECTION: -5},
                missing_points=-2,
                unseen_points=1,
            ),
            FactorRules(
                "visits", "PAIN", "numeric", edges=[3.0, 7.0], bin_points=[0, 10, 25],
                missing_points=-1,
            ),
        ],
        missing_values=["NA"],
        sdr_threshold=30,
        prob_intercept=-3.0,
        prob_slope=0.1,
        score_min=0,
        score_max=40,
        model_name="demo",
        model_version="3",
        data_hash="abc123",
    )
    base.update(overrides)
    return PointsRules(**base)


# lead_source, visits -> fit, pain, points (hand-computed; cap [0, 40], threshold 30)
CASES = [
    ("Lead Add Form", 3.0, 20, 0, 20),  # visits exactly on the first edge: bin 0
    ("NA", 7.0, -2, 10, 8),  # missing token; exactly on the second edge: bin 1
    (None, math.nan, -2, -1, 0),  # both missing; -3 clipped to 0
    ("Other", 7.5, 1, 25, 26),  # unseen level
    ("Web", 100.0, 5, 25, 30),  # SDR-ready exactly at the threshold
    ("Lead Add Form", 1000.0, 20, 25, 40),  # 45 capped to 40
    ("", math.nan, -2, -1, 0),  # empty string is missing
    (INJECTION, 3.0000001, -5, 10, 5),  # the injection string is just a level
]


def leads_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_source": pd.Series([c[0] for c in CASES], dtype=object),
            "visits": pd.Series([c[1] for c in CASES], dtype="float64"),
        }
    )


def expected_frame() -> pd.DataFrame:
    rules = make_rules()
    points = [c[4] for c in CASES]
    return pd.DataFrame(
        {
            "points": points,
            "fit": [c[2] for c in CASES],
            "pain": [c[3] for c in CASES],
            "probability": [1 / (1 + math.exp(-(-3.0 + 0.1 * p))) for p in points],
            "sdr_ready": [p >= rules.sdr_threshold for p in points],
        }
    )


def test_reference_matches_hand_computed_answers():
    got = vf.score_reference(make_rules(), leads_frame())
    pd.testing.assert_frame_equal(got, expected_frame(), check_dtype=False)


# ------------------------------------------------------------------------------ shared rows


def test_factor_rules_conditions_read_like_the_brief():
    rules = make_rules()
    table = ex.rules_table(rules)
    assert table["condition"].tolist() == [
        '= "Lead Add Form"',
        '= "Web"',
        f'= "{INJECTION}"',
        "is missing",
        "is any other value",
        "<= 3",
        "> 3 and <= 7",
        "> 7",
        "is missing",
    ]
    assert table["points"].tolist() == [20, 5, -5, -2, 1, 0, 10, 25, -1]


@pytest.mark.parametrize(
    ("x", "text"),
    [(3.0, "3"), (-2.0, "-2"), (0.1, "0.1"), (1 / 3, "0.3333333333333333"), (1e-05, "1e-05"),
     (1e20, "1e+20"), (0.30000000000000004, "0.30000000000000004")],
)
def test_format_number_is_short_and_exact(x, text):
    assert ex.format_number(x) == text
    assert float(ex.format_number(x)) == x


# ------------------------------------------------------------------------------ json


def test_json_validates_against_the_shipped_schema_and_round_trips():
    schema = ex.points_table_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    text = ex.export_json(make_rules())
    doc = json.loads(text)
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert PointsRules.from_json(text) == make_rules()
    assert doc["schema_version"] == "1.2"
    assert doc["spam_gate"] is False and doc["derived"]["name_columns"] == []


def test_json_of_schema_1_0_loads_with_the_new_keys_at_their_defaults():
    """A points table written before the contract held the spam gate and the derived-signal
    settings loads unchanged: no gate, no derivation recorded; it still validates."""
    doc = _doc()
    for key in ("spam_gate", "derived"):
        doc.pop(key)
    doc["schema_version"] = "1.0"
    jsonschema.Draft202012Validator(ex.points_table_schema()).validate(doc)
    rules = PointsRules.from_dict(doc)
    assert rules.spam_gate is False and rules.derived == DerivedSignals()
    assert rules.schema_version == "1.0" and rules.factors == make_rules().factors


def test_json_round_trips_the_spam_gate_and_derived_settings():
    rules = gated_rules()
    doc = json.loads(ex.export_json(rules))
    jsonschema.Draft202012Validator(ex.points_table_schema()).validate(doc)
    assert doc["spam_gate"] is True
    assert doc["derived"]["name_columns"] == ["first_name", "last_name"]
    assert PointsRules.from_json(ex.export_json(rules)) == rules


def _doc() -> dict:
    return json.loads(ex.export_json(make_rules()))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("factors"), "'factors' is a required property"),
        (lambda d: d.update(schema_version="2.0"), "does not match"),
        (lambda d: d.update(surprise=1), "Additional properties"),
        (lambda d: d["factors"][0].update(group="BOTH"), "is not one of"),
        (lambda d: d["factors"][0]["levels"].update(Web="5"), "is not of type 'integer'"),
        (lambda d: d["factors"][1].update(bin_points=[]), "should be non-empty"),
        (lambda d: d.update(score_max=1.5), "is not of type 'integer', 'null'"),
    ],
)
def test_schema_rejects_broken_documents(mutate, message):
    doc = _doc()
    mutate(doc)
    validator = jsonschema.Draft202012Validator(ex.points_table_schema())
    errors = [e.message for e in validator.iter_errors(doc)]
    assert any(message in e for e in errors), errors


def test_json_refuses_non_finite_numbers():
    rules = make_rules(prob_slope=math.inf)
    with pytest.raises(ValueError, match="prob_slope must be a finite number, got inf"):
        ex.export_json(rules)


# ------------------------------------------------------------------------------ csv


def test_csv_rows():
    rows = list(csv.reader(io.StringIO(ex.export_csv(make_rules()))))
    assert rows[0] == ["factor", "group", "condition", "points"]
    assert rows[1:] == [
        ["lead_source", "FIT", '= "Lead Add Form"', "20"],
        ["lead_source", "FIT", '= "Web"', "5"],
        ["lead_source", "FIT", f'= "{INJECTION}"', "-5"],
        ["lead_source", "FIT", "is missing", "-2"],
        ["lead_source", "FIT", "is any other value", "1"],
        ["visits", "PAIN", "<= 3", "0"],
        ["visits", "PAIN", "> 3 and <= 7", "10"],
        ["visits", "PAIN", "> 7", "25"],
        ["visits", "PAIN", "is missing", "-1"],
    ]


def test_csv_quotes_commas_quotes_and_newlines():
    level = 'a, "b"\nc'
    factor = FactorRules("f,1", "FIT", "categorical", levels={level: 3})
    rows = list(csv.reader(io.StringIO(ex.export_csv(PointsRules(factors=[factor])))))
    assert rows[1] == ["f,1", "FIT", '= "a, \\"b\\"\\nc"', "3"]
    assert json.loads(rows[1][2][2:]) == level  # the condition quotes the level as JSON


# ------------------------------------------------------------------------------ sql


def test_sql_duckdb_scores_the_hand_made_leads():
    got = vf.score_duckdb_sql(make_rules(), leads_frame())
    pd.testing.assert_frame_equal(got, expected_frame(), check_dtype=False, atol=1e-12)


def test_sql_text_shape_and_determinism():
    rules = make_rules()
    sql = ex.export_sql(rules)
    assert sql == ex.export_sql(make_rules())
    assert sql.startswith('SELECT "lead_id", fit, pain, points,')
    assert "LEAST(GREATEST(fit + pain, 0), 40) AS points" in sql
    assert "points >= 30 AS sdr_ready" in sql
    assert "WHEN CAST(\"lead_source\" AS VARCHAR) = 'x''; DROP TABLE leads; --' THEN -5" in sql
    assert "CAST('3.0' AS DOUBLE)" in sql
    assert sql.count("CASE") == 3 and sql.count("END") == 3
    assert 'FROM "leads"' in sql
    uncapped = ex.export_sql(make_rules(score_min=None, score_max=None))
    assert "GREATEST" not in uncapped and "LEAST" not in uncapped
    assert "fit + pain AS points" in uncapped


def test_sql_injection_level_is_only_a_level():
    df = leads_frame()
    sql = ex.export_sql(make_rules())
    con = duckdb.connect()
    con.execute("CREATE TABLE leads (lead_id BIGINT, lead_source VARCHAR, visits DOUBLE)")
    con.executemany(
        "INSERT INTO leads VALUES (?, ?, ?)",
        [(i, s, v) for i, (s, v) in enumerate(zip(df["lead_source"], df["visits"], strict=True))],
    )
    rows = {r[0]: r for r in con.execute(sql).fetchall()}
    assert rows[7][1] == -5  # fit of the lead whose source is the injection string
    assert con.execute("SELECT count(*) FROM leads").fetchone() == (len(df),)  # table still there


@pytest.mark.parametrize(
    ("dialect", "value", "literal"),
    [
        ("duckdb", "it's", "'it''s'"),
        ("duckdb", "a\\b", "'a\\b'"),
        ("postgres", "it's", "'it''s'"),
        ("postgres", "a\\'b", "E'a\\\\''b'"),
        ("spark", "it's", "'it\\'s'"),
        ("spark", "a\\b", "'a\\\\b'"),
        ("spark", "%_--/*", "'%_--/*'"),
    ],
)
def test_sql_string_literals(dialect, value, literal):
    assert ex.sql_string(value, dialect=dialect) == literal


@pytest.mark.parametrize(
    ("dialect", "name", "quoted"),
    [
        ("duckdb", 'a"b', '"a""b"'),
        ("postgres", "lead source", '"lead source"'),
        ("spark", "a`b", "`a``b`"),
    ],
)
def test_sql_identifiers(dialect, name, quoted):
    assert ex.sql_identifier(name, dialect=dialect) == quoted


def test_sql_table_parameter_and_dialect_types():
    sql = ex.export_sql(make_rules(), dialect="postgres", table="crm.leads")
    assert 'FROM "crm"."leads"' in sql
    assert "CAST(\"visits\" AS DOUBLE PRECISION)" in sql and "AS TEXT)" in sql
    spark = ex.export_sql(make_rules(), dialect="spark", table="leads_v")
    assert "FROM `leads_v`" in spark and "AS STRING)" in spark
    assert "'x\\'; DROP TABLE leads; --'" in spark


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dialect": "oracle"}, "dialect must be one of .* got 'oracle'"),
        ({"table": "a..b"}, "table must be a non-empty"),
    ],
)
def test_sql_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ex.export_sql(make_rules(), **kwargs)


def test_sql_refuses_nul_and_case_clashes():
    nul = PointsRules(factors=[FactorRules("f", "FIT", "categorical", levels={"a\x00b": 1})])
    with pytest.raises(ValueError, match="NUL characters"):
        ex.export_sql(nul)
    clash = PointsRules(
        factors=[
            FactorRules("Visits", "PAIN", "numeric", edges=[1.0], bin_points=[0, 1]),
            FactorRules("visits", "PAIN", "numeric", edges=[1.0], bin_points=[0, 1]),
        ]
    )
    with pytest.raises(ValueError, match="differ only in case: duckdb"):
        ex.export_sql(clash)
    assert "Visits" in ex.export_sql(clash, dialect="postgres")
    with pytest.raises(ValueError, match="id_column 'points' clashes"):
        ex.export_sql(make_rules(id_column="points"))


def test_sql_edges_round_trip_exactly():
    edges = [1e-05, 0.1, 0.30000000000000004, 1 / 3, 1e15 + 0.5]
    factor = FactorRules("x", "PAIN", "numeric", edges=edges, bin_points=[0, 1, 2, 3, 4, 5])
    rules = PointsRules(factors=[factor])
    values = []
    for e in edges:  # each edge, and the doubles just below and above it
        values += [math.nextafter(e, -math.inf), e, math.nextafter(e, math.inf)]
    df = pd.DataFrame({"x": values})
    for result in vf.verify_exports(rules, df, formats=("sql", "python")):
        assert result.ok, result.examples
    # on the edge itself the lower bin wins (right-closed)
    got = vf.score_duckdb_sql(rules, df)["points"].tolist()
    assert got == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5]


# ------------------------------------------------------------------------------ pmml


def _pmml_tree(rules: PointsRules) -> ET.Element:
    return ET.fromstring(ex.export_pmml(rules).encode("utf-8"))


NS = {"p": ex.PMML_NAMESPACE}


def test_pmml_structure():
    root = _pmml_tree(make_rules())
    assert root.get("version") == "4.4"
    fields = {f.get("name"): f for f in root.iterfind("p:DataDictionary/p:DataField", NS)}
    assert fields["lead_source"].get("dataType") == "string"
    assert fields["visits"].get("dataType") == "double"
    missing = [v.get("value") for v in fields["visits"].iterfind("p:Value", NS)]
    assert missing == ["", "NA", "NaN"]
    card = root.find("p:Scorecard", NS)
    assert card.get("useReasonCodes") == "true"
    assert card.get("reasonCodeAlgorithm") == "pointsBelow"
    assert card.get("baselineMethod") == "other" and card.get("initialScore") == "0"
    treatments = {
        m.get("name"): m.get("missingValueTreatment")
        for m in card.iterfind("p:MiningSchema/p:MiningField", NS)
    }
    assert treatments == {"lead_score": None, "lead_source": "asIs", "visits": "asIs"}
    source, visits = card.iterfind("p:Characteristics/p:Characteristic", NS)
    assert source.get("baselineScore") == "20" and visits.get("baselineScore") == "25"
    first, *_, last = list(source)
    assert first.find("p:SimplePredicate", NS).get("operator") == "isMissing"
    assert last.find("p:True", NS) is not None and last.get("partialScore") == "1"
    levels = [a.find("p:SimplePredicate", NS) for a in list(source)[1:-1]]
    assert [(p.get("operator"), p.get("value")) for p in levels] == [
        ("equal", "Lead Add Form"), ("equal", "Web"), ("equal", INJECTION)
    ]
    middle = list(visits)[2].find("p:CompoundPredicate", NS)
    assert middle.get("booleanOperator") == "and"
    assert [(p.get("operator"), p.get("value")) for p in middle] == [
        ("greaterThan", "3.0"), ("lessOrEqual", "7.0")
    ]
    outputs = [o.get("name") for o in card.iterfind("p:Output/p:OutputField", NS)]
    assert outputs == ["points_uncapped", "points", "probability", "sdr_ready", "reason_1",
                       "reason_2"]


def test_pmml_evaluates_the_hand_made_leads():
    got = vf.score_pmml(make_rules(), leads_frame())
    want = expected_frame()[["points", "probability", "sdr_ready"]]
    pd.testing.assert_frame_equal(got, want, check_dtype=False, atol=1e-12)


def test_pmml_reason_codes_name_the_lost_points():
    evaluator = vf.pmml_evaluator(make_rules())
    result = evaluator.evaluate({"lead_source": "Web", "visits": 1.0})
    # Web loses 20 - 5 = 15 points, visits <= 3 loses 25 - 0 = 25: visits first
    assert result["reason_1"] == "visits: <= 3"
    assert result["reason_2"] == 'lead_source: = "Web"'
    assert result["points"] == 5


def test_pmml_refuses_text_xml_cannot_hold():
    rules = PointsRules(factors=[FactorRules("f", "FIT", "categorical", levels={"bell\x07": 1})])
    with pytest.raises(ValueError, match="level 'bell\\\\x07': character U\\+0007"):
        ex.export_pmml(rules)
    with pytest.raises(ValueError, match="reason_code_algorithm must be"):
        ex.export_pmml(make_rules(), reason_code_algorithm="pointsSideways")


def test_pmml_output_names_avoid_factor_names():
    rules = make_rules(
        factors=[FactorRules("points", "FIT", "categorical", levels={"a": 1})],
        score_min=None,
        score_max=None,
    )
    names = ex.pmml_output_names(rules)
    assert names["points"] == "points_"
    got = vf.score_pmml(rules, pd.DataFrame({"points": ["a", "b", None]}))
    assert got["points"].tolist() == [1, 0, 0]


# ------------------------------------------------------------------------------ python


def test_python_export_matches_score_record_exactly():
    rules = make_rules()
    namespace = vf.load_python_export(ex.export_python(rules))
    for lead in vf.lead_records(rules, leads_frame()) + [{}, {"visits": "7"}, {"lead_source": 1.0}]:
        assert namespace["score"](lead) == score_record(rules, lead)


def test_python_export_imports_only_the_standard_library():
    tree = ast.parse(ex.export_python(make_rules()))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
    assert imported >= {"math"}


def test_python_export_runs_the_reference_definition_of_missing():
    """One definition: the export's ``is_missing`` and ``_canonical_str`` are the text of the
    reference scorer's ``is_missing`` and ``canonical_str`` (so an edit there reaches the
    export), and behave the same standalone."""
    import inspect

    from pipeline.model.reference import canonical_str, is_missing

    text = ex.export_python(make_rules())
    assert inspect.getsource(is_missing) in text
    assert inspect.getsource(canonical_str).replace("def canonical_str(", "def _canonical_str(") \
        in text
    assert text.count("def is_missing(") == 1 and text.count("def _canonical_str(") == 1
    namespace = vf.load_python_export(text)
    for value in [None, math.nan, "", "NA", "x", 0, 1.0, 2.5, True, "n/a"]:
        assert namespace["is_missing"](value, ["NA"]) == is_missing(value, ["NA"])
        if not is_missing(value, ["NA"]):
            assert namespace["_canonical_str"](value) == canonical_str(value)


def test_python_export_runs_as_a_script_without_site_packages(tmp_path):
    script = tmp_path / "score_leads.py"
    script.write_text(ex.export_python(make_rules()), encoding="utf-8")
    leads = tmp_path / "leads.csv"
    with leads.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["lead_id", "lead_source", "visits"])
        for i, (source, visits, *_) in enumerate(CASES):
            writer.writerow([f"L{i}", source or "", "" if math.isnan(visits) else repr(visits)])
    # -I -S: isolated, no site-packages: only the standard library can be imported
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(script), str(leads)],
        capture_output=True, text=True, check=True, timeout=60,
    )
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["lead_id"] for r in rows] == [f"L{i}" for i in range(len(CASES))]
    assert [int(r["points"]) for r in rows] == [c[4] for c in CASES]
    assert [int(r["fit"]) for r in rows] == [c[2] for c in CASES]


# ------------------------------------------------------------------------------ rule sheets


def _hubspot_matches(flt: dict, value) -> bool:
    """HubSpot filter semantics as documented: unknown = no value."""
    known = not (value is None or value == "" or (isinstance(value, float) and math.isnan(value)))
    op = flt["operator"]
    if op == "HAS_PROPERTY":
        return known
    if op == "NOT_HAS_PROPERTY":
        return not known
    if not known:
        return False
    if op in ("EQ", "NEQ"):
        equal = value == flt["value"] or (
            not isinstance(value, str) and float(value) == float(flt["value"]))
        return equal if op == "EQ" else not equal
    if op == "IN":
        return value in flt["values"]
    if op == "NOT_IN":
        return value not in flt["values"]
    x, bound = float(value), float(flt["value"])
    return {"GT": x > bound, "LTE": x <= bound}[op]


def test_hubspot_body_adds_up_to_fit_and_pain():
    rules = make_rules()
    body = json.loads(ex.export_hubspot(rules))
    assert body["maxScore"] == 40 and "scoreLimits" not in body  # the table's cap
    assert [g["groupCategory"] for g in body["groupConfigs"]] == ["FIT", "ENGAGEMENT"]
    fit_group, pain_group = body["groupConfigs"]
    assert (fit_group["minValue"], fit_group["maxValue"]) == (0, 20)  # -5..20 clipped to cap
    for rule in fit_group["ruleConfigurations"] + pain_group["ruleConfigurations"]:
        assert rule["configuration"]["calculation"]["type"] == "CONSTANT"
        assert rule["configuration"]["calculation"]["value"] != 0  # zero-point rules left out
    for source, visits, fit, pain, _ in CASES:
        lead = {"lead_source": source, "visits": visits}
        # HubSpot adds every rule whose filters all match (AND within a rule)
        sums = [
            sum(
                r["configuration"]["calculation"]["value"]
                for r in g["ruleConfigurations"]
                if all(_hubspot_matches(f, lead[f["property"]]) for f in r["filters"])
            )
            for g in body["groupConfigs"]
        ]
        assert sums == [fit, pain], (source, visits)


def test_hubspot_notes_are_honest_about_manual_steps():
    notes = ex.HUBSPOT_NOTES
    for phrase in ("internal name", "is between", "by hand", "ENGAGEMENT", "score limit",
                   "maxScore", "2026-09-beta"):
        assert phrase.lower() in notes.lower()


def _sheet_rows(text: str) -> list[dict]:
    """The rule rows of a crm-csv sheet (its last line, a ``#`` comment, left out)."""
    lines = text.splitlines()
    assert lines[-1].startswith("# levels not listed score 0")
    return list(csv.DictReader(io.StringIO("\n".join(lines[:-1]) + "\n")))


def _sheet_points(rows: list[dict], lead: dict, tokens: list[str]) -> dict[str, int]:
    """Evaluate the crm-csv sheet the way its operators read (first matching rule per field)."""
    totals: dict[str, int] = {"Fit": 0, "Behavior": 0}
    done: set[str] = set()
    for row in rows:
        field = row["field"]
        value = lead.get(field)
        empty = value is None or value == "" or value in tokens or (
            isinstance(value, float) and math.isnan(value)
        )
        op = row["operator"]
        if op == "is empty":
            hit = empty
        elif empty:
            hit = False
        elif op == "equals":
            hit = value == row["value"] or (
                not isinstance(value, str) and float(value) == float(row["value"]))
        elif op == "is not in":
            hit = value not in json.loads(row["value"]) if row["value"].startswith("[") else (
                value not in row["value"].split("; ")
            )
        elif op == "is any of":
            hit = value in json.loads(row["value"]) if row["value"].startswith("[") else (
                value in row["value"].split("; ")
            )
        elif op == "at most":
            hit = float(value) <= float(row["value"])
        elif op == "greater than":
            hit = float(value) > float(row["value"])
        else:  # between: greater than value, at most value2 (see notes)
            hit = float(row["value"]) < float(value) <= float(row["value2"])
        if hit and field not in done:
            done.add(field)
            totals[row["score_group"]] += int(row["points"])
    return totals


def test_crm_csv_sheet_adds_up_to_fit_and_pain():
    rules = make_rules()
    rows = _sheet_rows(ex.export_crm_csv(rules))
    assert list(rows[0]) == list(ex.CRM_COLUMNS)
    # "visits <= 3" is worth 0: left out (the sheet's last line says levels not listed score 0)
    assert [r["rule_id"] for r in rows] == [f"R{i:03d}" for i in range(1, 9)]
    assert all(int(r["points"]) != 0 for r in rows)
    assert "1 rules worth 0 points are left out" in ex.export_crm_csv(rules)
    assert {r["operator"] for r in rows} == {
        "equals", "is empty", "is not in", "between", "greater than"
    }
    between = next(r for r in rows if r["operator"] == "between")
    assert (between["value"], between["value2"]) == ("3", "7")
    assert "greater than 3 and at most 7" in between["notes"]
    for source, visits, fit, pain, _ in CASES:
        lead = {"lead_source": source, "visits": visits}
        assert _sheet_points(rows, lead, rules.missing_values) == {"Fit": fit, "Behavior": pain}


def test_crm_csv_neutralises_formula_cells():
    rules = PointsRules(
        factors=[FactorRules("src", "FIT", "categorical", levels={"=HYPERLINK(\"x\")": 4})]
    )
    rows = _sheet_rows(ex.export_crm_csv(rules))
    assert rows[0]["value"] == "'=HYPERLINK(\"x\")"
    assert "leading ' was added" in rows[0]["notes"]


# ------------------------------------------------------------------------------ dispatch, files


def test_export_dispatch_covers_every_format():
    rules = make_rules()
    for fmt in ex.FORMATS:
        text = ex.export(rules, fmt)
        assert isinstance(text, str) and text and text == ex.export(rules, fmt)
    assert ex.export(rules, "sql", dialect="spark") == ex.export_sql(rules, dialect="spark")
    with pytest.raises(ValueError, match="fmt must be one of .* got 'xlsx'"):
        ex.export(rules, "xlsx")
    with pytest.raises(ValueError, match="dialect applies to fmt='sql' only"):
        ex.export(rules, "json", dialect="postgres")
    assert set(ex.export_all(rules)) == {
        "points_table.json", "points_table.csv", "score_leads.duckdb.sql", "points_table.pmml",
        "score_leads.py", "hubspot_lead_score.json", "crm_scoring_rules.csv",
    }


def test_write_export_is_atomic_and_stays_inside(tmp_path):
    rules = make_rules()
    path = ex.write_export(rules, "sql", "sub/score.sql", dialect="postgres", within=tmp_path)
    assert path == (tmp_path / "sub" / "score.sql").resolve()
    assert path.read_text(encoding="utf-8") == ex.export_sql(rules, dialect="postgres")
    assert sorted(p.name for p in path.parent.iterdir()) == ["score.sql"]  # no temp file left
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600
    ex.write_export(rules, "json", tmp_path / "rules.json")
    assert PointsRules.from_json((tmp_path / "rules.json").read_text("utf-8")) == rules
    (tmp_path / "rules.json").chmod(0o640)
    ex.write_export(make_rules(sdr_threshold=31), "json", tmp_path / "rules.json")
    assert (tmp_path / "rules.json").stat().st_mode & 0o777 == 0o640
    assert PointsRules.from_json((tmp_path / "rules.json").read_text("utf-8")).sdr_threshold == 31


@pytest.mark.parametrize("name", ["../evil.sql", "a/../../evil.sql", "/etc/evil.sql", "", ".",
                                  "..", "sub/../../x"])
def test_safe_output_path_refuses_escapes(tmp_path, name):
    with pytest.raises(ValueError, match="output name"):
        ex.safe_output_path(tmp_path / "out", name)


def test_safe_output_path_refuses_symlink_escape(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(tmp_path, out / "link")
    with pytest.raises(ValueError, match="escapes the output directory"):
        ex.safe_output_path(out, "link/evil.sql")
    assert ex.safe_output_path(out, "ok.sql") == (out / "ok.sql").resolve()
    assert ex.safe_output_path(out, "sub/x.json") == (out / "sub" / "x.json").resolve()


def test_write_export_keeps_the_old_file_when_rendering_fails(tmp_path):
    target = tmp_path / "rules.json"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(ValueError, match="finite"):
        ex.write_export(make_rules(prob_intercept=math.nan), "json", target)
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in Path(tmp_path).iterdir()] == ["rules.json"]


# ------------------------------------------------------------------------------ diff


def test_diff_rules_lists_every_change():
    old = make_rules()
    new = make_rules(
        factors=[
            FactorRules(
                "lead_source",
                "FIT",
                "categorical",
                levels={"Lead Add Form": 25, "Web": 5, "Partner": 8},
                missing_points=-2,
                unseen_points=1,
            ),
            FactorRules(
                "visits", "PAIN", "numeric", edges=[3.0, 10.0], bin_points=[0, 10, 25],
                missing_points=-1,
            ),
            FactorRules("trial", "PAIN", "categorical", levels={"yes": 30}),
        ],
        sdr_threshold=35,
    )
    got = ex.diff_rules(old, new)
    want = pd.DataFrame(
        [
            ("lead_source", "FIT", '= "Lead Add Form"', 20, 25, "changed"),
            ("lead_source", "FIT", '= "Partner"', None, 8, "added"),
            ("lead_source", "FIT", f'= "{INJECTION}"', -5, None, "removed"),
            ("visits", "PAIN", "> 3 and <= 10", None, 10, "added"),
            ("visits", "PAIN", "> 10", None, 25, "added"),
            ("visits", "PAIN", "> 3 and <= 7", 10, None, "removed"),
            ("visits", "PAIN", "> 7", 25, None, "removed"),
            ("trial", "PAIN", '= "yes"', None, 30, "added"),
            ("trial", "PAIN", "is missing", None, 0, "added"),
            ("trial", "PAIN", "is any other value", None, 0, "added"),
            ("(settings)", "", "sdr_threshold", 30, 35, "changed"),
        ],
        columns=ex.DIFF_COLUMNS,
    ).astype({"old_points": "Int64", "new_points": "Int64"})
    pd.testing.assert_frame_equal(got, want)


def test_diff_rules_identical_and_unchanged_rows():
    assert ex.diff_rules(make_rules(), make_rules()).empty
    full = ex.diff_rules(make_rules(), make_rules(), include_unchanged=True)
    assert len(full) == 9 + 3 and set(full["change"]) == {"unchanged"}
    moved = make_rules(
        factors=[FactorRules("visits", "FIT", "numeric", edges=[3.0, 7.0], bin_points=[0, 10, 25],
                             missing_points=-1)]
    )
    old = make_rules(factors=make_rules().factors[1:])
    assert set(ex.diff_rules(old, moved)["change"]) == {"regrouped"}
    removed_cap = ex.diff_rules(make_rules(), make_rules(score_max=None))
    assert removed_cap.to_dict("records") == [
        {"factor": "(settings)", "group": "", "condition": "score_max", "old_points": 40,
         "new_points": None, "change": "removed"}
    ]


# ------------------------------------------------------------------------------ verify


def test_verify_exports_agree_on_the_hand_made_leads():
    results = vf.verify_exports(make_rules(), leads_frame())
    assert [r.format for r in results] == ["sql", "pmml", "python"]
    for r in results:
        assert r.ok and r.total == len(CASES) and r.examples.empty


def test_compare_scores_reports_disagreements():
    expected = expected_frame()
    broken = expected.copy()
    broken.loc[3, "points"] = 99
    broken.loc[5, "probability"] += 1e-6
    result = vf.compare_scores(expected, broken, fmt="fake", inputs=[{"i": i} for i in range(8)])
    assert (result.format, result.mismatches, result.total, result.ok) == ("fake", 2, 8, False)
    assert result.examples[["row", "column", "expected", "actual"]].values.tolist()[0] == [
        3, "points", 26, 99
    ]
    assert result.examples["inputs"].tolist() == ["{'i': 3}", "{'i': 5}"]
    with pytest.raises(ValueError, match="formats must be among"):
        vf.verify_exports(make_rules(), leads_frame(), formats=("excel",))


def test_sql_input_columns_are_typed_like_the_reference_reads_them():
    df = pd.DataFrame(
        {
            "lead_source": pd.Series([1.0, "Web", math.nan, True], dtype=object),
            "visits": pd.Series(["3.5", 2, math.nan, "NA"], dtype=object),
        }
    )
    cols = vf.sql_input_columns(make_rules(), df)
    assert cols["lead_id"] == ("bigint", [0, 1, 2, 3])
    assert cols["lead_source"] == ("text", ["1", "Web", None, "true"])
    assert cols["visits"] == ("text", ["3.5", "2", None, "NA"])
    for result in vf.verify_exports(make_rules(), df):
        assert result.ok, result.examples


# ------------------------------------------------------------------------------ special values


def special_rules() -> PointsRules:
    """``make_rules`` plus a numeric FIT factor whose sentinels 999 ("never contacted") and -1
    have points of their own; 999 lies in the last bin, -1 in the first."""
    pdays = FactorRules("pdays", "FIT", "numeric", edges=[5.0, 30.0], bin_points=[12, 6, 2],
                        missing_points=0, special_points={"999": -4, "-1": 3})
    base = make_rules()
    return make_rules(factors=[*base.factors, pdays], score_min=None, score_max=None)


# pdays -> its points (visits 3 -> 0 pain, lead_source Web -> 5 fit)
SPECIAL_CASES = [(999.0, -4), (-1.0, 3), (-2.0, 12), (5.0, 12), (6.0, 6), (998.5, 2),
                 (1000.0, 2), (math.nan, 0), ("999", -4), ("NA", 0)]


def special_leads() -> pd.DataFrame:
    return pd.DataFrame({
        "lead_source": ["Web"] * len(SPECIAL_CASES),
        "visits": [3.0] * len(SPECIAL_CASES),
        "pdays": pd.Series([c[0] for c in SPECIAL_CASES], dtype=object),
    })


def test_special_values_score_before_the_bins_in_the_reference():
    rules = special_rules()
    got = vf.score_reference(rules, special_leads())
    assert got["fit"].tolist() == [5 + pts for _, pts in SPECIAL_CASES]
    pdays = rules.factors[-1]
    assert (pdays.min_points, pdays.max_points) == (-4, 12)
    assert [v for v, _, _ in pdays.special_values()] == [-1.0, 999.0]


def test_special_values_read_as_conditions_before_the_bins():
    table = ex.rules_table(special_rules())
    rows = table[table["factor"] == "pdays"]
    assert rows["condition"].tolist() == ["= -1", "= 999", "<= 5", "> 5 and <= 30", "> 30",
                                          "is missing"]
    assert rows["points"].tolist() == [3, -4, 12, 6, 2, 0]
    assert "pdays,FIT,= 999,-4" in ex.export_csv(special_rules())


def test_special_values_validate_against_the_schema_and_round_trip():
    text = ex.export_json(special_rules())
    doc = json.loads(text)
    validator = jsonschema.Draft202012Validator(ex.points_table_schema())
    validator.validate(doc)
    assert doc["factors"][2]["special_points"] == {"-1": 3, "999": -4}
    assert "special_points" not in doc["factors"][1]  # none: the document reads as before
    assert PointsRules.from_json(text) == special_rules()
    doc["factors"][0]["special_points"] = {"1": 2}  # categorical factors have none
    doc["factors"][2]["special_points"]["never"] = 1  # keys are numbers
    errors = [e.message for e in validator.iter_errors(doc)]
    assert any("is expected to be empty" in e for e in errors), errors
    assert any("'never' does not match" in e for e in errors), errors


def test_special_points_are_checked_when_the_table_is_built():
    with pytest.raises(ValueError, match="special_points are for numeric factors"):
        FactorRules("s", "FIT", "categorical", levels={"a": 1}, special_points={"1": 2})
    with pytest.raises(ValueError, match="key 'never' is not a number"):
        FactorRules("n", "FIT", "numeric", bin_points=[0], special_points={"never": 2})
    with pytest.raises(ValueError, match="written as '999'"):
        FactorRules("n", "FIT", "numeric", bin_points=[0], special_points={"999.0": 2})


def test_special_values_agree_in_sql_pmml_and_python():
    results = vf.verify_exports(special_rules(), special_leads())
    assert [r.format for r in results] == ["sql", "pmml", "python"]
    for r in results:
        assert r.ok and r.total == len(SPECIAL_CASES), r.examples.to_string()


def test_special_values_in_hubspot_and_the_crm_sheet():
    rules = special_rules()
    body = json.loads(ex.export_hubspot(rules))
    rows = _sheet_rows(ex.export_crm_csv(rules))
    last_bin = next(r for g in body["groupConfigs"] for r in g["ruleConfigurations"]
                    if r["name"] == "pdays > 30")
    assert {"property": "pdays", "operator": "NEQ", "value": "999"} in last_bin["filters"]
    assert "and is not 999 (its own rule)" in next(
        r["notes"] for r in rows if r["field"] == "pdays" and r["operator"] == "greater than")
    for value, pts in SPECIAL_CASES:
        if isinstance(value, str):
            continue  # the sheets read typed properties
        lead = {"lead_source": "Web", "visits": 3.0, "pdays": value}
        sums = [sum(r["configuration"]["calculation"]["value"] for r in g["ruleConfigurations"]
                    if all(_hubspot_matches(f, lead[f["property"]]) for f in r["filters"]))
                for g in body["groupConfigs"]]
        assert sums == [5 + pts, 0], value
        assert _sheet_points(rows, lead, rules.missing_values) == {"Fit": 5 + pts,
                                                                   "Behavior": 0}, value


# ------------------------------------------------------------------------------ spam gate

# name_spam values -> spam for the gate? (missing token "NA", blanks, padding and case count)
SPAM_VALUES = ["yes", "no", None, "NA", "", "YES", " yes", math.nan, "yes"]


def gated_rules(**overrides) -> PointsRules:
    """:func:`make_rules` with the spam gate on and the derived-signal settings recorded."""
    derived = DerivedSignals(email_column="email", name_columns=["first_name", "last_name"],
                             title_column="job_title", extra_free_domains=["corp.example"],
                             domain_lists_sha256="0" * 64)
    return make_rules(spam_gate=True, derived=derived, **overrides)


def gated_frame() -> pd.DataFrame:
    """Every hand-made lead once per ``name_spam`` value (so ready leads meet spam ones)."""
    base = leads_frame()
    parts = [base.assign(name_spam=pd.Series([v] * len(base), dtype=object))
             for v in SPAM_VALUES]
    return pd.concat(parts, ignore_index=True)


def test_reference_applies_the_spam_gate():
    rules = gated_rules()
    ready = {"lead_source": "Web", "visits": 100.0}
    assert score_record(rules, {**ready, "name_spam": "no"})["sdr_ready"] is True
    assert score_record(rules, {**ready, "name_spam": "yes"})["sdr_ready"] is False
    assert score_record(rules, {**ready, "name_spam": "yes"})["points"] == 30  # points stay
    assert score_record(rules, ready)["sdr_ready"] is True  # absent: not spam
    assert score_record(rules, {**ready, "name_spam": "NA"})["sdr_ready"] is True  # missing
    assert score_record(make_rules(), {**ready, "name_spam": "yes"})["sdr_ready"] is True


@pytest.mark.parametrize("missing", [["NA"], ["NA", "yes"]])
def test_every_export_agrees_with_the_reference_under_the_spam_gate(missing):
    """SQL, PMML and Python exports give the reference's sdr_ready for every lead, spam or not
    (and no lead is spam when "yes" itself is a missing token)."""
    rules = gated_rules(missing_values=missing)
    df = gated_frame()
    reference = vf.score_reference(rules, df)
    spam = df["name_spam"].eq("yes") & ("yes" not in missing)
    assert not reference.loc[spam, "sdr_ready"].any()
    assert reference.loc[~spam, "sdr_ready"].any()  # the gate is what stops the spam leads
    for result in vf.verify_exports(rules, df):
        assert result.ok, (result.format, result.examples)


def test_sql_export_reads_name_spam_only_with_the_gate():
    assert "name_spam" not in ex.export_sql(make_rules())
    for dialect in ex.SQL_DIALECTS:
        sql = ex.export_sql(gated_rules(), dialect=dialect)
        assert "name_spam" in sql and "AND NOT __spam AS sdr_ready" in sql


def test_pmml_declares_name_spam_as_a_supplementary_field():
    root = ET.fromstring(ex.export_pmml(gated_rules()))
    ns = {"p": ex.PMML_NAMESPACE}
    field = root.find("p:DataDictionary/p:DataField[@name='name_spam']", ns)
    assert field is not None and field.get("dataType") == "string"
    mining = root.find(".//p:MiningField[@name='name_spam']", ns)
    assert mining is not None and mining.get("usageType") == "supplementary"
    assert root.find(".//p:MiningField[@name='name_spam']",
                     {"p": ex.PMML_NAMESPACE}) is not None
    assert ET.fromstring(ex.export_pmml(make_rules())).find(
        "p:DataDictionary/p:DataField[@name='name_spam']", ns) is None


def test_rule_sheets_state_the_spam_gate():
    body = json.loads(ex.export_hubspot(gated_rules()))
    assert body["lead_scoring"]["spam_gate"] is True
    assert body["lead_scoring"]["derived"]["name_columns"] == ["first_name", "last_name"]
    assert "name_spam" in ex.HUBSPOT_NOTES and "never SDR-ready" in ex.HUBSPOT_NOTES
    rows = list(csv.DictReader(io.StringIO(ex.export_crm_csv(gated_rules()))))
    gate = [r for r in rows if r["rule_id"] == "GATE"]
    assert len(gate) == 1 and gate[0]["field"] == "name_spam" and gate[0]["points"] == "0"
    assert "never SDR-ready" in gate[0]["notes"]
    plain = list(csv.DictReader(io.StringIO(ex.export_crm_csv(make_rules()))))
    assert all(r["rule_id"] != "GATE" for r in plain)
