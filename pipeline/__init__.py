"""lead-scoring: learn FIT + PAIN point tables from won/lost leads.

The Python API (names load on first use)::

    import pipeline
    cfg = pipeline.load_config("configs/demo.yaml")
    run = pipeline.train_and_register(cfg, out=None)   # what `lead-scoring train` does
    scored = pipeline.score_frame(features, run.rules)  # a feature frame -> points
    model = pipeline.load_model("models:/lead-scoring@champion")
    model.predict(pd.read_csv("leads.csv"))             # raw leads -> points

The stages walk the data through the sub-packages ``inputs`` -> ``analysis`` -> ``model`` ->
``scoring`` / ``exports``, with ``registry``, ``reports`` and ``cli`` at the edges.
"""

from pipeline.lazy import lazy_exports

__version__ = "0.1.0"

__all__, __getattr__ = lazy_exports(__name__, {
    "load_config": "pipeline.config",
    "Config": "pipeline.config",
    "read_leads": "pipeline.inputs.intake",
    "build_features": "pipeline.inputs.features",
    "scoring_features": "pipeline.inputs.features",
    "train": "pipeline.model.train",
    "cross_validate": "pipeline.model.cross_validation",
    "PointsScorecard": "pipeline.model.points",
    "PointsRules": "pipeline.model.rules",
    "train_and_register": "pipeline.workflow",
    "score_frame": "pipeline.scoring.frame",
    "score_file": "pipeline.scoring.batch",
    "connect": "pipeline.registry.store",
    "load_model": "pipeline.registry.store",
})
