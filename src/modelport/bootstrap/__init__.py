"""The composition root: builds stores, the registry, servers and batch jobs from
Settings. It is the only package that chooses concrete back ends (SQL, fsspec, memory).

- ``stores``: the metadata and artifact stores, the registry, webhooks, the alert
  engine, and the database's revision and upgrade;
- ``servers``: the serving server's and the control plane's worker apps;
- ``sources``: a server's sources pinned at start, over the database or a control plane;
- ``batch``: batch scoring's package sources and jobs.

The names below are the ones the rest of modelport imports (and the server's workers
name as ``modelport.bootstrap:build_server_app``).
"""

from modelport.bootstrap.batch import fetch_registry_package, package_source, run_batch_job
from modelport.bootstrap.servers import (
    build_admission,
    build_control_app,
    build_prediction_log,
    build_server_app,
    build_server_auth,
    build_shadow_app,
    preload_server_app,
)
from modelport.bootstrap.sources import followed_registry, resolve_sources
from modelport.bootstrap.stores import (
    MEMORY_URI,
    build_alert_engine,
    build_registry,
    build_webhooks,
    create_artifact_store,
    create_metadata_store,
    database_revision,
    upgrade_database,
)

__all__ = [
    "MEMORY_URI",
    "build_admission",
    "build_alert_engine",
    "build_control_app",
    "build_prediction_log",
    "build_registry",
    "build_server_app",
    "build_shadow_app",
    "build_server_auth",
    "build_webhooks",
    "create_artifact_store",
    "create_metadata_store",
    "database_revision",
    "fetch_registry_package",
    "followed_registry",
    "package_source",
    "preload_server_app",
    "resolve_sources",
    "run_batch_job",
    "upgrade_database",
]
