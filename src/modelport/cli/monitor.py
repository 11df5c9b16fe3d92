"""``modelport monitor ...``: what the prediction log says about served models.

This module holds the group; the commands register on it from their own modules.
"""

from __future__ import annotations

import click

from modelport.cli import monitor_alerts


@click.group()
def monitor() -> None:
    """Monitoring over the prediction log: alert rules and their history."""


monitor_alerts.register(monitor)
