"""Property tests: on random points tables with nasty level text and random raw leads, the SQL
(DuckDB), Python and PMML exports score every lead exactly like ``score_record``, with the
spam gate on or off (leads then carry random ``name_spam`` values, spam ones included)."""

from __future__ import annotations

import math

import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline import exports as ex
from pipeline.exports import verify as vf
from pipeline.model.rules import FactorRules, PointsRules, special_key

NASTY = [
    "x'; DROP TABLE leads; --",
    "it's",
    "it''s",
    '"quoted"',
    "back\\slash",
    "\\",
    "\\'",
    "a\\nb",
    "100%",
    "%_",
    "/* comment */",
    "-- comment",
    "line\nbreak",
    "tab\there",
    "carriage\rreturn",
    " ",
    "  padded  ",
    "NULL",
    "null",
    "None",
    "nan",
    "NaN",
    "1",
    "1.0",
    "0",
    "true",
    "é",
    "e\u0301",
    "日本語",
    "😀 emoji",
    "`tick`",
    "$1 ${x} {0}",
    "<tag attr='1'>&amp;</tag>",
    "x" * 250,
    "Lead Add Form",
]
TOKENS = ["NA", "n/a", "unknown", "?", "null", "-", "yes"]
# name_spam values: "yes" is spam (unless a missing token), the rest is not
SPAM_VALUES = ["yes", "yes", "no", None, math.nan, "", " yes", "YES", "yes ", "1"]
NAMES = [
    "lead_source",
    "Visits (30d)",
    'say "hi"',
    "a'b",
    "tick`col",
    "naïve",
    "job title",
    "x" * 120,
    "select",
    "%pct",
]

# printable text without surrogates, unassigned code points or control characters (XML 1.0
# cannot hold most of those), plus the whitespace controls that it can
TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc", "Cn"), include_characters="\n\t\r"),
    min_size=1,
    max_size=12,
)
LEVEL = st.one_of(st.sampled_from(NASTY), TEXT)
POINTS = st.integers(min_value=-60, max_value=60)
EDGE = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.1, 1 / 3, 0.30000000000000004, 1e-05, -0.0, 0.0, 1e15 + 0.5, 7.0]),
    st.integers(min_value=-100, max_value=100).map(float),
)


@st.composite
def factors(draw, name: str) -> FactorRules:
    group = draw(st.sampled_from(["FIT", "PAIN"]))
    if draw(st.booleans()):
        levels = draw(st.dictionaries(LEVEL, POINTS, max_size=6))
        return FactorRules(
            name, group, "categorical", levels=levels, missing_points=draw(POINTS),
            unseen_points=draw(POINTS),
        )
    edges = sorted(set(draw(st.lists(EDGE, max_size=4))))
    bins = draw(st.lists(POINTS, min_size=len(edges) + 1, max_size=len(edges) + 1))
    # sometimes sentinel values with points of their own: 999, -1, on an edge, anywhere
    special = st.one_of(st.sampled_from([999.0, -1.0, 0.5, *edges]), EDGE).map(special_key)
    return FactorRules(
        name, group, "numeric", edges=edges, bin_points=bins, missing_points=draw(POINTS),
        unseen_points=draw(POINTS),
        special_points=draw(st.one_of(st.just({}),
                                      st.dictionaries(special, POINTS, min_size=1, max_size=3))),
    )


@st.composite
def points_rules(draw) -> PointsRules:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
    cap = draw(st.sampled_from(["none", "min", "max", "both"]))
    lo = draw(st.integers(-100, 20))
    hi = draw(st.integers(lo, lo + 150))
    return PointsRules(
        factors=[draw(factors(n)) for n in names],
        missing_values=draw(st.lists(st.sampled_from(TOKENS), max_size=3, unique=True)),
        sdr_threshold=draw(st.integers(-50, 100)),
        prob_intercept=draw(st.floats(-10, 10)),
        prob_slope=draw(st.floats(-0.5, 0.5)),
        score_min=lo if cap in ("min", "both") else None,
        score_max=hi if cap in ("max", "both") else None,
        spam_gate=draw(st.booleans()),
    )


def _value(draw, factor: FactorRules, tokens: list[str]):
    missing = [None, math.nan, "", *tokens]
    if factor.kind == "categorical":
        options = [
            st.sampled_from(sorted(factor.levels)) if factor.levels else LEVEL,
            LEVEL,  # most likely unseen
            st.sampled_from(missing),
            st.sampled_from([1.0, 2.5, 0, 7, True]),  # non-text values read from a CSV
        ]
        return draw(st.one_of(*options))
    edges = factor.edges or [0.0]
    specials = [value for value, _, _ in factor.special_values()]
    on_edge = st.sampled_from(edges + specials)
    options = [
        on_edge,
        on_edge.map(lambda e: math.nextafter(e, math.inf)),
        on_edge.map(lambda e: math.nextafter(e, -math.inf)),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(missing),
        on_edge.map(repr),  # a number as text, as from an untyped CSV column
        st.sampled_from(["inf", "-inf", "nan", "1e3"]),
    ]
    return draw(st.one_of(*options))


@st.composite
def rules_and_leads(draw) -> tuple[PointsRules, pd.DataFrame]:
    rules = draw(points_rules())
    n = draw(st.integers(min_value=1, max_value=25))
    columns = {}
    for f in rules.factors:
        values = [_value(draw, f, rules.missing_values) for _ in range(n)]
        floats_only = all(isinstance(v, float) for v in values)
        columns[f.name] = pd.Series(values, dtype="float64" if floats_only else object)
    if rules.spam_gate:
        spam = st.sampled_from(SPAM_VALUES + rules.missing_values)
        columns["name_spam"] = pd.Series([draw(spam) for _ in range(n)], dtype=object)
    return rules, pd.DataFrame(columns)


PROPERTY_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _assert_all_agree(results: list[vf.VerifyResult]) -> None:
    for r in results:
        assert r.ok, f"{r.format}: {r.mismatches}/{r.total} leads differ\n{r.examples.to_string()}"


@PROPERTY_SETTINGS
@given(rules_and_leads())
def test_sql_and_python_exports_score_like_the_reference(case):
    rules, df = case
    _assert_all_agree(vf.verify_exports(rules, df, formats=("sql", "python")))


@settings(PROPERTY_SETTINGS, max_examples=25)
@given(rules_and_leads())
def test_pmml_export_scores_like_the_reference(case):
    rules, df = case
    _assert_all_agree(vf.verify_exports(rules, df, formats=("pmml",)))


@PROPERTY_SETTINGS
@given(points_rules())
def test_exports_are_deterministic_and_json_round_trips(rules):
    for fmt in ex.FORMATS:
        assert ex.export(rules, fmt) == ex.export(rules, fmt)
    assert PointsRules.from_json(ex.export_json(rules)) == rules
    # the same rules read back from JSON (levels re-ordered) give the same SQL text
    again = PointsRules.from_json(ex.export_json(rules))
    for dialect in ex.SQL_DIALECTS:
        assert ex.export_sql(again, dialect=dialect) == ex.export_sql(rules, dialect=dialect)


@settings(PROPERTY_SETTINGS, max_examples=25)
@given(rules_and_leads())
def test_the_spam_gate_only_takes_sdr_ready_away(case):
    """With the gate on, a lead's points are those of the same lead without the gate, and it
    is SDR-ready exactly when it would be and it is not spam."""
    rules, df = case
    assume(rules.spam_gate)
    from dataclasses import replace

    gated = vf.score_reference(rules, df)
    plain = vf.score_reference(replace(rules, spam_gate=False), df)
    assert gated["points"].tolist() == plain["points"].tolist()
    spam = [rules.is_spam(v) for v in df["name_spam"]]
    assert gated["sdr_ready"].tolist() == [r and not s for r, s in
                                           zip(plain["sdr_ready"], spam, strict=True)]
