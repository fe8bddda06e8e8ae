"""The MLflow pyfunc model: a points table that scores raw leads.

``mlflow.pyfunc.load_model("models:/lead-scoring@champion").predict(leads_df)`` takes the
leads as they come (e.g. ``pd.read_csv("leads.csv")``: integer or float numbers, text,
missing values) and returns ``points, fit, pain, probability, sdr_ready, grade,
reason_codes``, one row per lead. The features are made by the one scoring builder,
:func:`pipeline.inputs.features.scoring_features`: derived signals from the raw email / name /
title columns, event features from the event log. A model with event factors needs the
event log, as a param: ``predict(leads_df, params={"events": "events.csv"})`` (CSV or
Parquet with ``lead_id, event, timestamp``), or as a frame in the dict form
``predict({"leads": leads_df, "events": events_df})``; ``as_of`` decays them to that time,
default the newest event, as ``lead-scoring score`` does. Without events the prediction
fails with a :class:`~pipeline.inputs.features.MissingEventsError` (a ``ValueError``) saying
what to pass.

The signature has params and outputs but no input schema (MLflow would check a column of
"any" type value by value in Python; no typed column takes both int64 and float64), so MLflow
hands the input over as it is; the model keeps the columns it reads (:func:`signature_columns`,
also in the model's metadata under :data:`INPUT_COLUMNS_KEY`).

The model is logged "from code" (:data:`MODEL_CODE`): the registry stores a two-line script
that builds :class:`LeadScoringModel` plus the points table and the feature settings as JSON
artifacts, never a pickle.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from typing import Any

import mlflow.pyfunc
import pandas as pd

from pipeline.inputs.features import (
    DERIVED_SIGNALS,
    FeatureSettings,
    domain_lists_note,
    event_factors,
    scoring_features,
    signal_settings,
)
from pipeline.model.rules import SPAM_COLUMN, DerivedSignals, PointsRules

RULES_ARTIFACT = "points_rules"
FEATURES_ARTIFACT = "feature_settings"
DERIVED_ARTIFACT = "derived_settings"  # models logged before the feature settings: read only
SCORE_COLUMNS = ["points", "fit", "pain", "probability", "sdr_ready", "grade", "reason_codes"]
PARAMS = {"events": "", "as_of": ""}  # predict params: event log path, decay time (ISO)
TABLE_INPUTS = ("leads", "events")  # the keys of the dict form of the input
INPUT_COLUMNS_KEY = "input_columns"  # the model's metadata: the columns it reads, in order
MODEL_CODE = (
    '"""MLflow models-from-code entry point of the lead-scoring pyfunc model."""\n'
    "import mlflow.models\n\n"
    "from pipeline.scoring.serving import LeadScoringModel\n\n"
    "mlflow.models.set_model(LeadScoringModel())\n"
)


def raw_input_columns(rules: PointsRules, settings: FeatureSettings) -> list[str]:
    """The columns of a raw lead the model reads: the id, the creation time (event models),
    the raw columns of the derived signals, and every factor (or gate) column that is neither
    derived nor an event feature. Every one is optional in the signature."""
    made = {*DERIVED_SIGNALS, *event_factors(rules, settings)}
    events = bool(event_factors(rules, settings))
    columns = [settings.id_column, *([settings.created_at_column] if events else []),
               *signal_settings(rules, settings).raw_columns(),
               *(c for c in rules.input_columns() if c not in made)]
    return [c for c in dict.fromkeys(columns) if c]


def signature_columns(rules: PointsRules, settings: FeatureSettings) -> list[str]:
    """The model's input columns: every factor (and gate) column in the table's order, for
    callers who have the features already (given columns are used as they are; a Spark UDF
    takes them by position), then the other raw columns a raw lead needs."""
    return [*dict.fromkeys([*rules.input_columns(), *raw_input_columns(rules, settings)])]


def score_columns(rules: PointsRules, settings: FeatureSettings, frame: pd.DataFrame, *,
                  events: Any = None, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """The pyfunc output for raw leads ``frame``: exactly :data:`SCORE_COLUMNS`, one row per
    input row, in input order.

    Raises ``ValueError`` naming the columns the points table needs that are neither given
    nor derivable (:class:`~pipeline.inputs.features.MissingEventsError` for event features).
    """
    from pipeline.scoring.frame import score_frame

    features = scoring_features(frame, rules, settings, events=events, as_of=as_of)
    absent = [name for name in rules.input_columns() if name not in features.columns]
    if absent:
        raw = signal_settings(rules, settings).raw_columns()
        raise ValueError(f"the input lacks columns the points table needs: {absent}"
                         + (f" (derived signals come from the raw columns {raw})" if raw else ""))
    scores = score_frame(rules, features, reasons=True)
    if "grade" not in scores.columns:
        scores["grade"] = ""
    return scores[SCORE_COLUMNS].reset_index(drop=True)


def legacy_settings(rules: PointsRules, derived: dict[str, Any]) -> tuple[PointsRules,
                                                                          FeatureSettings]:
    """Rules and settings of a model logged with only ``derived_settings.json`` (the config's
    ``derived`` section): its spam gate moves into the rules when the model can apply it."""
    known = {k: v for k, v in derived.items() if k in DerivedSignals.__dataclass_fields__}
    signals = DerivedSignals(**known)
    settings = FeatureSettings(id_column=rules.id_column, missing_values=list(rules.missing_values),
                               derived=signals)
    gate = bool(derived.get("spam_gate")) and (len(signals.name_columns) > 0
                                               or SPAM_COLUMN in rules.factor_names())
    return (replace(rules, spam_gate=True) if gate and not rules.spam_gate else rules), settings


def predict_params(params: dict[str, Any] | None) -> tuple[str | None, pd.Timestamp | None]:
    """(events path, as_of) from the predict params; empty values mean none / the default."""
    params = params or {}
    events = params.get("events") or None
    as_of = params.get("as_of") or None
    return (str(events) if events else None), (pd.Timestamp(as_of) if as_of else None)


# MLflow's PythonModel.__init_subclass__ warns "Add type hints to the `predict` method" under
# its own simplefilter('once'), ahead of any filter, so every command printed it: recorded here
# and dropped. predict takes a frame or the dict form on purpose (no hint, no MLflow validation).
with warnings.catch_warnings(record=True):

    class LeadScoringModel(mlflow.pyfunc.PythonModel):
        """Pyfunc wrapper around :func:`score_columns` (rules and settings read from artifacts)."""

        def load_context(self, context: Any) -> None:
            with open(context.artifacts[RULES_ARTIFACT], encoding="utf-8") as handle:
                rules = PointsRules.from_json(handle.read())
            if FEATURES_ARTIFACT in context.artifacts:
                with open(context.artifacts[FEATURES_ARTIFACT], encoding="utf-8") as handle:
                    self.settings = FeatureSettings.from_dict(json.load(handle))
                self.rules = rules
            else:
                with open(context.artifacts[DERIVED_ARTIFACT], encoding="utf-8") as handle:
                    self.rules, self.settings = legacy_settings(rules, json.load(handle))
            self.columns = signature_columns(self.rules, self.settings)
            note = domain_lists_note(self.rules)
            if note:
                warnings.warn(note, stacklevel=2)

        def predict(self, context: Any, model_input,  # noqa: ANN001 - a frame or the dict form
                    params: dict[str, Any] | None = None) -> pd.DataFrame:
            leads, frame_events = model_tables(model_input)
            # the columns the model reads, as they are (other columns are ignored, as the input
            # schema of versions registered before made MLflow drop them)
            leads = leads[[c for c in self.columns if c in leads.columns]]
            events, as_of = predict_params(params)
            if frame_events is not None:
                events = frame_events
            return score_columns(self.rules, self.settings, leads, events=events, as_of=as_of)


def model_tables(model_input: Any) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(leads, events frame or None) from what ``predict`` was given: a leads frame, the dict
    ``{"leads": leads_df, "events": events_df}``, or that dict as MLflow's schema enforcement
    passes it on (one row whose cells hold the two frames)."""
    if isinstance(model_input, dict):
        if "leads" not in model_input:
            raise ValueError("the dict form of the input is {'leads': leads_df, 'events': "
                             f"events_df}}; got the keys {sorted(map(str, model_input))}")
        leads, events = model_input["leads"], model_input.get("events")
    elif (isinstance(model_input, pd.DataFrame) and len(model_input) == 1
          and "leads" in model_input.columns
          and isinstance(model_input["leads"].iloc[0], pd.DataFrame)):
        leads = model_input["leads"].iloc[0]
        events = model_input["events"].iloc[0] if "events" in model_input.columns else None
    else:  # a leads frame; the dict form's empty cells (a Spark UDF fills them) are dropped
        leads, events = model_input, None
        if isinstance(leads, pd.DataFrame):
            leads = leads.drop(columns=[c for c in (*TABLE_INPUTS, "_dict_input")
                                        if c in leads.columns and (c == "_dict_input"
                                                                   or leads[c].isna().all())])
    leads = leads if isinstance(leads, pd.DataFrame) else pd.DataFrame(leads)
    if events is not None and not isinstance(events, pd.DataFrame):
        events = None if _is_missing(events) else pd.DataFrame(events)
    return leads, events


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
