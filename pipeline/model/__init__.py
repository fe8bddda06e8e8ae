"""Model: encode, fit (with the trust constraints), scale to integer points, choose the
SDR-ready threshold, evaluate; the points table (:class:`PointsRules`) is the contract."""

from pipeline.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "FactorEncoder": "pipeline.model.encoding",
    "fit_regularised": "pipeline.model.fit",
    "PointsScorecard": "pipeline.model.points",
    "choose_threshold": "pipeline.model.threshold",
    "ThresholdChoice": "pipeline.model.threshold",
    "signal_check": "pipeline.model.evaluate",
    "holdout_split": "pipeline.model.evaluate",
    "cross_validate": "pipeline.model.cross_validation",
    "TrainResult": "pipeline.model.train",
    "PointsRules": "pipeline.model.rules",
    "FactorRules": "pipeline.model.rules",
    "trust_table": "pipeline.model.trust",
    "audit_tables": "pipeline.model.audit",
    "AuditResult": "pipeline.model.audit",
})
