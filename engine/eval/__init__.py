"""Metrics and benchmarks (tempo, loudness, sync to cuts, ...)."""
