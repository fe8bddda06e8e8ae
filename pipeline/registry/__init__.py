"""Registry: the MLflow store: log a training, resolve ``models:/name@alias``, the promotion
gate and the audit trail."""

from pipeline.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "ModelRef": "pipeline.registry.store",
    "connect": "pipeline.registry.store",
    "resolve": "pipeline.registry.store",
    "load_rules": "pipeline.registry.store",
    "promote": "pipeline.registry.aliases",
    "history": "pipeline.registry.aliases",
    "gate_decision": "pipeline.registry.aliases",
})
