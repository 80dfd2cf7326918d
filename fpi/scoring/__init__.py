"""Scoring traces with a model: a frame in memory, a file in or out of core, on Dask."""
