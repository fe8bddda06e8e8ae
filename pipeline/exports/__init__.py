"""Exports: the points table as JSON, CSV, SQL, PMML, Python and CRM rule sheets, and the
parity check of each against ``lead-scoring score``.

One module per format: :mod:`~pipeline.exports.table` (the flat rule list every format reads,
``json``, ``csv``), :mod:`~pipeline.exports.sql`, :mod:`~pipeline.exports.pmml`,
:mod:`~pipeline.exports.python`, :mod:`~pipeline.exports.hubspot`,
:mod:`~pipeline.exports.crm_sheet` (``crm-csv``); :mod:`~pipeline.exports.files` renders and
writes any of them by name, :mod:`~pipeline.exports.diff` compares two points tables,
:mod:`~pipeline.exports.verify` checks the executable ones lead by lead and
:mod:`~pipeline.exports.simulator` scores a HubSpot rule set as HubSpot would;
:mod:`~pipeline.exports.importers` reads rule sets back (their event criteria through
:mod:`~pipeline.exports.event_import`). The derived
signals in SQL and Python: :mod:`~pipeline.exports.signals_sql`,
:mod:`~pipeline.exports.signals_py`.
"""

from pipeline.lazy import lazy_exports

_TABLE = "pipeline.exports.table"
_SQL = "pipeline.exports.sql"
_FILES = "pipeline.exports.files"

__all__, __getattr__ = lazy_exports(__name__, {
    "Rule": _TABLE,
    "SCHEMA_VERSION": _TABLE,
    "factor_rules": _TABLE,
    "format_number": _TABLE,
    "rules_table": _TABLE,
    "points_table_schema": _TABLE,
    "export_json": _TABLE,
    "export_csv": _TABLE,
    "SQL_DIALECTS": _SQL,
    "check_sql_rules": _SQL,
    "export_sql": _SQL,
    "sql_factor_points": _SQL,
    "sql_identifier": _SQL,
    "sql_score_totals": _SQL,
    "sql_string": _SQL,
    "PMML_NAMESPACE": "pipeline.exports.pmml",
    "export_pmml": "pipeline.exports.pmml",
    "pmml_output_names": "pipeline.exports.pmml",
    "export_python": "pipeline.exports.python",
    "HUBSPOT_NOTES": "pipeline.exports.hubspot",
    "export_hubspot": "pipeline.exports.hubspot",
    "CRM_COLUMNS": "pipeline.exports.crm_sheet",
    "crm_rules": "pipeline.exports.crm_sheet",
    "crm_zero_rules": "pipeline.exports.crm_sheet",
    "export_crm_csv": "pipeline.exports.crm_sheet",
    "FORMATS": _FILES,
    "FILE_NAMES": _FILES,
    "export": _FILES,
    "export_all": _FILES,
    "safe_output_path": _FILES,
    "write_export": _FILES,
    "DIFF_COLUMNS": "pipeline.exports.diff",
    "diff_rules": "pipeline.exports.diff",
    "HUBSPOT_MAX_SCORE": "pipeline.exports.hubspot",
    "hubspot_max_score": "pipeline.exports.hubspot",
    "simulate_hubspot": "pipeline.exports.simulator",
    "crm_properties": "pipeline.exports.simulator",
    "verify_exports": "pipeline.exports.verify",
    "check_export_input": "pipeline.exports.verify",
    "ImportedRules": "pipeline.exports.importers",
    "parse_rules": "pipeline.exports.importers",
    "read_rules": "pipeline.exports.importers",
    "event_counts": "pipeline.exports.event_criteria",
    "simulate_event_points": "pipeline.exports.event_criteria",
    "EventCollector": "pipeline.exports.event_import",
})
