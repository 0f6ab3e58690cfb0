"""Benchmarks, probes and the results table: run from the repository root as ``python -m benchmarks.NAME``."""
