"""``modelport ci init``: write a GitHub Actions workflow that trains, registers, validates
and promotes a model (see docs/ci.md)."""

from __future__ import annotations

from pathlib import Path

import click

from modelport.cli.output import print_json
from modelport.cli.state import json_option
from modelport.deploy.workflow import DEFAULT_PATH, WorkflowOptions, github_workflow
from modelport.errors import InvalidArgumentError


@click.group()
def ci() -> None:
    """Continuous integration: a workflow that takes a model from training to production."""


@ci.command("init")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_PATH, show_default=True)
@click.option("--model", default="model", show_default=True, help="The registered model's name.")
@click.option(
    "--train", default="python train.py", show_default=True, help="Your training command."
)
@click.option(
    "--model-file",
    default="model.joblib",
    show_default=True,
    help="The model file (or package directory) training writes.",
)
@click.option(
    "--sample",
    default="sample.csv",
    show_default=True,
    help="A sample of the inputs training writes (records the signature production needs).",
)
@click.option(
    "--requirements",
    default="requirements.txt",
    show_default=True,
    help="What the jobs pip install (modelport with its extras, and your training's needs).",
)
@click.option("--python", "python_version", default="3.12", show_default=True)
@click.option("--branch", default="main", show_default=True, help="Pushes here run it.")
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
@json_option
def init(
    *,
    out: Path,
    model: str,
    train: str,
    model_file: str,
    sample: str,
    requirements: str,
    python_version: str,
    branch: str,
    force: bool,
    as_json: bool,
) -> None:
    """Write a GitHub Actions workflow (--out) that trains, registers, validates and
    promotes MODEL to staging, then to production behind a manual approval (the GitHub
    environment "production" with required reviewers)."""
    options = WorkflowOptions(
        model, train, model_file, sample, requirements, python_version, branch
    )
    text = github_workflow(options)
    if out.exists() and not force:
        raise InvalidArgumentError(f"{out} exists; pass --force to replace it", field="out")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    if as_json:
        print_json({"path": str(out), "model": model, "jobs": ["staging", "production"]})
        return
    click.echo(f"wrote {out}")
    click.echo(
        "next: set the repository secrets MODELPORT_DATABASE_URL and MODELPORT_ARTIFACTS_URI, "
        'and add required reviewers to the environment "production"'
    )
