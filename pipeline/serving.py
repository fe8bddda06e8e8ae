"""The MLflow pyfunc model: a points table that returns the score columns.

``mlflow.pyfunc.load_model("models:/lead-scoring@champion").predict(df)`` takes a per-lead
table (the factor columns; raw email / name / title columns are turned into the derived
signals when present) and returns ``points, fit, pain, probability, sdr_ready, grade,
reason_codes``.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow.pyfunc
import pandas as pd

from pipeline.rules import PointsRules

RULES_ARTIFACT = "points_rules"
DERIVED_ARTIFACT = "derived_settings"


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


class LeadScoringModel(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper around :func:`pipeline.scoring.score_frame`."""

    def load_context(self, context: Any) -> None:
        with open(context.artifacts[RULES_ARTIFACT], encoding="utf-8") as handle:
            self.rules = PointsRules.from_json(handle.read())
        with open(context.artifacts[DERIVED_ARTIFACT], encoding="utf-8") as handle:
            self.derived = json.load(handle)

    def predict(self, context, model_input, params=None):  # noqa: ANN001 - pyfunc signature
        from pipeline.scoring import score_frame

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        frame = derive_missing_signals(frame, self.rules, self.derived)
        if self.derived.get("spam_gate") and "name_spam" in frame.columns:
            gate = frame["name_spam"].astype(str).eq("yes").to_numpy()
        else:
            gate = None
        scores = score_frame(self.rules, frame, reasons=True)
        if gate is not None:
            scores["sdr_ready"] = scores["sdr_ready"].to_numpy() & ~gate
        if "grade" not in scores.columns:
            scores["grade"] = ""
        columns = ["points", "fit", "pain", "probability", "sdr_ready", "grade", "reason_codes"]
        return scores[columns].reset_index(drop=True)
