"""What the Audit page shows: the registry's audit trail, filtered by model, action
(a prefix: ``deployment.`` or ``alias.set``), actor and time, newest first."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from modelport.domain.entities import AuditEntry
from modelport.monitoring.windows import parse_since
from modelport.registry.service import RegistryService
from modelport.ui.tables import Column

# Entries read for one view: the newest, when the trail is longer (a model or a time
# filter, applied by the store, reaches older ones).
AUDIT_LIMIT = 1000
AUDIT_COLUMNS = (
    Column("time", "Time", lambda e: (e.timestamp, e.id)),
    Column("actor", "Actor", lambda e: e.actor),
    Column("action", "Action", lambda e: e.action),
    Column("model", "Model", lambda e: (e.model, e.version or 0)),
)


def audit_rows(
    registry: RegistryService, query: Mapping[str, str], readable: Callable[[str], bool]
) -> tuple[list[AuditEntry], bool]:
    """The entries the filters in ``query`` keep, of models the viewer may read, and
    whether older entries were left unread (``AUDIT_LIMIT``)."""
    model = query.get("model", "").strip() or None
    since_text = query.get("since", "").strip()
    since = parse_since(since_text) if since_text else None
    action = query.get("action", "").strip()
    actor = query.get("actor", "").strip().lower()
    entries = registry.get_audit_log(model, since=since, limit=AUDIT_LIMIT)
    kept = [
        e
        for e in entries
        if readable(e.model)
        and (not action or e.action.startswith(action))
        and (not actor or actor in e.actor.lower())
    ]
    return kept, len(entries) >= AUDIT_LIMIT
