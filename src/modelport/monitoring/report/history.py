"""The alert history a report shows: the state changes of a model's alert rules, read
from the metadata store where the alert evaluators record them."""

from __future__ import annotations

from datetime import datetime

from modelport.domain.refs import parse_ref_or_name
from modelport.metadata.store import MetadataStore
from modelport.monitoring.report.build import AlertSource
from modelport.monitoring.report.model import AlertEvent

# Newest events read per report; a window with more state changes shows the newest.
EVENT_LIMIT = 1000


def alert_source(store: MetadataStore, model: str, *, limit: int = EVENT_LIMIT) -> AlertSource:
    """``alerts(since, until)`` for ``Sources``: the events of every rule watching a
    version or alias of ``model`` (a rule's model is a reference such as
    ``churn@production``), newest first."""

    def read(since: datetime, until: datetime) -> list[AlertEvent]:
        with store.reader() as session:
            events = session.list_alert_events(limit=limit)
        return [
            AlertEvent(
                time=event.time,
                rule=event.rule,
                state=str(event.to_status),
                value=event.value,
                message=event.message,
                previous=str(event.from_status),
            )
            for event in events
            if since <= event.time < until and parse_ref_or_name(event.model).name == model
        ]

    return read
