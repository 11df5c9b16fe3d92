"""Two ``modelport deploy controller`` processes over one real PostgreSQL database drive a
detached rollout to the end on logged traffic, each step decided once, and stop on
SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelport.bootstrap import build_registry
from modelport.config import Settings
from modelport.domain.entities import NewVersion
from modelport.registry.service import RegistryService
from testing_process import MODELPORT, env_for
from testing_traffic import logged_traffic

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow, pytest.mark.postgres]
WAIT_S = 90


@contextmanager
def traffic(home: Path) -> Iterator[None]:
    """Versions 3 and 4 of churn answer requests, logged as they come, until the block ends."""
    with logged_traffic(str(home / "predictions"), pause_s=0.05):
        yield


def add_versions(registry: RegistryService, name: str, count: int) -> None:
    """Version rows 1..count of ``name`` (a rollout needs only the rows, not packages)."""
    now = datetime.now(UTC)
    with registry.metadata.transaction() as tx:
        tx.ensure_model(name, description="", tags={}, now=now)
        for _ in range(count):
            number = tx.allocate_version(name, now=now)
            tx.create_version(
                number,
                NewVersion(
                    name=name, flavor="sklearn", artifact_key=f"{name}/{number}",
                    manifest_digest="sha256:" + "0" * 64, created_by="ops", created_at=now,
                ),
            )  # fmt: skip


def champion_version(registry: RegistryService) -> int:
    return registry.get_deployment("churn").champion.version


def test_two_controller_processes_decide_each_step_once(
    isolated_home: Path, postgres_schema_url: str, tmp_path: Path
) -> None:
    env = env_for(
        isolated_home,
        MODELPORT_DATABASE_URL=postgres_schema_url,
        MODELPORT_GATES__TARGETS="[]",  # versions without packages: no gate could pass them
        MODELPORT_ROLLOUT__POLL_INTERVAL="50ms",
        MODELPORT_USER="ops",
    )
    settings = Settings(home=isolated_home, database_url=postgres_schema_url)
    with build_registry(settings) as registry:
        add_versions(registry, "churn", 4)
        registry.create_deployment("churn", 3)
        started = subprocess.run(
            [str(MODELPORT), "deploy", "rollout", "churn", "--version", "4", "--detach",
             "--interval", "300ms", "--bake", "300ms", "--min-requests", "5", "--json"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        outputs = [tmp_path / f"controller-{i}.jsonl" for i in range(2)]
        with ExitStack() as stack, traffic(isolated_home):
            processes = [
                stack.enter_context(
                    subprocess.Popen(
                        [str(MODELPORT), "deploy", "controller", "--json"],
                        env=env, stdout=stack.enter_context(out.open("w")),
                        stderr=subprocess.PIPE, text=True,
                    )
                )
                for out in outputs
            ]  # fmt: skip
            deadline = time.monotonic() + WAIT_S
            while champion_version(registry) != 4 and time.monotonic() < deadline:
                time.sleep(0.2)
            for process in processes:
                process.send_signal(signal.SIGTERM)
            codes = [process.wait(30) for process in processes]
        assert champion_version(registry) == 4
        assert codes == [0, 0], [p.stderr.read() if p.stderr else "" for p in processes]
        actions = [e.action for e in reversed(registry.deployment_history("churn"))]
    assert actions == [
        "deployment.create", "rollout.start", "rollout.advance", "rollout.advance",
        "rollout.promote", "deployment.promote",
    ]  # fmt: skip
    decided = [
        json.loads(line)["decision"]["verdict"]
        for out in outputs
        for line in out.read_text().splitlines()
        if json.loads(line).get("decision")
    ]
    assert sorted(v for v in decided if v != "wait") == ["advance", "advance", "advance"]
