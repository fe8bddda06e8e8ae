"""What the registered pyfunc model takes (issue 20) and that MLflow's check of it is cheap
(issue 24), through ``mlflow.pyfunc.load_model(...).predict`` on small hand-made tables.

The signature has params and outputs but no input schema: MLflow checks a column of "any"
type value by value in Python (30 s of 32 on a million leads), and no typed column takes both
an int64 and a float64 column. So MLflow hands the input over untouched and the model keeps
the columns it reads. Checked here: integer and float numbers, gaps, text with ``None``, an
all-missing text column (``pd.read_csv`` makes it float64), categoricals, extra columns, the
dict form with an events frame; the points against a slow per-lead reference written from the
points table, and against ``score_frame``; a version logged with the former any-type
signature still loads and scores the same.
"""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.inputs.features import FeatureSettings, MissingEventsError, scoring_features
from pipeline.model.rules import FactorRules, PointsRules
from pipeline.registry import store as registry
from pipeline.scoring.frame import score_frame
from pipeline.scoring.serving import (
    INPUT_COLUMNS_KEY,
    PARAMS,
    SCORE_COLUMNS,
    TABLE_INPUTS,
    score_columns,
    signature_columns,
)

SOURCE = FactorRules("source", "FIT", "categorical", levels={"Web": 3, "Ads": -2},
                     missing_points=-1, unseen_points=1)
VISITS = FactorRules("visits", "PAIN", "numeric", edges=[2.5, 10.5], bin_points=[0, 5, 12],
                     missing_points=-3)
SPEND = FactorRules("spend", "PAIN", "numeric", edges=[100.5], bin_points=[0, 7],
                    missing_points=2)
DECAYED = FactorRules("decayed_product", "PAIN", "numeric", edges=[0.0, 0.75],
                      bin_points=[0, 8, 20], missing_points=-1)
PLAIN = PointsRules(factors=[SOURCE, VISITS, SPEND], missing_values=["NA"],
                    id_column="lead_id", sdr_threshold=10)
EVENTS = PointsRules(factors=[SOURCE, VISITS, DECAYED], missing_values=["NA"],
                     id_column="lead_id", sdr_threshold=10,
                     decay_half_life_days={"product": 7.0})
PLAIN_SETTINGS = FeatureSettings(id_column="lead_id", missing_values=["NA"])
EVENT_SETTINGS = FeatureSettings(id_column="lead_id", created_at_column="created",
                                 missing_values=["NA"], event_to_group={"trial": "product"},
                                 key_group="product")


def _log(name: str, rules: PointsRules, feature_settings: FeatureSettings, tmp: Path,
         example: pd.DataFrame, signature=None) -> object:  # noqa: ANN001
    """``rules`` as version 1 of ``name`` (``signature``: a different one), loaded back."""
    artifacts = tmp / name
    artifacts.mkdir()
    (artifacts / registry.RULES_FILE).write_text(rules.to_json())
    if signature is None:
        registry.log_training(model_name=name, params={}, metrics={}, tags={},
                              artifact_dir=artifacts, rules=rules,
                              feature_settings=feature_settings, input_example=example)
    else:
        original = registry.model_signature
        registry.model_signature = lambda: signature
        try:
            registry.log_training(model_name=name, params={}, metrics={}, tags={},
                                  artifact_dir=artifacts, rules=rules,
                                  feature_settings=feature_settings, input_example=example)
        finally:
            registry.model_signature = original
    return mlflow.pyfunc.load_model(f"models:/{name}/1")


def _any_type_signature(rules: PointsRules, feature_settings: FeatureSettings):
    """The signature of versions registered before issue 24: every column optional and of any
    type, the dict form's cells and its array column."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import AnyType, Array

    columns = signature_columns(rules, feature_settings)
    inputs = Schema([*(ColSpec(AnyType(), n, required=False) for n in columns),
                     *(ColSpec(AnyType(), n, required=False) for n in TABLE_INPUTS),
                     ColSpec(Array(AnyType()), "_dict_input", required=False)])
    outputs = registry.model_signature().outputs
    params = ParamSchema([ParamSpec(n, "string", d) for n, d in PARAMS.items()])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def leads() -> pd.DataFrame:
    """As ``pd.read_csv`` gives them: int64 visits, float64 spend with gaps, text with None."""
    return pd.DataFrame({
        "lead_id": [1, 2, 3, 4, 5, 6],
        "source": ["Web", "Ads", None, "Fax", "NA", "Web"],
        "visits": np.array([0, 3, 11, 7, 2, 40], dtype=np.int64),
        "spend": [50.0, np.nan, 250.0, 101.0, np.nan, 0.0],
        "created": ["2024-02-20", "2024-02-01", "2024-02-25", None, "2024-01-01", "2024-02-27"],
    })


def events() -> pd.DataFrame:
    return pd.DataFrame({"lead_id": [1, 1, 3, 6], "event": ["trial"] * 4,
                         "timestamp": ["2024-02-28", "2024-02-29", "2024-01-02", "2024-02-29"]})


def reference_points(rules: PointsRules, frame: pd.DataFrame) -> list[int]:
    """Slow and obvious: each lead's points summed factor by factor from the points table
    (values here never sit on an edge; "NA" and None are missing)."""
    out = []
    for _, row in frame.iterrows():
        total = 0
        for factor in rules.factors:
            value = row.get(factor.name)
            missing = value is None or (isinstance(value, float) and math.isnan(value)) \
                or value == "NA"
            if missing:
                total += factor.missing_points
            elif factor.kind == "categorical":
                total += factor.levels.get(str(value), factor.unseen_points)
            else:
                total += factor.bin_points[sum(float(value) > e for e in factor.edges)]
        out.append(total)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path
           ) -> dict[str, object]:
    """The plain and the event model logged now, and the plain one with the former
    signature, in one sqlite store (a copy of the session's empty one)."""
    import shutil

    tmp = tmp_path_factory.mktemp("pyfunc_input")
    shutil.copyfile(mlflow_db_template, tmp / "mlflow.db")
    registry.connect(f"sqlite:///{tmp / 'mlflow.db'}", experiment="pyfunc-input",
                     artifact_location=str(tmp / "artifacts"))
    example = leads()
    return {
        "plain": _log("plain", PLAIN, PLAIN_SETTINGS, tmp, example),
        "events": _log("events", EVENTS, EVENT_SETTINGS, tmp, example),
        "former": _log("former", PLAIN, PLAIN_SETTINGS, tmp, example,
                       signature=_any_type_signature(PLAIN, PLAIN_SETTINGS)),
    }


def test_the_signature_has_no_input_schema_and_names_the_columns_in_the_metadata(models):
    model = models["plain"]
    assert model.metadata.get_input_schema() is None  # nothing for MLflow to check per value
    assert {p.name for p in model.metadata.get_params_schema().params} == set(PARAMS)
    assert model.metadata.get_output_schema().input_names() == SCORE_COLUMNS
    assert model.metadata.metadata[INPUT_COLUMNS_KEY] == signature_columns(PLAIN, PLAIN_SETTINGS)
    assert model.metadata.metadata[INPUT_COLUMNS_KEY][:3] == ["source", "visits", "spend"]


def test_int_and_float_numerics_gaps_and_text_score_like_the_points_table(models):
    raw = leads()
    out = models["plain"].predict(raw)
    assert list(out.columns) == SCORE_COLUMNS and len(out) == len(raw)
    assert out["points"].tolist() == reference_points(PLAIN, raw)
    assert out["points"].tolist() == \
        score_frame(PLAIN, scoring_features(raw, PLAIN, PLAIN_SETTINGS))["points"].tolist()
    # the same numbers as float64 (a gap in another file), as text, as categoricals
    as_float = raw.assign(visits=raw["visits"].astype(float))
    as_categories = raw.assign(source=raw["source"].astype("category"))
    with_gap = raw.assign(visits=[np.nan, *raw["visits"].astype(float)[1:]])
    for frame in (as_float, as_categories):
        pd.testing.assert_frame_equal(models["plain"].predict(frame), out)
    assert models["plain"].predict(with_gap)["points"].tolist() == \
        reference_points(PLAIN, with_gap)


@pytest.mark.parametrize("backend", [None, "numpy_nullable", "pyarrow"])
def test_the_csv_as_read_csv_gives_it_with_any_dtype_backend(models, tmp_path, backend):
    """int64 / Int64 / int64[pyarrow], float64 / Float64 / double[pyarrow], str / string."""
    path = tmp_path / "leads.csv"
    leads().to_csv(path, index=False)
    raw = pd.read_csv(path, **({"dtype_backend": backend} if backend else {}))
    assert pd.api.types.is_integer_dtype(raw["visits"])
    assert models["plain"].predict(raw)["points"].tolist() == reference_points(PLAIN, leads())


def test_all_missing_text_extra_columns_and_absent_factor_columns(models):
    raw = leads()
    empty_text = raw.assign(source=np.nan)  # pd.read_csv: an empty column is float64
    assert models["plain"].predict(empty_text)["points"].tolist() == \
        reference_points(PLAIN, empty_text)
    extra = raw.assign(points=99, notes=["x"] * len(raw))  # not read, whatever they hold
    pd.testing.assert_frame_equal(models["plain"].predict(extra), models["plain"].predict(raw))
    with pytest.raises(ValueError, match=r"lacks columns .*'visits', 'spend'"):
        models["plain"].predict(raw[["lead_id", "source"]])


def test_dict_form_takes_the_events_frame_and_leads_alone_name_what_to_pass(models, tmp_path):
    model, raw = models["events"], leads()
    as_dict = model.predict({"leads": raw, "events": events()})
    path = tmp_path / "events.csv"
    events().to_csv(path, index=False)
    by_path = model.predict(raw, params={"events": str(path)})
    pd.testing.assert_frame_equal(as_dict, by_path)
    reference = score_columns(EVENTS, EVENT_SETTINGS, raw, events=events())
    pd.testing.assert_frame_equal(as_dict, reference)
    assert as_dict["points"].tolist() != \
        model.predict({"leads": raw, "events": events().iloc[[2]]})["points"].tolist()
    for call in (lambda: model.predict(raw), lambda: model.predict({"leads": raw})):
        with pytest.raises((ValueError, MissingEventsError)) as info:
            call()
        assert "events" in str(info.value) and "decayed_product" in str(info.value)


def test_a_version_with_the_former_any_type_signature_scores_the_same(models):
    former = models["former"]
    assert former.metadata.get_input_schema() is not None
    raw = leads()
    for frame in (raw, raw.assign(visits=raw["visits"].astype(float))):
        pd.testing.assert_frame_equal(former.predict(frame), models["plain"].predict(frame))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["Web", "Ads", "Fax", None, "NA"]),
                          st.one_of(st.none(), st.integers(0, 60)),
                          st.one_of(st.none(), st.integers(0, 400))), min_size=1, max_size=30),
       st.booleans())
def test_any_mix_of_int_float_and_gaps_scores_like_the_reference(models, rows, visits_int):
    """Whatever the mix, MLflow's predict gives the points of the slow reference; visits are
    int64 when no gap forces float64 (as ``pd.read_csv`` would) or when asked to be float."""
    frame = pd.DataFrame(rows, columns=["source", "visits", "spend"])
    frame["spend"] = frame["spend"].astype(float) + 0.25  # never on an edge, float64
    if visits_int and frame["visits"].notna().all():
        frame["visits"] = frame["visits"].astype(np.int64)
    else:
        frame["visits"] = frame["visits"].astype(float)
    frame.insert(0, "lead_id", range(len(frame)))
    out = models["plain"].predict(frame)
    assert out["points"].tolist() == reference_points(PLAIN, frame)
