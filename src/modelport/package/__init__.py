"""The on-disk model package: manifest, digests, safe loading, reference statistics."""
