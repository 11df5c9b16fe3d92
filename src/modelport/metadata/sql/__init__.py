"""The metadata store on SQLAlchemy: SQLite on one machine, PostgreSQL when shared.

``SqlMetadataStore`` is the store; ``modelport.metadata.sql.schema`` holds the
migrations API (``upgrade``, ``check_schema``, ...) behind ``modelport db upgrade``.
"""

from __future__ import annotations

from modelport.metadata.sql.session import SqlMetadataSession
from modelport.metadata.sql.store import SqlMetadataStore

__all__ = ["SqlMetadataSession", "SqlMetadataStore"]
