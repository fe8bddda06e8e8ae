"""The vectorised scorer against the one-lead-at-a-time reference ``reference.score_record``.

Random points tables (nasty level strings, unseen levels, NaN, values on bin edges, integer
columns that take the lookup-array path, Categorical columns that take the dictionary path)
must give exactly the reference fit, pain, points and sdr_ready for every row.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.model.reference import factor_points, score_record
from pipeline.model.rules import FactorRules, PointsRules, special_key
from pipeline.scoring import frame as scoring
from pipeline.scoring.factor_lookup import (
    factor_outcome_labels,
    factor_slot_codes,
    points_matrix,
    unseen_counts,
)
from pipeline.scoring.frame import reason_codes, score_frame

MISSING = ["Select", "N/A"]
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6)
LEVEL = st.one_of(TEXT, st.sampled_from(["a", "A", " a", "it's", "1", "1.0", "NULL", "日本"]))
POINTS = st.integers(-40, 40)


@st.composite
def categorical_factor(draw, name: str) -> FactorRules:
    levels = draw(st.dictionaries(LEVEL.filter(lambda v: v not in MISSING and v != ""), POINTS,
                                  max_size=6))
    return FactorRules(name, draw(st.sampled_from(["FIT", "PAIN"])), "categorical", levels=levels,
                       missing_points=draw(POINTS), unseen_points=draw(POINTS))


@st.composite
def numeric_factor(draw, name: str, *, integer_edges: bool) -> FactorRules:
    if integer_edges:
        raw = draw(st.lists(st.integers(-5, 30), max_size=6, unique=True))
    else:
        raw = draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=64), max_size=30,
                            unique=True))
    edges = sorted(float(e) for e in raw)
    points = draw(st.lists(POINTS, min_size=len(edges) + 1, max_size=len(edges) + 1))
    return FactorRules(name, draw(st.sampled_from(["FIT", "PAIN"])), "numeric", edges=edges,
                       bin_points=points, missing_points=draw(POINTS), unseen_points=0,
                       special_points=draw(special_points(edges, integer=integer_edges)))


def special_points(edges: list[float], *, integer: bool):
    """Sometimes a few sentinel values with points of their own: on an edge, inside a bin,
    beyond every edge (999), negative (-1), or a fraction."""
    candidates = [999.0, -1.0, 0.0, *edges, *(e + 1 for e in edges)]
    if not integer:
        candidates += [0.5, -2.25, *(e + 0.5 for e in edges)]
    keys = st.sampled_from(sorted(set(candidates))).map(special_key)
    return st.one_of(st.just({}), st.dictionaries(keys, POINTS, min_size=1, max_size=3))


def numeric_values(factor: FactorRules, kind: str):
    near = [e + d for e in factor.edges for d in (-1, -0.5, 0, 0.5, 1)] or [0.0]
    near += [value for value, _, _ in factor.special_values()] * 3  # sentinels are common
    if kind == "int":
        ints = [int(math.floor(v)) for v in near if abs(v) < 1e6] + [-10**6, 0, 10**6]
        return st.sampled_from(sorted(set(ints)))
    floats = st.one_of(st.sampled_from(near), st.floats(-2e3, 2e3, allow_nan=False),
                       st.just(math.nan), st.just(math.inf), st.just(-math.inf))
    if kind == "float":
        return floats
    # text column: numbers as text, missing tokens and nulls, as a CSV gives them
    return st.one_of(floats.filter(math.isfinite).map(repr), st.sampled_from([*MISSING, ""]),
                     st.none())


@st.composite
def table_and_leads(draw):
    factors, columns = [], {}
    n = draw(st.integers(1, 25))
    for i in range(draw(st.integers(1, 5))):
        name = f"f{i}"
        if draw(st.booleans()):
            f = draw(categorical_factor(name))
            pool = [*f.levels, *MISSING, ""] + draw(st.lists(LEVEL, max_size=3))
            values = draw(st.lists(st.one_of(st.sampled_from(pool), st.none()),
                                   min_size=n, max_size=n))
            series = pd.Series(values, dtype=object)
            if draw(st.booleans()):  # a dictionary-encoded column, as read from Parquet
                series = series.astype("category")
        else:
            kind = draw(st.sampled_from(["int", "float", "text"]))
            f = draw(numeric_factor(name, integer_edges=kind == "int" or draw(st.booleans())))
            values = draw(st.lists(numeric_values(f, kind), min_size=n, max_size=n))
            dtype = {"int": np.int64, "float": float, "text": object}[kind]
            series = pd.Series(values, dtype=dtype)
        factors.append(f)
        columns[name] = series
    cap = draw(st.one_of(st.none(), st.tuples(st.integers(-50, 0), st.integers(0, 50))))
    rules = PointsRules(factors=factors, missing_values=MISSING, sdr_threshold=draw(POINTS),
                        prob_intercept=-1.5, prob_slope=0.05,
                        score_min=cap[0] if cap else None, score_max=cap[1] if cap else None)
    return rules, pd.DataFrame(columns)


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain Python values, the way a caller of the reference passes them."""
    out = []
    for i in range(len(frame)):
        row = {}
        for c in frame.columns:
            v = frame[c].iloc[i]
            row[c] = None if v is None or v is pd.NA else (v.item() if hasattr(v, "item") else v)
        out.append(row)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table_and_leads())
def test_score_frame_equals_reference(case):
    rules, frame = case
    got = score_frame(rules, frame)
    want = pd.DataFrame([score_record(rules, r) for r in _records(frame)], index=frame.index)
    for column in ("points", "fit", "pain", "sdr_ready"):
        assert got[column].tolist() == want[column].tolist(), column
    np.testing.assert_allclose(got["probability"], want["probability"], rtol=1e-12)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table_and_leads())
def test_points_matrix_rows_add_up_and_match_each_factor(case):
    rules, frame = case
    matrix = points_matrix(rules, frame)
    scores = score_frame(rules, frame)
    assert matrix.dtype == np.int64 and matrix.shape == (len(frame), len(rules.factors))
    np.testing.assert_array_equal(matrix.sum(axis=1), scores["fit"] + scores["pain"])
    records = _records(frame)
    for j, f in enumerate(rules.factors):
        want = [factor_points(f, r[f.name], rules.missing_values)[0] for r in records]
        assert matrix[:, j].tolist() == want, f.name
        labels = factor_outcome_labels(f)
        slots = factor_slot_codes(f, frame[f.name], rules.missing_values)
        ref_labels = [factor_points(f, r[f.name], rules.missing_values)[1] for r in records]
        assert [labels[s] for s in slots] == ref_labels, f.name


def _naive_reasons(rules: PointsRules, frame: pd.DataFrame, top: int = 3) -> list[str]:
    """Reason codes written the obvious way, from the reference ``factor_points``."""
    out = []
    for r in _records(frame):
        hits = [(f.name, *factor_points(f, r[f.name], rules.missing_values))
                for f in rules.factors]
        order = sorted(range(len(hits)), key=lambda j: (-hits[j][1], j))
        pos = [j for j in order if hits[j][1] > 0][:top]
        neg = [j for j in sorted(range(len(hits)), key=lambda j: (hits[j][1], -j))
               if hits[j][1] < 0][:top]
        out.append("; ".join(f"{hits[j][0]} = {hits[j][2]}: {hits[j][1]:+d}" for j in pos + neg))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table_and_leads())
def test_reason_codes_match_naive_reference(case):
    rules, frame = case
    assert reason_codes(rules, frame) == _naive_reasons(rules, frame)
    assert score_frame(rules, frame, reasons=True)["reason_codes"].tolist() == \
        _naive_reasons(rules, frame)


def test_unseen_counts_and_dictionary_path_agree_with_object_path():
    f = FactorRules("src", "FIT", "categorical", levels={"web": 5, "ads": -3},
                    missing_points=-1, unseen_points=2)
    rules = PointsRules(factors=[f], missing_values=["Select"])
    values = ["web", "ads", "tv", None, "Select", "", "tv", "radio"]
    as_object = pd.DataFrame({"src": pd.Series(values, dtype=object)})
    as_category = pd.DataFrame({"src": as_object["src"].astype("category")})
    assert unseen_counts(rules, as_object) == unseen_counts(rules, as_category) == {"src": 3}
    want = [5, -3, 2, -1, -1, -1, 2, 2]
    assert score_frame(rules, as_object)["points"].tolist() == want
    assert score_frame(rules, as_category)["points"].tolist() == want


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int64, np.uint8, np.uint64])
def test_integer_lookup_path_for_every_integer_dtype(dtype):
    f = FactorRules("visits", "PAIN", "numeric", edges=[0.0, 2.5, 10.0], bin_points=[0, 4, 9, 15])
    rules = PointsRules(factors=[f])
    values = np.array([0, 1, 2, 3, 10, 11, 100], dtype=dtype)
    got = score_frame(rules, pd.DataFrame({"visits": values}))["points"].tolist()
    assert got == [factor_points(f, int(v), [])[0] for v in values]


def test_missing_factor_column_is_named():
    rules = PointsRules(factors=[FactorRules("x", "FIT", "numeric", bin_points=[1])])
    with pytest.raises(KeyError, match=r"\['x'\]"):
        score_frame(rules, pd.DataFrame({"y": [1]}))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table_and_leads())
def test_threads_give_the_same_scores_as_one_thread(case):
    rules, frame = case
    one = score_frame(rules, frame, threads=1, reasons=True)
    pd.testing.assert_frame_equal(score_frame(rules, frame, threads=3, reasons=True), one)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table_and_leads(), st.integers(1, 5))
def test_scoring_a_few_rows_at_a_time_gives_the_same_scores(case, rows_per_step):
    rules, frame = case
    whole = score_frame(rules, frame, threads=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scoring, "_ROWS_PER_STEP", rows_per_step)
        pd.testing.assert_frame_equal(score_frame(rules, frame, threads=2), whole)


def test_integer_lookup_covers_negative_values_and_wide_spans():
    f = FactorRules("delta", "PAIN", "numeric", edges=[-5.0, 0.0, 7.5], bin_points=[-8, 0, 3, 9])
    rules = PointsRules(factors=[f])
    values = np.array([-128, -6, -5, -4, 0, 1, 7, 8, 127], dtype=np.int8)
    wide = np.array([-(10**9), -5, 0, 8, 10**9], dtype=np.int64)  # too wide for a lookup array
    for column in (values, wide):
        got = score_frame(rules, pd.DataFrame({"delta": column}))["points"].tolist()
        assert got == [factor_points(f, int(v), [])[0] for v in column]


def test_grades_are_an_ordered_categorical_by_min_points():
    f = FactorRules("visits", "PAIN", "numeric", edges=[1.0, 5.0], bin_points=[0, 10, 30])
    grades = [{"grade": "A", "min_points": 30}, {"grade": "C", "min_points": -1e9},
              {"grade": "B", "min_points": 10}]
    rules = PointsRules(factors=[f], grades=grades)
    grade = score_frame(rules, pd.DataFrame({"visits": [0, 3, 9, 2, np.nan]}))["grade"]
    assert grade.tolist() == ["C", "B", "A", "B", "C"]
    assert list(grade.cat.categories) == ["C", "B", "A"] and grade.cat.ordered
    assert (grade > "B").tolist() == [False, False, True, False, False]


def test_probability_lookup_equals_the_logistic_of_each_total():
    f = FactorRules("visits", "PAIN", "numeric", edges=[1.0, 5.0], bin_points=[-700, 0, 700])
    rules = PointsRules(factors=[f], prob_intercept=-0.3, prob_slope=1.1)
    scores = score_frame(rules, pd.DataFrame({"visits": [0, 3, 9, 9, 0]}))
    z = -0.3 + 1.1 * scores["points"].to_numpy(dtype=float)
    with np.errstate(over="ignore"):
        assert scores["probability"].tolist() == (1.0 / (1.0 + np.exp(-z))).tolist()


def test_no_rows_give_an_empty_score_frame():
    f = FactorRules("visits", "PAIN", "numeric", edges=[1.0], bin_points=[0, 5])
    empty = pd.DataFrame({"visits": pd.Series([], dtype=float)})
    out = score_frame(PointsRules(factors=[f]), empty)
    assert len(out) == 0
    assert list(out.columns[:5]) == ["points", "fit", "pain", "probability", "sdr_ready"]


def test_huge_points_are_scored_per_lead_with_the_same_results():
    f = FactorRules("visits", "PAIN", "numeric", edges=[1.0, 5.0],
                    bin_points=[-3_000_000, 0, 3_000_000], missing_points=7)
    grades = [{"grade": "B", "min_points": -1e9}, {"grade": "A", "min_points": 1_000_000}]
    rules = PointsRules(factors=[f], prob_intercept=0.1, prob_slope=1e-6, grades=grades)
    frame = pd.DataFrame({"visits": [0.0, 3.0, 9.0, np.nan]})
    out = score_frame(rules, frame)
    assert out["points"].tolist() == [-3_000_000, 0, 3_000_000, 7]
    expected = 1 / (1 + np.exp(-(0.1 + 1e-6 * out["points"].to_numpy(dtype=float))))
    np.testing.assert_allclose(out["probability"], expected)
    assert out["grade"].astype(str).tolist() == ["B", "B", "A", "B"]
