"""Dashboard page times over a large registry: 1,000 models x 10 versions on SQLite.

    python benchmarks/ui.py [--models 1000] [--versions 10] [--rounds 20]

Builds a registry in a temporary directory (version rows with metrics, params and tags,
a production alias per model, an audit entry per version, 50 deployments with a canary,
and one real scikit-learn package whose page reads its manifest), then asks each
dashboard page ``--rounds`` times through the control plane's ASGI app in process
(``modelport ui``'s app, keys off) and prints the median and p95 milliseconds per page:
the server's time, without a network or a browser. The target is under 200 ms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.testclient import TestClient

from modelport.bootstrap import build_control_app, build_registry
from modelport.cli.quickstart import train_demo_model
from modelport.config import Settings
from modelport.domain.entities import NewAuditEntry, NewVersion
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService

TARGET_MS = 200.0
DEPLOYMENTS = 50


def fill(registry: RegistryService, models: int, versions: int) -> None:
    """``models`` x ``versions`` version rows (no packages), aliases and audit entries."""
    start = datetime.now(UTC) - timedelta(days=30)
    with registry.metadata.transaction() as tx:
        for m in range(models):
            name = f"model-{m:04d}"
            now = start + timedelta(minutes=m)
            tx.ensure_model(name, description=f"benchmark model {m}", tags={"team": "t"}, now=now)
            for v in range(versions):
                number = tx.allocate_version(name, now=now)
                tx.create_version(
                    number,
                    NewVersion(
                        name=name,
                        flavor="sklearn",
                        artifact_key=f"{name}/{number}",
                        manifest_digest="0" * 64,
                        created_by="bench",
                        created_at=now + timedelta(seconds=v),
                        metrics={"accuracy": 0.8 + (m % 17 + v) / 200, "auc": 0.9},
                        params={"max_depth": str(v + 2)},
                        tags={"data": "2026-01"},
                    ),
                )
                tx.add_audit(NewAuditEntry("bench", "version.create", name, now, version=number))
            tx.set_alias(name, "production", versions)
    for d in range(DEPLOYMENTS):
        name = f"model-{d:04d}"
        registry.create_deployment(name, 1)
        registry.deploy_canary(name, 2, 10)


def timed(client: TestClient, path: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(home=Path(directory))
        started = time.perf_counter()
        with build_registry(settings) as registry:
            fill(registry, args.models, args.versions)
            model, frame, _, metrics, params = train_demo_model()
            options = PackageOptions(sample_input=frame, metrics=metrics, params=params)
            registry.register(model, "quickstart", options)
        print(
            f"registry: {args.models:,} models x {args.versions} versions on SQLite, "
            f"built in {time.perf_counter() - started:.0f} s; {args.rounds} rounds per page"
        )
        app = build_control_app(
            settings, [], worker_index=0, workers=1, on_ready=lambda: None, on_failed=print
        )
        middle = f"model-{args.models // 2:04d}"
        pages = [
            "/ui/models",
            "/ui/models?sort=updated&order=desc&page=20",
            "/ui/models?q=metrics.accuracy+%3E+0.85+AND+params.max_depth+%3D+'5'",
            f"/ui/models/{middle}",
            "/ui/models/quickstart",
            "/ui/deployments",
            "/ui/deployments/model-0010",
            "/ui/monitoring",
            "/ui/monitoring/quickstart?since=24h",
            "/ui/audit",
            "/ui/audit?action=version.&model=model-0500",
        ]
        with TestClient(app.asgi) as client:
            for path in pages:
                client.get(path)  # first requests pay the imports and the caches
            print(f"{'page':<72} {'median ms':>10} {'p95 ms':>8}")
            for path in pages:
                times = sorted(timed(client, path, args.rounds))
                p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
                flag = "" if p95 < TARGET_MS else "  over target"
                print(f"{path:<72} {statistics.median(times):>10.1f} {p95:>8.1f}{flag}")


if __name__ == "__main__":
    main()
