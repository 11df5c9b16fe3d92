"""Archived is a status, not an alias: drop the ``archived`` alias rows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 10:00:00

Before this revision, archiving a version set its status to ``archived`` *and* moved an
``archived`` alias to it, so the alias pointed at the most recently archived version
only and ``stage = archived`` found one version where ``status = archived`` found all.
The status is what the registry keeps now. The upgrade first makes sure every version
the alias pointed at has the ``archived`` status (so nothing it recorded is lost), then
deletes the alias rows. No table changes. The downgrade puts one ``archived`` alias
back on each model's highest-numbered archived version (the old schema cannot record
more than one).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain SQL that SQLite and PostgreSQL both read; no application code, so that this
# migration never changes when the application does.
_MARK_ARCHIVED = sa.text(
    """
    UPDATE model_versions SET status = 'archived'
    WHERE EXISTS (
        SELECT 1 FROM model_aliases
        WHERE model_aliases.model_id = model_versions.model_id
          AND model_aliases.version = model_versions.version
          AND model_aliases.alias = 'archived'
    )
    """
)
_DROP_ALIASES = sa.text("DELETE FROM model_aliases WHERE alias = 'archived'")
_RESTORE_ALIASES = sa.text(
    """
    INSERT INTO model_aliases (model_id, alias, version)
    SELECT model_id, 'archived', MAX(version) FROM model_versions
    WHERE status = 'archived'
    GROUP BY model_id
    """
)


def upgrade() -> None:
    """Keep the status of every version the ``archived`` alias named; drop the alias."""
    op.execute(_MARK_ARCHIVED)
    op.execute(_DROP_ALIASES)


def downgrade() -> None:
    """Point an ``archived`` alias at each model's highest-numbered archived version."""
    op.execute(_RESTORE_ALIASES)
