"""The audit of rule sets as a report section (``lead-scoring audit --report``)."""

from __future__ import annotations

from pipeline.model.audit import AuditResult
from pipeline.reports.page import Section


def audit_section(result: AuditResult, notes: list[str] | tuple[str, ...] = ()) -> Section:
    """The figures of every table side by side (one row per table) and their
    contradictions with the lift evidence, keyed ``audit``."""
    paragraphs = [
        f"Each rule set scored as it is on the same {result.holdout_leads:,} holdout leads "
        f"(base rate {result.holdout_rate:.1%}). Calibrated Brier: points mapped to a "
        "probability by a logistic fit on the training leads. Close rate at volume: the "
        f"{result.volume:,} best-scored leads of each table ({result.reference}'s SDR-ready "
        "volume), ties at the cut counted in proportion. A contradiction is a level whose "
        "own lift is significant on the training leads while its points lie on the other "
        "side of its factor's average.", *notes]
    tables = [("Rule sets side by side", result.summary)]
    if len(result.contradictions):
        tables.append(("Contradictions with the lift evidence", result.contradictions))
    return Section("Audit of rule sets", paragraphs, tables, key="audit")
