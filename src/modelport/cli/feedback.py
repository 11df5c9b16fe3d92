"""``modelport feedback upload``: labels (ground truth) in bulk from a CSV or Parquet file."""

from __future__ import annotations

from pathlib import Path

import click

from modelport.cli.output import print_fields, print_json
from modelport.cli.state import json_option, state


@click.group()
def feedback() -> None:
    """Labels (ground truth) for logged predictions."""


@feedback.command("upload")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", required=True, help="The served model name the labels are for.")
@click.option(
    "--id",
    "id_column",
    required=True,
    help="The key column: prediction_id, or an id column of the model's signature "
    "(e.g. customer_id, matched against the log's id_customer_id).",
)
@click.option("--label", "label_column", required=True, help="The label column.")
@json_option
def upload(path: Path, model: str, id_column: str, label_column: str, as_json: bool) -> None:
    """Store the labels of PATH (.csv, .csv.gz, .tsv or .parquet) for MODEL.

    Every usable row is stored, also when its key is not in the prediction log (yet): such
    rows are counted as unknown. A key labeled before is a correction (the latest label
    counts; every upload is kept). Rows with an empty key or label are rejected.
    """
    from modelport.monitoring.feedback.upload import upload as upload_labels

    settings = state().settings
    result = upload_labels(
        settings.resolved_prediction_log_uri,
        model,
        path,
        id_column=id_column,
        label_column=label_column,
        actor=settings.actor,
    )
    if as_json:
        print_json(result.to_dict())
        return
    print_fields(
        [
            ("model", result.model),
            ("rows", str(result.rows)),
            ("accepted", str(result.accepted)),
            ("unknown", str(result.unknown)),
            ("corrected", str(result.corrected)),
            ("rejected", str(result.rejected)),
            ("rejected at", result.rejected_rows),
            ("unknown keys", result.unknown_keys),
        ]
    )
