"""Inputs: read a lead file, join lookups, label outcomes, validate, derive signals and
event features: raw leads (+ events) -> the per-lead feature frame."""

from pipeline.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "read_table": "pipeline.inputs.reader",
    "ReadOptions": "pipeline.inputs.reader",
    "read_leads": "pipeline.inputs.intake",
    "Outcome": "pipeline.inputs.labels",
    "validate_leads": "pipeline.inputs.validate",
    "ValidatedLeads": "pipeline.inputs.validate",
    "email_domain_type": "pipeline.inputs.email_domains",
    "seniority": "pipeline.inputs.job_titles",
    "spam_flags": "pipeline.inputs.spam_names",
    "aggregate_events": "pipeline.inputs.events",
    "run_event_sql": "pipeline.inputs.event_engines",
    "build_features": "pipeline.inputs.features",
    "scoring_features": "pipeline.inputs.features",
    "FeatureSet": "pipeline.inputs.features",
    "FeatureSettings": "pipeline.inputs.features",
    "MissingEventsError": "pipeline.inputs.features",
    "generate_demo_data": "pipeline.inputs.demo_data",
    "write_demo_data": "pipeline.inputs.demo_data",
})
