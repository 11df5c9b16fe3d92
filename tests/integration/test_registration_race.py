"""Registrations racing for the same model, through the public API: in threads and in
separate processes, on SQLite and on PostgreSQL. Every one gets its own number and none
is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import modelport
from modelport.config import Settings

SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    import modelport

    start, count, worker = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    X = np.random.default_rng(worker).normal(size=(40, 3))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    while not start.exists():  # start together, to make the race real
        time.sleep(0.01)
    for i in range(count):
        v = modelport.register(model, "raced", sample_input=X, tags={"writer": f"{worker}-{i}"})
        print(v.version)
    """
)


def _settings_env(database_url: str, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MODELPORT_HOME": str(home),
        "MODELPORT_DATABASE_URL": database_url,
        "MODELPORT_ARTIFACTS_URI": str(home / "shared-artifacts"),
    }


def _url(request: pytest.FixtureRequest, backend: str) -> str:
    fixture = "sqlite_url" if backend == "sqlite" else "postgres_schema_url"
    url: str = request.getfixturevalue(fixture)
    return url


def _assert_all_registered(settings: Settings, expected: int) -> None:
    versions = modelport.list_versions("raced", settings=settings)
    assert sorted(v.version for v in versions) == list(range(1, expected + 1))
    assert len({v.tags["writer"] for v in versions}) == expected
    for version in versions:  # every version's files are there and verify
        with modelport.load(version.ref, settings=settings) as loaded:
            assert loaded.predict(np.zeros((1, 3))).shape == (1,)


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_processes_racing(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> None:
    url = _url(request, backend)
    env = _settings_env(url, tmp_path)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    start = tmp_path / "start"
    workers, each = 2, 3
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(start), str(each), str(w)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    start.touch()
    numbers = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        numbers += [int(line) for line in out.split()]
    assert sorted(numbers) == list(range(1, workers * each + 1))
    settings = Settings(database_url=url, artifacts_uri=str(tmp_path / "shared-artifacts"))
    _assert_all_registered(settings, workers * each)


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_threads_racing(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    url = _url(request, backend)
    settings = Settings(database_url=url, artifacts_uri=str(tmp_path / "artifacts"))
    X = np.random.default_rng(0).normal(size=(40, 3))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    with modelport.connect(settings) as registry:
        from modelport.package.options import PackageOptions

        def register(worker: int) -> int:
            options = PackageOptions(sample_input=X, tags={"writer": str(worker)})
            return registry.register(model, "raced", options).version

        with ThreadPoolExecutor(max_workers=4) as pool:
            numbers = list(pool.map(register, range(8)))
    assert sorted(numbers) == list(range(1, 9))
    _assert_all_registered(settings, 8)
