"""``modelport quickstart``: train, register, promote and load a demo model.

Uses scikit-learn's bundled breast-cancer data set (no download), so it works on a
fresh machine with nothing but ``pip install 'modelport[sklearn]'``.
"""

from __future__ import annotations

from typing import Any

import click

from modelport.cli.state import state
from modelport.flavors.dependencies import require
from modelport.package.options import PackageOptions


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
def quickstart(name: str) -> None:
    """Train a demo model, register it, put it in production and predict with it."""
    cli = state()
    click.echo(f"modelport home: {cli.settings.resolved_home}")
    click.echo("1/4 training a logistic regression on scikit-learn's breast-cancer data...")
    model, x_train, x_test, metrics, params = train_demo_model()
    registry = cli.registry()
    click.echo("2/4 registering it with its training data as the sample...")
    options = PackageOptions(
        sample_input=x_train,
        metrics=metrics,
        params=params,
        tags={"dataset": "sklearn.datasets.load_breast_cancer", "created_with": "quickstart"},
        description="Scaled logistic regression; predicts 1 for a benign tumour.",
    )
    version = registry.register(model, name, options)
    scores = f"accuracy {metrics['accuracy']:.3f}, auc {metrics['auc']:.3f}"
    click.echo(f"    registered {version.ref} ({scores})")
    click.echo("3/4 promoting it to production...")
    registry.promote(name, version.version, "production")
    click.echo(f"4/4 loading models:/{name}@production and predicting three rows...")
    with registry.load(f"{name}@production") as loaded:
        rows = x_test.head(3)
        labels = loaded.predict(rows)
        probabilities = loaded.predict_proba(rows)[:, 1]
    for label, probability in zip(labels, probabilities, strict=True):
        click.echo(f"    prediction {label} (p(benign) = {probability:.3f})")
    _next_steps(name, version.version)


def _next_steps(name: str, number: int) -> None:
    click.echo(
        f"""
Next:
  modelport model show {name}
  modelport version show {name}@production
  modelport audit list --model {name}
  python -c "import modelport; m = modelport.load('models:/{name}@production'); print(m.signature)"
"""
    )
