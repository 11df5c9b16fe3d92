"""``modelport batch predict``: score files with a registered model."""

from __future__ import annotations

import click

from modelport.cli.output import print_fields, print_json, warnings_on_stderr
from modelport.cli.state import json_option, state


@click.group()
def batch() -> None:
    """Score files (CSV, Parquet, any size) with registered models."""


def _names(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(name.strip() for name in text.split(",") if name.strip())


@batch.command("predict")
@click.argument("ref")
@click.option(
    "--input",
    "inputs",
    required=True,
    multiple=True,
    help="A CSV or Parquet file, a directory of them, a glob ('day=*/*.parquet'), or any "
    "of these at an fsspec URI (s3://...). Repeat for several.",
)
@click.option(
    "--output",
    required=True,
    help="The output directory (e.g. scores.parquet), written as parts and committed "
    "whole: complete when it holds _SUCCESS.",
)
@click.option(
    "--keep",
    help="Input columns to copy to the output, comma-separated (default: the signature's "
    "id columns).",
)
@click.option(
    "--outputs",
    default="prediction",
    show_default=True,
    help="What to write: prediction, or prediction,probabilities (classifiers).",
)
@click.option(
    "--on-error",
    type=click.Choice(["fail", "skip", "null"]),
    default="fail",
    show_default=True,
    help="A row the model cannot score: stop naming its file, row and column (fail), "
    "leave it out (skip) or keep it with empty predictions (null); skipped and nulled "
    "rows are listed in the output's _errors/.",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its journal.")
@click.option(
    "--allow-moved-alias",
    is_flag=True,
    help="With --resume: finish with the version the run started with, even though the "
    "alias now names another one.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option(
    "--engine",
    type=click.Choice(["local", "dask", "ray"]),
    default="local",
    show_default=True,
    help="Where to score: threads in this process, a Dask cluster or Ray.",
)
@click.option(
    "--scheduler",
    help="The cluster to use: a Dask scheduler (tcp://host:8786) or a Ray address "
    "(default: start a local one).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Scoring threads (local; default one per core) or workers of a local cluster.",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Rows per chunk (and per part): memory holds about two chunks per worker.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["parquet", "csv"]),
    help="The output parts' format (default: csv for an output named *.csv, else parquet).",
)
@click.option(
    "--input-format",
    type=click.Choice(["parquet", "csv"]),
    help="The inputs' format, when their names do not say it.",
)
@click.option(
    "--log-predictions",
    is_flag=True,
    help="Also write the scores to the prediction log (to join them with labels later).",
)
@json_option
def predict(
    *,
    ref: str,
    inputs: tuple[str, ...],
    output: str,
    keep: str | None,
    outputs: str,
    on_error: str,
    resume: bool,
    allow_moved_alias: bool,
    overwrite: bool,
    engine: str,
    scheduler: str | None,
    workers: int | None,
    chunk_rows: int,
    output_format: str | None,
    input_format: str | None,
    log_predictions: bool,
    as_json: bool,
) -> None:
    """Score the rows of --input with the model REF (churn@production, churn/3) and
    write them to --output.

    Rows are read, checked against the model's signature as the server checks requests,
    scored and written in chunks, on every core. A progress bar shows on a terminal,
    a line every few seconds otherwise; --json prints a summary at the end.

    With MODELPORT_REGISTRY_URL set, REF is resolved by that control plane and its
    package downloaded into MODELPORT_HOME/cache/registry (every sha256 checked) before
    scoring here; Dask or Ray workers on other machines download it with their own
    MODELPORT_REGISTRY_URL and MODELPORT_API_KEY.

    \b
    Examples:
      modelport batch predict churn@production --input data.parquet --output scores.parquet
      modelport batch predict churn/3 --input 's3://lake/day=*/*.csv' \\
          --output s3://lake/scores --keep customer_id --on-error skip
    """
    from modelport.api import batch_predict

    with warnings_on_stderr(as_json=as_json):
        summary = batch_predict(
            ref,
            list(inputs) if len(inputs) > 1 else inputs[0],
            output,
            outputs=_names(outputs) or (),
            keep=_names(keep),
            on_error=on_error,  # type: ignore[arg-type]  # click.Choice checked it
            input_format=input_format,  # type: ignore[arg-type]
            output_format=output_format,  # type: ignore[arg-type]
            chunk_rows=chunk_rows,
            resume=resume,
            allow_moved_alias=allow_moved_alias,
            overwrite=overwrite,
            engine=engine,  # type: ignore[arg-type]
            scheduler=scheduler,
            workers=workers,
            progress=True,
            log_predictions=log_predictions,
            settings=state().settings,
        )
    if as_json:
        print_json(summary.to_dict())
        return
    print_fields(
        [
            ("model", f"{summary.model}/{summary.version}"),
            ("output", summary.output),
            ("rows in", f"{summary.rows_in:,}"),
            ("rows out", f"{summary.rows_out:,}"),
            ("rows failed", f"{summary.rows_failed:,}"),
            ("parts", f"{summary.parts:,}"),
            ("seconds", f"{summary.seconds:,.1f}"),
            ("rows/s", f"{summary.rows_per_s:,.0f}"),
            ("errors", summary.errors),
        ]
    )
