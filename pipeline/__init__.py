"""lead-scoring: learn FIT + PAIN point tables from won/lost leads."""

__version__ = "0.1.0"
