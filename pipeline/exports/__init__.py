"""Exports: the points table as JSON, CSV, SQL, PMML, Python and CRM rule sheets, and the
parity check of each against ``lead-scoring score``."""

from pipeline.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "export_json": "pipeline.exports.formats",
    "export_csv": "pipeline.exports.formats",
    "export_sql": "pipeline.exports.formats",
    "export_pmml": "pipeline.exports.formats",
    "export_python": "pipeline.exports.formats",
    "export_hubspot": "pipeline.exports.formats",
    "export_crm_csv": "pipeline.exports.formats",
    "export_all": "pipeline.exports.formats",
    "verify_exports": "pipeline.exports.verify",
})
