"""The GitHub Actions workflow ``modelport ci init`` writes: train, register, validate
and promote to staging; then production, behind a manual approval.

Every value the user chose is written once, JSON-quoted (valid YAML), into the
workflow's ``env``; the steps' scripts read shell variables, so that a model name or a
path never needs quoting inside a script. Only the training command goes into a script
as it is: it is the user's own command.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from modelport.domain.names import validate_model_name
from modelport.errors import InvalidArgumentError

DEFAULT_PATH = ".github/workflows/modelport.yml"
PRODUCTION_ENVIRONMENT = "production"


@dataclass(frozen=True)
class WorkflowOptions:
    """What the workflow trains and registers, and how it installs itself."""

    model: str = "model"
    train: str = "python train.py"
    model_file: str = "model.joblib"
    sample: str = "sample.csv"
    requirements: str = "requirements.txt"
    python: str = "3.12"
    branch: str = "main"

    def check(self) -> None:
        """Refuse a bad model name, and values a workflow cannot hold on one line."""
        validate_model_name(self.model)
        for field, value in vars(self).items():
            if not value.strip() or "\n" in value or "\r" in value:
                raise InvalidArgumentError(
                    f"--{field.replace('_', '-')} must be one non-empty line, not {value!r}",
                    field=field,
                )


def github_workflow(options: WorkflowOptions) -> str:
    """The workflow's YAML text."""
    options.check()
    values = {
        "MODEL": options.model,
        "MODEL_FILE": options.model_file,
        "SAMPLE": options.sample,
        "REQUIREMENTS": options.requirements,
    }
    text = _TEMPLATE
    for key, value in {
        "@MODEL@": options.model,
        "@BRANCH@": json.dumps(options.branch),
        "@PYTHON@": json.dumps(options.python),
        "@ENV@": "\n".join(f"  {key}: {json.dumps(value)}" for key, value in values.items()),
        "@TRAIN@": options.train,
        "@PRODUCTION@": PRODUCTION_ENVIRONMENT,
    }.items():
        text = text.replace(key, value)
    return text


_SETUP = """\
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: @PYTHON@
      - name: Install
        run: python -m pip install -r "$REQUIREMENTS"
"""

_TEMPLATE = (
    """\
# Written by `modelport ci init`. Trains and registers @MODEL@, validates it and promotes it
# to staging; production waits for a reviewer of the GitHub environment "@PRODUCTION@"
# (Settings > Environments > @PRODUCTION@ > Required reviewers).
name: modelport @MODEL@

on:
  push:
    branches: [@BRANCH@]
  workflow_dispatch:

# Both jobs use one registry (a runner's disk is gone when its job ends): set these
# repository secrets to a PostgreSQL URL and an artifact store the runners reach.
env:
  MODELPORT_DATABASE_URL: ${{ secrets.MODELPORT_DATABASE_URL }}
  MODELPORT_ARTIFACTS_URI: ${{ secrets.MODELPORT_ARTIFACTS_URI }}
  MODELPORT_USER: ${{ github.actor }}
@ENV@

jobs:
  staging:
    name: Train, register, validate, promote to staging
    runs-on: ubuntu-latest
    outputs:
      version: ${{ steps.register.outputs.version }}
    steps:
"""
    + _SETUP
    + """\
      - name: Train
        run: |
          @TRAIN@
      - name: Register
        id: register
        run: |
          modelport model register "$MODEL_FILE" --name "$MODEL" --sample "$SAMPLE" \\
            --tag git_sha="$GITHUB_SHA" --json > registered.json
          version=$(python -c 'import json; print(json.load(open("registered.json"))["version"])')
          echo "version=$version" >> "$GITHUB_OUTPUT"
      - name: Validate for staging
        run: modelport version validate "$MODEL/$VERSION" --to staging
        env:
          VERSION: ${{ steps.register.outputs.version }}
      - name: Promote to staging
        run: modelport version promote "$MODEL/$VERSION" staging
        env:
          VERSION: ${{ steps.register.outputs.version }}

  production:
    name: Validate and promote to production (after approval)
    needs: staging
    runs-on: ubuntu-latest
    environment: @PRODUCTION@
    env:
      VERSION: ${{ needs.staging.outputs.version }}
    steps:
"""
    + _SETUP
    + """\
      - name: Validate for production
        run: modelport version validate "$MODEL/$VERSION" --to production
      - name: Promote to production
        run: modelport version promote "$MODEL/$VERSION" production
"""
)
