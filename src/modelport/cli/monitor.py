"""``modelport monitor ...``: watching deployed models.

Each command lives in its own module (``monitor_report`` ...) and is registered here.
"""

from __future__ import annotations

import click

from modelport.cli.monitor_report import report


@click.group()
def monitor() -> None:
    """Drift, live performance, alerts and reports of served models."""


monitor.add_command(report)
