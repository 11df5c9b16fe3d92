"""The model registry: versions, aliases and stages, search, and the audit trail."""
