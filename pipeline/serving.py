"""The MLflow pyfunc model: a points table that returns the score columns.

``mlflow.pyfunc.load_model("models:/lead-scoring@champion").predict(df)`` takes a per-lead
table (the factor columns; raw email / name / title columns are turned into the derived
signals when present) and returns ``points, fit, pain, probability, sdr_ready, grade,
reason_codes``.

The model is logged "from code" (:data:`MODEL_CODE`): the registry stores a two-line script
that builds :class:`LeadScoringModel` plus the points table as a JSON artifact, never a pickle.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow.pyfunc
import pandas as pd

from pipeline.rules import PointsRules

RULES_ARTIFACT = "points_rules"
DERIVED_ARTIFACT = "derived_settings"
SCORE_COLUMNS = ["points", "fit", "pain", "probability", "sdr_ready", "grade", "reason_codes"]
MODEL_CODE = (
    '"""MLflow models-from-code entry point of the lead-scoring pyfunc model."""\n'
    "import mlflow.models\n\n"
    "from pipeline.serving import LeadScoringModel\n\n"
    "mlflow.models.set_model(LeadScoringModel())\n"
)


def derive_missing_signals(frame: pd.DataFrame, rules: PointsRules, derived: dict[str, Any]
                           ) -> pd.DataFrame:
    """Add derived profile columns the rules need but the input lacks (from raw columns)."""
    from pipeline import signals
    from pipeline.features import EMAIL_TYPE, NAME_SPAM, SENIORITY

    needed = set(rules.factor_names()) - set(frame.columns)
    if not needed:
        return frame
    frame = frame.copy()
    email, names, title = derived.get("email_column"), derived.get("name_columns") or [], \
        derived.get("title_column")
    if EMAIL_TYPE in needed and email in frame.columns:
        lists = signals.load_domain_lists(
            extra_free=tuple(derived.get("extra_free_domains") or ()),
            extra_disposable=tuple(derived.get("extra_disposable_domains") or ()))
        frame[EMAIL_TYPE] = signals.email_domain_types(frame[email], lists)
    present = [c for c in names if c in frame.columns]
    if NAME_SPAM in needed and present:
        last = frame[present[1]] if len(present) > 1 else pd.Series([None] * len(frame),
                                                                      index=frame.index)
        flags = signals.spam_flags(frame[present[0]], last)
        frame[NAME_SPAM] = flags.map({True: "yes", False: "no"}).astype(object)
    if SENIORITY in needed and title in frame.columns:
        frame[SENIORITY] = signals.seniorities(frame[title])
    return frame


def raw_signal_columns(derived: dict[str, Any]) -> list[str]:
    """The raw columns the derived signals are computed from (optional model inputs)."""
    columns = [derived.get("email_column"), *(derived.get("name_columns") or []),
               derived.get("title_column")]
    return [c for c in columns if c]


def score_columns(rules: PointsRules, derived: dict[str, Any], frame: pd.DataFrame
                  ) -> pd.DataFrame:
    """The pyfunc output for ``frame``: exactly :data:`SCORE_COLUMNS`, one row per input row.

    Raises ``ValueError`` naming the factor columns that are neither given nor derivable.
    """
    from pipeline.scoring import score_frame

    frame = derive_missing_signals(frame, rules, derived)
    absent = [name for name in rules.factor_names() if name not in frame.columns]
    if absent:
        raw = raw_signal_columns(derived)
        raise ValueError(f"the input lacks columns the points table needs: {absent}"
                         + (f" (derived signals can come from the raw columns {raw})"
                            if raw else ""))
    scores = score_frame(rules, frame, reasons=True)
    if derived.get("spam_gate") and "name_spam" in frame.columns:
        gate = frame["name_spam"].astype(str).eq("yes").to_numpy()
        scores["sdr_ready"] = scores["sdr_ready"].to_numpy() & ~gate
    if "grade" not in scores.columns:
        scores["grade"] = ""
    return scores[SCORE_COLUMNS].reset_index(drop=True)


class LeadScoringModel(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper around :func:`score_columns` (rules and settings read from artifacts)."""

    def load_context(self, context: Any) -> None:
        with open(context.artifacts[RULES_ARTIFACT], encoding="utf-8") as handle:
            self.rules = PointsRules.from_json(handle.read())
        with open(context.artifacts[DERIVED_ARTIFACT], encoding="utf-8") as handle:
            self.derived = json.load(handle)

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return score_columns(self.rules, self.derived, frame)
