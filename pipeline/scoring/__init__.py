"""Scoring: a points table applied to leads, in memory, in batches from files, on DuckDB
or Spark, and as the MLflow pyfunc model; drift of the scores."""

from pipeline.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "score_frame": "pipeline.scoring.frame",
    "reason_codes": "pipeline.scoring.frame",
    "reason_pieces": "pipeline.scoring.frame",
    "read_scored": "pipeline.scoring.output",
    "score_file": "pipeline.scoring.batch",
    "iter_batches": "pipeline.scoring.input_batches",
    "score_batch": "pipeline.scoring.batch_scoring",
    "factor_points": "pipeline.scoring.factor_lookup",
    "points_matrix": "pipeline.scoring.factor_lookup",
    "account_rollup": "pipeline.scoring.accounts",
    "ScoringSummary": "pipeline.scoring.batch",
    "score_duckdb": "pipeline.scoring.duckdb_engine",
    "score_spark": "pipeline.scoring.spark_engine",
    "LeadScoringModel": "pipeline.scoring.serving",
    "drift_report": "pipeline.scoring.drift",
})
