"""Serving: loaded models, micro-batching, hot swap, limits."""
