"""``serve --monitor`` and ``ui --monitor`` refuse to start without alert rules, before
any server starts, saying where rules go."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from modelport.cli.main import cli
from modelport.errors import InvalidArgumentError


@pytest.mark.parametrize("command", [["serve", "churn/1"], ["ui"]])
def test_monitor_without_rules_is_refused_naming_where_they_go(
    command: list[str], isolated_home: Path
) -> None:
    done = CliRunner().invoke(cli, [*command, "--monitor", "--port", "0"])
    assert isinstance(done.exception, InvalidArgumentError)
    assert done.exception.field == "monitor.alerts"
    assert "--monitor has no rules to evaluate: add [monitor.alerts.NAME] tables" in str(
        done.exception
    )
