"""``modelport k8s render REF``: Kubernetes (and KServe) manifests that serve REF.

The registry is read to check REF and to see whether it names a deployment (and, for
KServe, its arms and where its package is stored); the manifests themselves come from
``modelport.deploy``, which writes nothing. See docs/kubernetes.md. With
``MODELPORT_REGISTRY_URL`` set, the registry is that control plane and the pods follow
it too (``deploy.registry_access``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modelport.cli.output import print_json
from modelport.cli.state import state
from modelport.deploy.kserve import KServeModel, deployment_target, render_kserve
from modelport.deploy.kubernetes import render_kubernetes
from modelport.deploy.manifests import (
    DEFAULT_DRAIN_TIMEOUT_S,
    DEFAULT_PORT,
    KUBERNETES_DRAIN_DELAY_S,
    Manifest,
    ManifestOptions,
    Resources,
    kubernetes_name,
    to_yaml,
)
from modelport.deploy.registry_access import RegistryAccess
from modelport.domain.refs import parse_ref_or_name
from modelport.errors import InvalidArgumentError
from modelport.registry.service import RegistryService

if TYPE_CHECKING:
    from modelport.client import RegistryClient


@click.group()
def k8s() -> None:
    """Kubernetes and KServe manifests for serving registered models."""


@k8s.command("render")
@click.argument("ref")
@click.option("--image", required=True, help="The container image with modelport installed.")
@click.option("--name", help="Name of the Kubernetes objects.  [default: from REF]")
@click.option("--namespace", help="Namespace of the objects.  [default: none: kubectl's]")
@click.option("--replicas", type=int, default=2, show_default=True, help="Pods, at least.")
@click.option("--max-replicas", type=int, help="Autoscaler ceiling.  [default: 3 x --replicas]")
@click.option("--workers", type=int, default=1, show_default=True, help="Workers per pod.")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True)
@click.option("--drain-delay", type=float, default=KUBERNETES_DRAIN_DELAY_S, show_default=True,
              help="Seconds a stopping pod keeps serving while endpoints drop it.")  # fmt: skip
@click.option("--drain-timeout", type=float, default=DEFAULT_DRAIN_TIMEOUT_S, show_default=True,
              help="Seconds in-flight requests may take to finish on SIGTERM.")  # fmt: skip
@click.option("--prestop-sleep", type=int, default=0, show_default=True,
              help="A preStop sleep before SIGTERM (only for meshes that need one).")  # fmt: skip
@click.option("--cpu", default="500m", show_default=True, help="CPU request.")
@click.option("--memory", default="512Mi", show_default=True, help="Memory request.")
@click.option("--cpu-limit", default="2", show_default=True)
@click.option("--memory-limit", default="1Gi", show_default=True)
@click.option("--uid", type=int, default=10001, show_default=True, help="Non-root user id.")
@click.option("--secret", help="Secret with the credentials.  [default: NAME-secrets]")
@click.option("--service-account", help="The pods' service account (e.g. object-store access).")
@click.option("--artifacts-uri", help="The artifact store the pods read.  "
              "[default: MODELPORT_ARTIFACTS_URI]")  # fmt: skip
@click.option("--registry-url", help="With MODELPORT_REGISTRY_URL set: the control plane's URL as "
              "the pods reach it.  [default: MODELPORT_REGISTRY_URL]")  # fmt: skip
@click.option("--registry-key-secret", help="With MODELPORT_REGISTRY_URL set: the Secret holding "
              "the pods' API key (key api-key).  [default: NAME-registry-key]")  # fmt: skip
@click.option("--registry-ca-configmap", help="With MODELPORT_REGISTRY_URL set: the ConfigMap "
              "holding the control plane's CA bundle (key ca.pem), mounted into the pods.  "
              "[default: NAME-registry-ca when MODELPORT_REGISTRY_CA_BUNDLE is set]")  # fmt: skip
@click.option("--prediction-log", help="A shared prediction log URI (s3://...) for the pods.")
@click.option("--metrics-public", is_flag=True, help="Serve /metrics without a key.")
@click.option("--kserve", is_flag=True, help="A KServe InferenceService and ServingRuntime.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write one file per object kind here; else print them on stdout.")  # fmt: skip
@click.option("--force", is_flag=True, help="Replace files that exist under --out.")
@click.option("-o", "--output", "output_format", type=click.Choice(["yaml", "json"]),
              default="yaml", show_default=True, help="Format on stdout.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="-o json (a v1 List); with --out, "
              "a JSON summary of the files.")  # fmt: skip
def render(*, ref: str, out: Path | None, force: bool, output_format: str, as_json: bool,
           kserve: bool, **values: Any) -> None:  # fmt: skip
    """Render manifests that serve REF (a deployment name, churn@production, churn/3)
    with `modelport serve`, for `kubectl apply -f DIR` or `... | kubectl apply -f -`.

    Secrets are referenced, never written: create the Secret (NAME-secrets, key
    database-url) yourself; see docs/kubernetes.md.

    With MODELPORT_REGISTRY_URL set, REF is checked on that control plane and the pods
    follow it instead of the stores: MODELPORT_REGISTRY_URL in the ConfigMap, the API
    key from the Secret --registry-key-secret (create it with `kubectl create secret
    generic NAME-registry-key --from-literal=api-key=mp_...`; a key with `read`, or
    `read` and `verify` when the pods check their callers' keys), and the CA
    bundle from the ConfigMap --registry-ca-configmap (`kubectl create configmap
    NAME-registry-ca --from-file=ca.pem=ca.pem`). No database URL, no object store.
    """
    settings = state().settings
    access = _registry_access(values, settings.registry_url, settings.registry_ca_bundle)
    artifacts_uri = values.pop("artifacts_uri") or settings.artifacts_uri
    if access is not None:
        artifacts_uri = None  # the pods download packages from the control plane
    registry = state().registry()
    route, source = _served(registry, ref)
    options = _options(values, route, source, artifacts_uri, access)
    if kserve:
        manifests = render_kserve(options, _kserve_model(registry, ref, route, options))
    else:
        manifests = render_kubernetes(options)
    if not options.object_store and options.registry is None:
        warning = (
            f"the artifact store {artifacts_uri or '(MODELPORT_HOME/artifacts)'} is not an "
            "object store the pods share: set --artifacts-uri (or MODELPORT_ARTIFACTS_URI) "
            "to s3://... or gs://..."
        )
        line = json.dumps({"warning": warning}) if as_json else f"warning: {warning}"
        click.echo(line, err=True)
    if out is None:
        _print(manifests, "json" if as_json else output_format)
        return
    written = _write(manifests, out, force=force)
    if as_json:
        print_json({"directory": str(out), "files": written, "serves": options.source})
        return
    for name in written:
        click.echo(f"wrote {out / name}")


def _registry_access(
    values: dict[str, Any], url: str | None, ca_bundle: Path | None
) -> dict[str, str | None] | None:
    """The --registry-* choices when the pods follow a control plane (None: they read
    the stores); those options without MODELPORT_REGISTRY_URL are refused."""
    chosen = {key: values.pop(key) for key in
              ("registry_url", "registry_key_secret", "registry_ca_configmap")}  # fmt: skip
    if url is None:
        given = [f"--{key.replace('_', '-')}" for key, value in chosen.items() if value]
        if given:
            raise InvalidArgumentError(
                f"{', '.join(given)} need MODELPORT_REGISTRY_URL: without it the pods read "
                "the metadata database and artifact store",
                field=given[0].removeprefix("--"),
            )
        return None
    chosen["registry_url"] = chosen["registry_url"] or url
    chosen["ca_bundle"] = str(ca_bundle) if ca_bundle is not None else None
    return chosen


def _access(chosen: dict[str, str | None] | None, name: str) -> RegistryAccess | None:
    """The pods' access to the control plane, with the default object names of ``name``."""
    if chosen is None:
        return None
    ca = chosen["registry_ca_configmap"]
    return RegistryAccess(
        url=str(chosen["registry_url"]),
        key_secret=chosen["registry_key_secret"] or f"{name}-registry-key",
        ca_config_map=ca or (f"{name}-registry-ca" if chosen["ca_bundle"] else None),
    )


def _served(registry: RegistryService | RegistryClient, ref: str) -> tuple[str, str]:
    """The route name and the ``serve`` argument: a deployment's name serves the
    deployment; any other reference must name a version that exists now."""
    parsed = parse_ref_or_name(ref)
    if parsed.is_latest and registry.find_deployment(parsed.name) is not None:
        return parsed.name, parsed.name
    registry.resolve(parsed)  # raises, naming the model or version that is missing
    return parsed.name, ref.removeprefix("models:/")


def _kserve_model(
    registry: RegistryService | RegistryClient, ref: str, route: str, options: ManifestOptions
) -> KServeModel:
    parsed = parse_ref_or_name(ref)
    found = registry.find_deployment(parsed.name) if parsed.is_latest else None
    target, canary = (ref.removeprefix("models:/"), None)
    if found is not None:
        target, canary = deployment_target(found)
    if not options.object_store:
        return KServeModel(route, ref=target, canary_percent=canary)
    version = registry.resolve(parse_ref_or_name(target))
    uri = f"{(options.artifacts_uri or '').rstrip('/')}/{version.artifact_key}"
    return KServeModel(route, storage_uri=uri, canary_percent=canary)


def _options(values: dict[str, Any], route: str, source: str, artifacts_uri: str | None,
             access: dict[str, str | None] | None) -> ManifestOptions:  # fmt: skip
    resources = Resources(
        values.pop("cpu"), values.pop("memory"), values.pop("cpu_limit"), values.pop("memory_limit")
    )
    name = values.pop("name") or kubernetes_name(route)
    return ManifestOptions(
        name=name,
        registry=_access(access, name),
        source=source,
        resources=resources,
        artifacts_uri=artifacts_uri,
        drain_delay_s=values.pop("drain_delay"),
        drain_timeout_s=values.pop("drain_timeout"),
        prestop_sleep_s=values.pop("prestop_sleep"),
        prediction_log_uri=values.pop("prediction_log"),
        **values,
    )


def _print(manifests: list[Manifest], output_format: str) -> None:
    documents = [document for manifest in manifests for document in manifest.documents]
    if output_format == "json":
        click.echo(json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}, indent=2))
    else:
        click.echo(to_yaml(documents), nl=False)


def _write(manifests: list[Manifest], out: Path, *, force: bool) -> list[str]:
    existing = [m.filename for m in manifests if (out / m.filename).exists()]
    if existing and not force:
        raise InvalidArgumentError(
            f"{', '.join(existing)} exist in {out}; pass --force to replace them", field="out"
        )
    out.mkdir(parents=True, exist_ok=True)
    for manifest in manifests:
        (out / manifest.filename).write_text(manifest.text(), encoding="utf-8")
    return [manifest.filename for manifest in manifests]
