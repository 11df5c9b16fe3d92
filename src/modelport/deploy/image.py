"""A container build context for one model version: Dockerfile, ``.dockerignore``,
the build-time package check and a README (render text, write nothing).

The image is multi-stage: the builder makes a virtual environment with modelport's
wheel, only the extras the model's flavor needs and the library versions the package
recorded; the runtime stage copies that environment onto the same slim base, with no
pip, compiler or cache. The package is copied in and checked against the digests the
registry recorded while the image builds (``--from-registry`` fetches it when the
container starts instead). The server runs as a numeric non-root user (Kubernetes'
``runAsNonRoot`` can only check a numeric one) from an exec-form ``ENTRYPOINT``, so
that SIGTERM reaches it and starts its drain.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from modelport.errors import InvalidArgumentError
from modelport.package.manifest import Manifest

PORT = 8080
HEALTH_PATH = "/v2/health/ready"
PACKAGE_DIR = "/opt/modelport/package"
VENV = "/opt/venv"
HOME = "/var/lib/modelport"
UID = 10001
WHEELS_DIR = "wheels"
PACKAGE_CONTEXT_DIR = "package"
CHECK_SCRIPT = "check_package.py"

# Slim Debian bookworm images of the python.org builds, pinned to a patch release so
# that a rebuild gets the same interpreter (move them forward deliberately). Fully
# qualified: podman resolves no short names unless its registries.conf says how.
PINNED_BASES = {
    "3.11": "docker.io/library/python:3.11.13-slim-bookworm",
    "3.12": "docker.io/library/python:3.12.11-slim-bookworm",
    "3.13": "docker.io/library/python:3.13.5-slim-bookworm",
}

# The extras each flavor loads its models with (pyproject.toml's optional dependencies).
# The python flavor's own requirements were recorded in the package instead.
FLAVOR_EXTRAS: Mapping[str, tuple[str, ...]] = {
    "sklearn": ("sklearn",),
    "xgboost": ("xgboost",),
    "lightgbm": ("lightgbm",),
    "onnx": ("onnx",),
    "torch": ("torch",),
    "python": (),
}
KNOWN_EXTRAS = frozenset(
    {"sklearn", "onnx", "xgboost", "lightgbm", "accelerate", "torch", "postgres", "s3"}
    | {"redis", "signing"}
)
# PyPI's torch wheels for Linux bring several GB of CUDA libraries; the CPU index has
# the same versions (``2.13.0+cpu`` satisfies ``torch==2.13.0``) without them.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass(frozen=True)
class ImageSpec:
    """Everything the build context says: which model, served how, built from what.

    ``package_digest`` is the manifest sha256 the registry recorded (the build refuses
    a package whose ``modelport.yaml`` differs); ``from_registry`` is the reference the
    container resolves at start instead of a copied package.
    """

    model: str
    version: int | None  # None: a package directory, not a registered version
    python: str
    extras: tuple[str, ...]
    wheel: str
    base: str
    tag: str
    requirements: tuple[str, ...] = ()
    package_digest: str | None = None
    from_registry: str | None = None
    source: str = ""
    extra_index_urls: tuple[str, ...] = field(default=())
    offline: bool = False

    @property
    def packaged(self) -> bool:
        """Whether the package is copied into the image (not fetched at start)."""
        return self.from_registry is None


def extras_for(manifest: Manifest, requested: Iterable[str] = ()) -> tuple[str, ...]:
    """The extras an image of this package needs: its flavor's, ``accelerate`` when a
    verified ONNX graph would serve it (the flavor's extra may not bring onnxruntime),
    and the ``requested`` ones; sorted, without repeats."""
    extras = set(FLAVOR_EXTRAS.get(manifest.flavor.name, ()))
    acceleration = manifest.acceleration
    if acceleration is not None and acceleration.status == "verified":
        extras.add("accelerate")
    for extra in requested:
        if extra not in KNOWN_EXTRAS:
            raise InvalidArgumentError(
                f"unknown extra {extra!r} (--extras); accepted: {', '.join(sorted(KNOWN_EXTRAS))}",
                field="extras",
            )
        extras.add(extra)
    return tuple(sorted(extras))


def requirements_for(manifest: Manifest) -> tuple[str, ...]:
    """The pinned library versions the package was saved with, then the python flavor's
    own requirements (what its code imports)."""
    pinned = list(manifest.environment.requirements)
    if manifest.flavor.name == "python":
        pinned += [str(item) for item in manifest.flavor.spec.get("requirements", [])]
    return tuple(dict.fromkeys(pinned))


def default_base(python: str) -> str:
    """The pinned slim base for the package's Python minor version (``3.11.7`` ->
    ``docker.io/library/python:3.11.13-slim-bookworm``)."""
    minor = ".".join(python.split(".")[:2])
    if minor not in PINNED_BASES:
        raise InvalidArgumentError(
            f"the package was saved with Python {python}, which has no pinned base image "
            f"here (pinned: {', '.join(sorted(PINNED_BASES))}); name one with --base IMAGE",
            field="base",
        )
    return PINNED_BASES[minor]


def default_tag(model: str, version: int | None) -> str:
    """``churn:3`` (``churn:latest`` for a package directory): the image name a
    registry accepts (lowercase, no odd characters)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", model.lower()).strip("._-") or "model"
    return f"{name}:{version if version is not None else 'latest'}"


def _source(spec: ImageSpec) -> str:
    if spec.source:
        return spec.source
    return spec.model if spec.version is None else f"{spec.model}/{spec.version}"


def render_context(spec: ImageSpec) -> dict[str, str]:
    """The build context's text files by relative path (the package directory and the
    wheel are copied beside them by the caller)."""
    files = {
        "Dockerfile": dockerfile(spec),
        ".dockerignore": dockerignore(),
        "requirements.txt": "".join(f"{line}\n" for line in spec.requirements),
        "README.md": readme(spec),
    }
    if spec.packaged:
        files[CHECK_SCRIPT] = check_script()
    return files


def serve_arguments(spec: ImageSpec) -> list[str]:
    """The ``modelport serve`` command line the image runs."""
    name = spec.model
    target = spec.from_registry or f"{name}={PACKAGE_DIR}"
    return ["modelport", "serve", target]


def dockerfile(spec: ImageSpec) -> str:
    """The multi-stage Dockerfile."""
    wheel_spec = f"{WHEELS_DIR}/{spec.wheel}"
    if spec.extras:
        wheel_spec += f"[{','.join(spec.extras)}]"
    if spec.offline:  # every wheel is in wheels/: no index, no network
        indexes = " --no-index"
    else:
        indexes = "".join(f" --extra-index-url {url}" for url in spec.extra_index_urls)
    values = {
        "@BASE@": spec.base,
        "@SOURCE@": _source(spec),
        "@VENV@": VENV,
        "@WHEEL@": json.dumps(f"/tmp/{wheel_spec}"),  # noqa: S108 - the build's own files
        "@INDEXES@": indexes,
        "@PACKAGE_STEPS@": _package_steps(spec),
        "@PACKAGE_COPY@": _package_copy(spec),
        "@UID@": str(UID),
        "@HOME@": HOME,
        "@PORT@": str(PORT),
        "@HEALTHCHECK@": json.dumps(["python3", "-c", _HEALTH_PROBE]),
        "@ENTRYPOINT@": json.dumps(serve_arguments(spec)),
        "@LABELS@": _labels(spec),
    }
    return _fill(_DOCKERFILE, values)


def labels(spec: ImageSpec) -> dict[str, str]:
    """What the image says about itself: the model, its version and where it comes from
    (the server of a copied package does not know its version number)."""
    found = {
        "org.opencontainers.image.title": spec.model,
        "io.modelport.model": spec.model,
        "io.modelport.source": _source(spec),
        "io.modelport.extras": ",".join(spec.extras),
    }
    if spec.version is not None:
        found["org.opencontainers.image.version"] = str(spec.version)
        found["io.modelport.version"] = str(spec.version)
    if spec.package_digest is not None:
        found["io.modelport.manifest-sha256"] = spec.package_digest
    return found


def _labels(spec: ImageSpec) -> str:
    pairs = " \\\n    ".join(f"{key}={json.dumps(value)}" for key, value in labels(spec).items())
    return f"LABEL {pairs}"


def _package_steps(spec: ImageSpec) -> str:
    if not spec.packaged:
        return (
            "# The package is fetched from the registry when the container starts\n"
            "# (MODELPORT_DATABASE_URL, MODELPORT_ARTIFACTS_URI); check that modelport runs.\n"
            f'RUN ["{VENV}/bin/modelport", "--version"]'
        )
    check = [f"{VENV}/bin/python", f"/tmp/{CHECK_SCRIPT}", PACKAGE_DIR]  # noqa: S108
    check += [spec.package_digest] if spec.package_digest else []
    return (
        f"# The package, checked now: every file's sha256, the manifest's against the one\n"
        f"# the registry recorded, and a load with the libraries installed above.\n"
        f"COPY {PACKAGE_CONTEXT_DIR}/ {PACKAGE_DIR}/\n"
        f"COPY {CHECK_SCRIPT} /tmp/{CHECK_SCRIPT}\n"
        f"RUN {json.dumps(check)}\n"
        "# Readable by the server's user, writable by nobody but root.\n"
        f"RUN chmod -R a+rX,go-w {PACKAGE_DIR}"
    )


def _package_copy(spec: ImageSpec) -> str:
    if not spec.packaged:
        return ""
    return f"COPY --from=builder {PACKAGE_DIR} {PACKAGE_DIR}\n"


def _fill(template: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(key, value)
    return template


# The probe runs inside the image, where slim bases have no curl: Python's urllib, on
# the port the server was told to bind.
_HEALTH_PROBE = (
    "import os, sys, urllib.request; "
    "port = os.environ.get('MODELPORT_SERVE__PORT', '8080'); "
    f"url = 'http://127.0.0.1:' + port + '{HEALTH_PATH}'; "
    "sys.exit(0 if urllib.request.urlopen(url, timeout=3).status == 200 else 1)"
)

_DOCKERFILE = """\
# modelport image for @SOURCE@ (written by `modelport build`; see README.md).
ARG BASE=@BASE@

# --- builder: a virtual environment with modelport and what this model needs ---
FROM ${BASE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv @VENV@
COPY wheels/ /tmp/wheels/
COPY requirements.txt /tmp/requirements.txt
# pip takes the wheels in wheels/ first (put more there with pip download). Then
# what serving never runs goes: pip itself, and the libraries' own test suites (a
# hundred MB for numpy, pandas, scipy and pyarrow).
RUN @VENV@/bin/pip install --find-links /tmp/wheels@INDEXES@ \\
        @WHEEL@ -r /tmp/requirements.txt \\
    && @VENV@/bin/pip uninstall --yes pip setuptools \\
    && find @VENV@ -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} +
@PACKAGE_STEPS@

# --- runtime: the same base, the environment and the package, nothing else ---
FROM ${BASE}
# A numeric user (Kubernetes' runAsNonRoot can check it) with a writable home for
# modelport's local state (MODELPORT_HOME: prediction log, caches).
RUN echo 'modelport:x:@UID@:@UID@:modelport:@HOME@:/usr/sbin/nologin' >> /etc/passwd \\
    && echo 'modelport:x:@UID@:' >> /etc/group \\
    && mkdir -p @HOME@ && chown @UID@:@UID@ @HOME@
COPY --from=builder @VENV@ @VENV@
@PACKAGE_COPY@ENV PATH=@VENV@/bin:$PATH \\
    HOME=@HOME@ \\
    MODELPORT_HOME=@HOME@ \\
    MODELPORT_SERVE__HOST=0.0.0.0 \\
    MODELPORT_SERVE__PORT=@PORT@ \\
    PYTHONUNBUFFERED=1
@LABELS@
USER @UID@:@UID@
WORKDIR @HOME@
EXPOSE @PORT@
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \\
    CMD @HEALTHCHECK@
STOPSIGNAL SIGTERM
# Exec form: the server is PID 1 and gets SIGTERM itself, then drains and exits 0.
# Arguments after the image name are added (e.g. --insecure-no-auth, --workers 2).
ENTRYPOINT @ENTRYPOINT@
"""


def dockerignore() -> str:
    """Only the files the Dockerfile copies go to the engine."""
    return (
        "# Send the engine only what the Dockerfile copies.\n"
        "*\n"
        "!Dockerfile\n"
        "!requirements.txt\n"
        f"!{WHEELS_DIR}/\n"
        f"!{PACKAGE_CONTEXT_DIR}/\n"
        f"!{CHECK_SCRIPT}\n"
    )


def check_script() -> str:
    """The build-time check: digests (and the registry's manifest digest), then a load."""
    return _CHECK_SCRIPT


_CHECK_SCRIPT = '''\
"""Check the copied package while the image builds (written by `modelport build`).

Usage: check_package.py PACKAGE_DIR [MANIFEST_SHA256]. Every file must match the sha256
its manifest records, the manifest the one the registry recorded, and the model must
load with the libraries installed in the image (right flavor, right framework version).
"""

import sys
from pathlib import Path

from modelport.flavors.catalog import default_catalog
from modelport.package.reader import load_package, verify_package

directory = Path(sys.argv[1])
expected = sys.argv[2] if len(sys.argv) > 2 else None
verify_package(directory, expected)
loaded = load_package(directory, default_catalog(), expected_manifest_digest=expected)
print(f"package checked: {directory} ({loaded.manifest.flavor.name})")
'''


def readme(spec: ImageSpec) -> str:
    """How to build and run this context."""
    run_args = (
        "-e MODELPORT_DATABASE_URL=postgresql+psycopg://... -e MODELPORT_ARTIFACTS_URI=s3://... "
        if not spec.packaged
        else ""
    )
    values = {
        "@SOURCE@": _source(spec),
        "@TAG@": spec.tag,
        "@MODEL@": spec.model,
        "@PORT@": str(PORT),
        "@EXTRAS@": ", ".join(spec.extras) or "none",
        "@BASE@": spec.base,
        "@RUNARGS@": run_args,
        "@WHAT@": (
            f"the package is copied into the image and checked as it builds (`{PACKAGE_DIR}`)"
            if spec.packaged
            else f"the container fetches `{spec.from_registry}` from the registry as it starts"
        ),
    }
    return _fill(_README, values)


_README = """\
# Image for @SOURCE@

Written by `modelport build`. The image serves `@MODEL@` with `modelport serve` on port
@PORT@ (V2 inference protocol, MLflow's `/invocations`, `/metrics`); @WHAT@.
Extras installed: @EXTRAS@. Base: `@BASE@` (`--build-arg BASE=...` to change it).

## Build

```bash
podman build --format docker -t @TAG@ .   # --format docker keeps the HEALTHCHECK
docker build -t @TAG@ .
```

`wheels/` holds modelport's wheel; pip prefers the wheels there, so `pip download -d
wheels/ -r requirements.txt` beforehand builds without a package index.

## Run

The server binds 0.0.0.0 inside the container, so it checks API keys: they live in the
metadata database, which the container reaches through `MODELPORT_DATABASE_URL`
(create one with `modelport key create --name serving --scope predict:@MODEL@`).

```bash
podman run --rm -p @PORT@:@PORT@ -e MODELPORT_DATABASE_URL=postgresql+psycopg://... @RUNARGS@@TAG@
```

On a network where something else authenticates, serve without keys:

```bash
podman run --rm -p @PORT@:@PORT@ @RUNARGS@@TAG@ --insecure-no-auth
```

Arguments after the image name go to `modelport serve` (`--workers 2`,
`--drain-delay 5`, `--tls-cert ...`); `MODELPORT_*` variables work too. SIGTERM
(`podman stop`, `docker stop`, Kubernetes) drains in-flight requests and exits 0: give
the engine a stop timeout longer than the drain (`podman stop -t 40`). The
HEALTHCHECK asks `/v2/health/ready`.

```bash
curl -s http://127.0.0.1:@PORT@/v2/health/ready
curl -s -X POST http://127.0.0.1:@PORT@/v2/models/@MODEL@/infer \\
    -H 'Content-Type: application/json' -d @request.json   # V2 inference protocol
```
"""
