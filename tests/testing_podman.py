"""podman for the image tests: a working configuration on this machine, and a Debian
base image made locally (there is no image registry to pull from).

The base is ``localhost/modelport-test-base:bookworm``: Debian bookworm from
``mmdebstrap`` with python3 and python3-venv, imported into podman. It is kept between
runs (making it takes a minute or two), so CI on one machine makes it once.

Some machines run containers only with a few settings podman does not choose by
itself: hybrid cgroups (crun refuses them, runc does not) and a hard open-files limit
below podman's default ulimits. When a plain ``podman run`` fails, the tests retry
with a ``containers.conf`` of their own (runc, ulimits within this process's limits),
passed through ``CONTAINERS_CONF`` to every podman call, ``modelport build --build``'s
included. Where podman still cannot run a container, the tests skip, saying why.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from pathlib import Path

import pytest

BASE_IMAGE = "localhost/modelport-test-base:bookworm"
INSTALL = "apt-get install -y podman mmdebstrap runc"
_BASE_PACKAGES = "python3,python3-venv,ca-certificates"
# Documentation and translations are not needed to run Python: a smaller base.
_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")


def podman(
    *args: str, env: dict[str, str], timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS`` (bounded in time); its output, failing on an error when
    ``check``."""
    done = subprocess.run(
        ["podman", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} failed ({done.returncode}): {done.stderr[-3000:]}")
    return done


def podman_env(scratch: Path) -> dict[str, str]:
    """The environment under which podman runs containers here, making the base image
    first if needed; skips the test, naming why, where podman cannot run one."""
    if shutil.which("podman") is None:
        pytest.skip(f"podman is not installed ({INSTALL}; .ci/run does)")
    env = dict(os.environ)
    ensure_base_image(env)
    failure = _try_container(env)
    if failure is None:
        return env
    env["CONTAINERS_CONF"] = str(_write_conf(scratch / "containers.conf"))
    second = _try_container(env)
    if second is not None:
        pytest.skip(f"podman cannot run a container here: {failure}; with runc: {second}")
    return env


def ensure_base_image(env: dict[str, str]) -> None:
    """Make ``BASE_IMAGE`` with mmdebstrap unless podman has it already."""
    if podman("image", "exists", BASE_IMAGE, env=env, check=False).returncode == 0:
        return
    if shutil.which("mmdebstrap") is None:
        pytest.skip(f"mmdebstrap is not installed to make the base image ({INSTALL})")
    excludes = " ".join(f"--dpkgopt=path-exclude={path}" for path in _EXCLUDES)
    script = (
        f"set -o pipefail; mmdebstrap --quiet --variant=apt --include={_BASE_PACKAGES} "
        f"{excludes} bookworm - | podman import - {BASE_IMAGE}"
    )
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"could not make the Debian base image with mmdebstrap: {done.stderr[-2000:]}")


def _try_container(env: dict[str, str]) -> str | None:
    """None when podman runs a container; else why not."""
    done = podman("run", "--rm", "--network", "none", BASE_IMAGE, "true", env=env, check=False)
    return None if done.returncode == 0 else done.stderr.strip()[-500:]


def _write_conf(path: Path) -> Path:
    runtime = "runc" if shutil.which("runc") else "crun"
    _, files = resource.getrlimit(resource.RLIMIT_NOFILE)
    files = 65536 if files == resource.RLIM_INFINITY else min(files, 65536)
    path.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={files}:{files}", "nproc=8192:8192"]\n'
        "[engine]\n"
        f'runtime = "{runtime}"\n',
        encoding="utf-8",
    )
    return path
