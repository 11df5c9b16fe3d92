"""``modelport quickstart``: train, register and promote a demo model, then serve it.

Uses scikit-learn's bundled breast-cancer data set (no download), so it works on a
fresh machine with nothing but ``pip install 'modelport[sklearn]'``. It ends by serving
the model over HTTP, printing one prediction made over HTTP and the curl line to make
another, until Ctrl+C (``--no-serve``: predict in process and stop instead).

Running it again reuses the version it registered before when the freshly trained
model predicts exactly as that one does (training is deterministic), instead of adding
an identical version each time. The server's JSON logs go to a file under
``MODELPORT_HOME/logs``, so that its output stays readable.

With ``MODELPORT_REGISTRY_URL`` set, it registers and promotes through that control
plane, and the server it ends with follows the control plane by its URL (as
``modelport serve`` does there): the same steps, the same output.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modelport.cli.serve import serve_models
from modelport.cli.state import state
from modelport.config import ServeSettings, Settings
from modelport.domain.names import validate_model_name
from modelport.errors import ModelportError
from modelport.flavors.dependencies import require
from modelport.package.options import PackageOptions

if TYPE_CHECKING:
    from modelport.client import RegistryClient
    from modelport.domain.entities import ModelVersion
    from modelport.registry.service import RegistryService


def train_demo_model() -> tuple[Any, Any, Any, dict[str, float], dict[str, Any]]:
    """A scaled logistic regression on the breast-cancer data: model, train and test
    features, test metrics, and parameters."""
    require("sklearn", extra="sklearn", package="scikit-learn")
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.25, random_state=0, stratify=target
    )
    params = {"C": 1.0, "max_iter": 1000}
    model = make_pipeline(StandardScaler(), LogisticRegression(**params)).fit(x_train, y_train)
    metrics = {
        "accuracy": float(accuracy_score(y_test, model.predict(x_test))),
        "auc": float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])),
    }
    return model, x_train, x_test, metrics, params


@click.command()
@click.option("--name", default="breast-cancer", show_default=True, help="Name to register under.")
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="End by serving the model over HTTP until Ctrl+C (else predict in process).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Port to serve on; 0 picks a free one.  [default: 8080, or a free one if taken]",
)
def quickstart(name: str, serve: bool, port: int | None) -> int:
    """Train a demo model, register it, put it in production and serve it.

    With MODELPORT_REGISTRY_URL (and MODELPORT_API_KEY) set, the model is registered
    and promoted on that control plane, and served here from it, as `modelport serve`
    does.
    """
    cli = state()
    click.echo(f"modelport home: {cli.settings.resolved_home}")
    click.echo("1/4 training a logistic regression on scikit-learn's breast-cancer data...")
    model, x_train, x_test, metrics, params = train_demo_model()
    registry = cli.registry()
    click.echo("2/4 registering it with its training data as the sample...")
    scores = f"accuracy {metrics['accuracy']:.3f}, auc {metrics['auc']:.3f}"
    version = _registered_before(registry, name, model, x_test)
    if version is not None:
        click.echo(
            f"    {version.ref} is this same model (same predictions): reusing it ({scores})"
        )
    else:
        options = PackageOptions(
            sample_input=x_train,
            metrics=metrics,
            params=params,
            tags={"dataset": "sklearn.datasets.load_breast_cancer", "created_with": _TAG},
            description="Scaled logistic regression; predicts 1 for a benign tumour.",
        )
        version = registry.register(model, name, options)
        click.echo(f"    registered {version.ref} ({scores})")
    if "production" in version.aliases:
        click.echo("3/4 it is already in production")
    else:
        click.echo("3/4 promoting it to production...")
        registry.promote(name, version.version, "production")
    if not serve:
        click.echo(f"4/4 loading models:/{name}@production and predicting three rows...")
        with registry.load(f"{name}@production") as loaded:
            rows = x_test.head(3)
            labels = loaded.predict(rows)
            probabilities = loaded.predict_proba(rows)[:, 1]
        for label, probability in zip(labels, probabilities, strict=True):
            click.echo(f"    prediction {label} (p(benign) = {probability:.3f})")
        _next_steps(name)
        return 0
    settings = _serving_settings(cli.settings, port)
    log = cli.settings.resolved_home / "logs" / "quickstart-server.log"
    click.echo(f"4/4 serving {name}@production over HTTP (server log: {log})...")
    row = [float(f"{value:.4g}") for value in x_test.iloc[0].tolist()]
    with _stderr_to(log):
        return serve_models(settings, [f"{name}@production"], announce=_Demo(name, row))


_TAG = "quickstart"


def _registered_before(
    registry: RegistryService | RegistryClient, name: str, model: Any, features: Any
) -> ModelVersion | None:
    """The newest version quickstart registered under ``name``, when it predicts what
    ``model`` predicts on ``features`` (the same labels, probabilities within 1e-9);
    ``None`` otherwise (or if it cannot load here, e.g. after a scikit-learn upgrade)."""
    import numpy as np

    query = f"name = '{validate_model_name(name)}' AND tags.created_with = '{_TAG}'"
    found = registry.search_versions(query, max_results=1)
    if not found:
        return None
    try:
        with registry.load(found[0].ref) as loaded:
            labels, probabilities = loaded.predict(features), loaded.predict_proba(features)
    except ModelportError:
        return None
    # Probabilities within rounding: the loaded model's input passes the signature
    # checks first, which may change the memory layout and so the last bit of a sum.
    same = np.array_equal(labels, model.predict(features)) and np.allclose(
        probabilities, model.predict_proba(features), rtol=0, atol=1e-9
    )
    return found[0] if same else None


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send this process's stderr, and so the server workers' JSON logs, to ``path``
    (overwritten) while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with path.open("wb") as log:
            os.dup2(log.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _serving_settings(settings: Settings, port: int | None) -> Settings:
    """The configured settings on ``port``; when none was asked for and the configured
    port is taken, a free one (a demo should not fail because 8080 is busy)."""
    if port is None:
        port = settings.serve.port
        if not _free(settings.serve.host, port):
            click.echo(f"    port {port} is taken; serving on a free port instead")
            port = 0
    # Validated, as every other way of setting the port is.
    serve = ServeSettings.model_validate({**settings.serve.model_dump(), "port": port})
    return settings.model_copy(update={"serve": serve})


def _free(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        return True
    return False


class _Demo:
    """Called once the server is ready: predict one row over HTTP and show how."""

    def __init__(self, name: str, row: list[float]) -> None:
        self._name = name
        self._row = row

    def __call__(self, line: str) -> None:
        click.echo(line)
        url = line.rsplit(" on ", 1)[1].split(" ", 1)[0]
        path = f"/v2/models/{self._name}/infer"
        body = json.dumps(
            {"inputs": [{"name": "input", "shape": [1, len(self._row)], "datatype": "FP64",
                         "data": self._row}]}
        )  # fmt: skip
        try:
            answer = _post(url, path, body)
        except (OSError, ValueError, ModelportError) as exc:
            click.echo(f"    the demo prediction over HTTP failed: {exc}")
        else:
            outputs = {output["name"]: output["data"] for output in answer["outputs"]}
            label = outputs["predictions"][0]
            probability = outputs["probabilities"][1] if "probabilities" in outputs else None
            shown = f" (p(benign) = {probability:.3f})" if probability is not None else ""
            click.echo(f"    prediction over HTTP: {label}{shown}")
        click.echo(
            f"""
Try it:
  curl -s {url}{path} -H 'Content-Type: application/json' \\
    -d '{body}'
  curl -s {url}/invocations -H 'Content-Type: application/json' \\
    -d '{json.dumps({"inputs": [self._row]})}'
  curl -s {url}/v2/models/{self._name}
  curl -s {url}/metrics

Next:
  modelport model show {self._name}
  modelport audit list --model {self._name}
  modelport serve {self._name}@production --workers 2

Serving until Ctrl+C.""",
        )


def _post(url: str, path: str, body: str) -> dict[str, Any]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    connection = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=10)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise ModelportError(f"HTTP {response.status}: {payload.decode(errors='replace')}")
    answer: dict[str, Any] = json.loads(payload)
    return answer


def _next_steps(name: str) -> None:
    click.echo(
        f"""
Next:
  modelport model show {name}
  modelport version show {name}@production
  modelport audit list --model {name}
  python -c "import modelport; m = modelport.load('models:/{name}@production'); print(m.signature)"
  modelport serve {name}@production
"""
    )
