"""Batch scoring: files of any size on one machine, and on Dask, Ray or Spark."""
