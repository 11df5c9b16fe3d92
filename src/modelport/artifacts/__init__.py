"""Artifact stores: where package files live (local disk, memory, fsspec object stores)."""
