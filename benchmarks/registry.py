"""Registry latency: register, resolve and load, on SQLite and PostgreSQL.

    python benchmarks/registry.py [--rounds 10] [--postgres-url URL]

Prints one table: median and p90 milliseconds per operation and back end, for a
scikit-learn pipeline (scaler + logistic regression on 30 features, 426 training
rows, the quickstart model). Each back end starts from an empty database in a
temporary directory (PostgreSQL: a fresh schema, dropped afterwards).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import NullPool, create_engine, make_url, text

from modelport.cli.quickstart import train_demo_model
from modelport.config import Settings
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema on the server at ``url``, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def timed(action: Callable[[], Any], rounds: int) -> list[float]:
    """Milliseconds of each of ``rounds`` calls."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def measure(registry: RegistryService, rounds: int) -> dict[str, list[float]]:
    """Samples for each operation on one registry."""
    model, x_train, x_test, metrics, _ = train_demo_model()
    options = PackageOptions(sample_input=x_train, metrics=metrics)
    registry.register(model, "bench", options)  # warm imports before timing
    registry.promote("bench", 1, "production")
    rows = x_test.head(1)

    def load_and_predict() -> None:
        with registry.load("bench@production") as loaded:
            loaded.predict(rows)

    return {
        "register (package + upload + commit)": timed(
            lambda: registry.register(model, "bench", options), rounds
        ),
        "resolve bench@production": timed(lambda: registry.resolve("bench@production"), rounds),
        "load + predict 1 row": timed(load_and_predict, rounds),
        "search metrics.auc > 0.9": timed(
            lambda: registry.search_versions("metrics.auc > 0.9"), rounds
        ),
    }


def run_backend(name: str, database_url: str, rounds: int) -> dict[str, list[float]]:
    """Measure on a fresh registry using ``database_url`` with local artifacts."""
    from modelport.bootstrap import build_registry

    with tempfile.TemporaryDirectory(prefix=f"modelport-bench-{name}-") as home:
        settings = Settings(home=Path(home), database_url=database_url)
        with build_registry(settings) as registry:
            return measure(registry, rounds)


def print_table(results: dict[str, dict[str, list[float]]]) -> None:
    """One row per operation and back end."""
    print(f"{'operation':<40} {'backend':<10} {'median ms':>10} {'p90 ms':>10}")
    for backend, operations in results.items():
        for operation, samples in operations.items():
            ordered = sorted(samples)
            p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
            median = statistics.median(ordered)
            print(f"{operation:<40} {backend:<10} {median:>10.1f} {p90:>10.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        results["sqlite"] = run_backend(
            "sqlite", f"sqlite:///{Path(scratch) / 'bench.db'}", args.rounds
        )
    with postgres_schema(args.postgres_url) as url:
        results["postgres"] = run_backend("postgres", url, args.rounds)
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
