"""Benchmarks of the lead-scoring pipeline (``python -m bench.run``); never imported by it."""
