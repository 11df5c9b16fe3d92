"""Offline validation of rendered Kubernetes manifests: built-in kinds with
``kubernetes-validate --strict`` against a pinned Kubernetes version (it bundles the
schemas: no cluster, no network), custom resources against the openAPIV3Schema of the
CRDs vendored in tests/data/crds (see the README there)."""

from __future__ import annotations

import copy
import gzip
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

KUBERNETES_VERSION = "1.33.0"  # pinned: a release every supported distribution has
CRDS = Path(__file__).parent / "data" / "crds"
VALIDATE = Path(sys.executable).with_name("kubernetes-validate")
# libyaml's safe loader when present: the InferenceService CRD is 2 MB of YAML
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def validate_builtin(paths: list[Path]) -> str:
    """Run ``kubernetes-validate --strict`` on ``paths``; fails the test on any error and
    returns its output (one line per resource)."""
    pytest.importorskip("kubernetes_validate")
    finished = subprocess.run(
        [str(VALIDATE), "--strict", "-k", KUBERNETES_VERSION, *map(str, paths)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output
    assert "ERROR" not in output, output
    return output


@cache
def _crds() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the version's openAPIV3Schema, for every vendored CRD."""
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml.gz")):
        crd = yaml.load(gzip.decompress(path.read_bytes()), Loader=_LOADER)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = version["schema"]["openAPIV3Schema"]
                schemas[(f"{group}/{version['name']}", kind)] = _closed(schema)
    return schemas


def custom_kinds() -> set[tuple[str, str]]:
    """The (apiVersion, kind) pairs the vendored CRDs define."""
    return set(_crds())


def validate_custom(document: dict[str, Any]) -> None:
    """Validate a custom resource against its CRD schema, refusing unknown fields (as
    ``kubectl apply``'s strict field validation does)."""
    import jsonschema

    key = (document["apiVersion"], document["kind"])
    assert key in _crds(), f"no vendored CRD for {key}"
    jsonschema.Draft7Validator(_crds()[key]).validate(document)


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with ``additionalProperties: false`` on every object that lists its
    properties and does not preserve unknown fields (CRDs prune them silently)."""
    schema = copy.deepcopy(schema)

    def close(node: Any) -> None:  # walks schemas only, never a properties mapping
        if not isinstance(node, dict):
            return
        properties = node.get("properties")
        if (
            properties
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for child in (properties or {}).values():
            close(child)
        for key in ("items", "additionalProperties"):
            close(node.get(key))
        for key in ("allOf", "anyOf", "oneOf"):
            for child in node.get(key, ()):
                close(child)

    close(schema)
    # metadata is the API server's (ObjectMeta), which CRDs leave open
    schema["properties"]["metadata"] = {"type": "object"}
    return schema


def documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of one rendered file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def validate_directory(directory: Path) -> list[dict[str, Any]]:
    """Every document of the ``*.yaml`` files in ``directory``, each validated: the
    built-in kinds with ``kubernetes-validate --strict``, the others against their CRD."""
    files = sorted(directory.glob("*.yaml"))
    output = validate_builtin(files)
    rendered = []
    for path in files:
        for document in documents(path):
            key = (document["apiVersion"], document["kind"])
            if key in custom_kinds():
                validate_custom(document)
            else:
                assert f"passed for resource {document['kind'].lower()}/" in output
                assert f"{path} passed" in output, output
            rendered.append(document)
    return rendered


def kubelet_env(
    container: dict[str, Any], config_maps: dict[str, dict[str, str]], secrets: dict[str, str]
) -> dict[str, str]:
    """The container's environment: envFrom first, env on top; a missing optional
    Secret key leaves its variable out, a missing required one fails the test."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        if ref["key"] in secrets:
            env[item["name"]] = secrets[ref["key"]]
        else:
            assert ref.get("optional"), f"the pod needs the Secret key {ref['key']}"
    return env


def on_loopback(args: list[str]) -> list[str]:
    """The pod binds every address of its own network; this test binds loopback, on a
    free port (the probes use the port's name, so they follow)."""
    args = list(args)
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = "0"
    return args
