"""``modelport.batch_predict`` on one machine: inputs of every kind, bad rows, the
committed output, resuming, and the refusals that keep an output honest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelport
from modelport.batch.scoring import BatchRowError
from modelport.errors import ConflictError, InvalidArgumentError
from testing_batch import expected, part_names, read_output, register, rows


@pytest.fixture
def churn() -> int:
    return register()


def test_scores_a_parquet_file_into_a_committed_directory_of_parts(
    churn: int, tmp_path: Path
) -> None:
    data = rows(2_000)
    data.to_parquet(tmp_path / "in.parquet", row_group_size=500)
    output = tmp_path / "scores.parquet"

    summary = modelport.batch_predict(
        "churn@production", str(tmp_path / "in.parquet"), str(output), chunk_rows=500
    )

    assert (summary.rows_in, summary.rows_out, summary.rows_failed) == (2_000, 2_000, 0)
    assert (summary.model, summary.version, summary.parts) == ("churn", churn, 4)
    assert summary.errors is None
    assert (output / "_SUCCESS").exists()
    assert json.loads((output / "_modelport.json").read_text())["rows_out"] == 2_000
    assert not Path(f"{output}.modelport-staging").exists()
    scored = read_output(output)
    # The signature's id column is kept by default; then the prediction, model, version.
    assert list(scored.columns) == ["customer_id", "prediction", "model", "model_version"]
    assert scored["customer_id"].tolist() == data["customer_id"].tolist()
    np.testing.assert_array_equal(scored["prediction"], expected(data))
    assert set(scored["model"]) == {"churn"} and set(scored["model_version"]) == {churn}
    # Readers of the directory skip the bookkeeping files.
    assert len(pd.read_parquet(output)) == 2_000


def test_an_accelerated_package_scores_like_the_model(tmp_path: Path) -> None:
    register("fast", accelerate=True)
    data = rows(1_000)
    data.to_parquet(tmp_path / "in.parquet")

    modelport.batch_predict(
        "fast@production",
        str(tmp_path / "in.parquet"),
        str(tmp_path / "out"),
        outputs=("prediction", "probabilities"),
        keep=("customer_id", "tenure"),
    )

    scored = read_output(tmp_path / "out")
    assert list(scored.columns) == [
        "customer_id", "tenure", "prediction", "probability_0", "probability_1", "model",
        "model_version",
    ]  # fmt: skip
    np.testing.assert_array_equal(scored["prediction"], expected(data))
    np.testing.assert_allclose(scored["probability_0"] + scored["probability_1"], 1, atol=1e-5)


def test_csv_in_csv_out(churn: int, tmp_path: Path) -> None:
    data = rows(700)
    data.to_csv(tmp_path / "in.csv", index=False)

    summary = modelport.batch_predict(
        "churn/1", str(tmp_path / "in.csv"), str(tmp_path / "scores.csv"), chunk_rows=300
    )

    assert summary.format == "csv" and summary.parts == 3
    assert part_names(tmp_path / "scores.csv") == [
        "part-00000-000000000000.csv", "part-00000-000000000300.csv",
        "part-00000-000000000600.csv",
    ]  # fmt: skip
    scored = read_output(tmp_path / "scores.csv")
    np.testing.assert_array_equal(scored["prediction"], expected(data))


def test_a_directory_and_a_glob_of_files(churn: int, tmp_path: Path) -> None:
    folder = tmp_path / "day=1"
    folder.mkdir()
    first, second, third = rows(300), rows(200, seed=1, start=300), rows(100, seed=2, start=500)
    first.to_parquet(folder / "a.parquet")
    second.to_csv(folder / "b.csv", index=False)
    third.to_parquet(folder / "c.parquet")
    (folder / "_SUCCESS").write_text("")  # another job's marker: not an input
    everything = pd.concat([first, second, third]).reset_index(drop=True)

    whole = modelport.batch_predict("churn@production", str(folder), str(tmp_path / "all"))
    parquet_only = modelport.batch_predict(
        "churn@production", str(tmp_path / "day=*" / "*.parquet"), str(tmp_path / "some")
    )

    assert (whole.files, whole.rows_out) == (3, 600)
    np.testing.assert_array_equal(read_output(tmp_path / "all")["prediction"], expected(everything))
    assert (parquet_only.files, parquet_only.rows_out) == (2, 400)
    # A glob naming directories reads each as a directory.
    folders = modelport.batch_predict(
        "churn@production", str(tmp_path / "day=*"), str(tmp_path / "folders")
    )
    assert (folders.files, folders.rows_out) == (3, 600)
    assert part_names(tmp_path / "some") == [
        "part-00000-000000000000.parquet", "part-00001-000000000000.parquet",
    ]  # fmt: skip


def _with_bad_row(data: pd.DataFrame, row: int) -> pd.DataFrame:
    bad = data.copy()
    bad.loc[row, "charges"] = np.nan  # the signature allows no missing charges
    return bad


def test_on_error_fail_names_the_file_row_and_column_and_leaves_no_output(
    churn: int, tmp_path: Path
) -> None:
    source = tmp_path / "in.parquet"
    _with_bad_row(rows(1_000), 637).to_parquet(source)
    output = tmp_path / "out"

    with pytest.raises(BatchRowError) as info:
        modelport.batch_predict("churn@production", str(source), str(output), chunk_rows=100)

    assert str(info.value).startswith(f"{source}, row 637, column 'charges': ")
    assert (info.value.file, info.value.row, info.value.column) == (str(source), 637, "charges")
    assert not output.exists()
    journal = json.loads(Path(f"{output}.modelport-staging/_job.json").read_text())
    assert journal["status"] == "failed" and "row 637" in journal["error"]


@pytest.mark.parametrize("mode", ["skip", "null"])
def test_skipped_and_nulled_rows_are_listed_and_counted(
    churn: int, tmp_path: Path, mode: str
) -> None:
    source = tmp_path / "in.csv"
    data = rows(500)
    _with_bad_row(data, 42).to_csv(source, index=False)

    summary = modelport.batch_predict(
        "churn@production", str(source), str(tmp_path / "out"), on_error=mode, chunk_rows=200
    )

    assert summary.rows_failed == 1
    assert summary.rows_out == (499 if mode == "skip" else 500)
    assert summary.errors == f"{tmp_path / 'out'}/_errors"
    errors = pd.read_parquet(tmp_path / "out" / "_errors")
    assert errors.to_dict("records") == [
        {
            "file": str(source),
            "row": 42,
            "column": "charges",
            "error": "column 'charges' has 1 missing value, but the signature does not allow "
            "missing values in it",
        }
    ]
    scored = read_output(tmp_path / "out")
    good = data.drop(index=42)
    kept = scored[scored["customer_id"] != 42]
    np.testing.assert_array_equal(kept["prediction"], expected(good))
    if mode == "skip":
        assert 42 not in set(scored["customer_id"])
    else:
        assert scored.loc[scored["customer_id"] == 42, "prediction"].isna().all()


def test_resume_after_a_failure_gives_the_output_of_a_clean_run(churn: int, tmp_path: Path) -> None:
    data = rows(1_200)
    source = tmp_path / "in.parquet"
    _with_bad_row(data, 950).to_parquet(source, row_group_size=100)
    output = tmp_path / "out"
    with pytest.raises(BatchRowError):
        modelport.batch_predict(
            "churn@production", str(source), str(output), chunk_rows=100, workers=1
        )
    written = part_names(f"{output}.modelport-staging")
    assert "part-00000-000000000000.parquet" in written
    assert "part-00000-000000000900.parquet" not in written

    data.to_parquet(source, row_group_size=100)  # the bad row fixed
    resumed = modelport.batch_predict(
        "churn@production", str(source), str(output), chunk_rows=100, resume=True
    )
    clean = modelport.batch_predict(
        "churn@production", str(source), str(tmp_path / "clean"), chunk_rows=100
    )
    assert clean.resumed_parts == 0 and clean.rows_out == resumed.rows_out

    assert resumed.resumed_parts >= 1 and resumed.rows_out == 1_200 and resumed.parts == 12
    assert part_names(output) == part_names(tmp_path / "clean")
    pd.testing.assert_frame_equal(read_output(output), read_output(tmp_path / "clean"))


def _interrupted_run(tmp_path: Path) -> tuple[Path, Path]:
    data = rows(600)
    source = tmp_path / "in.parquet"
    _with_bad_row(data, 550).to_parquet(source, row_group_size=100)
    output = tmp_path / "out"
    with pytest.raises(BatchRowError):
        modelport.batch_predict(
            "churn@production", str(source), str(output), chunk_rows=100, workers=1
        )
    data.to_parquet(source, row_group_size=100)
    return source, output


def test_resume_refuses_when_the_alias_moved_unless_told(churn: int, tmp_path: Path) -> None:
    source, output = _interrupted_run(tmp_path)
    newer = register(offset=-20)  # production now names version 2

    with pytest.raises(ConflictError) as info:
        modelport.batch_predict(
            "churn@production", str(source), str(output), chunk_rows=100, resume=True
        )
    message = str(info.value)
    assert f"now names churn/{newer}" in message and f"with churn/{churn}" in message
    assert "--allow-moved-alias" in message

    summary = modelport.batch_predict(
        "churn@production",
        str(source),
        str(output),
        chunk_rows=100,
        resume=True,
        allow_moved_alias=True,
    )
    assert summary.version == churn
    assert set(read_output(output)["model_version"]) == {churn}


def test_resume_refuses_other_options_or_inputs(churn: int, tmp_path: Path) -> None:
    source, output = _interrupted_run(tmp_path)
    other = tmp_path / "other.parquet"
    rows(10).to_parquet(other)

    with pytest.raises(ConflictError, match="on_error was 'fail', now 'skip'"):
        modelport.batch_predict(
            "churn@production", str(source), str(output), chunk_rows=100, resume=True,
            on_error="skip",
        )  # fmt: skip
    with pytest.raises(ConflictError, match="chunk_rows was 100, now 50"):
        modelport.batch_predict(
            "churn@production", str(source), str(output), chunk_rows=50, resume=True
        )
    with pytest.raises(ConflictError, match="1 input files then, 1 now, new: .*other.parquet"):
        modelport.batch_predict(
            "churn@production", str(other), str(output), chunk_rows=100, resume=True
        )


def test_an_output_is_never_replaced_unless_told(churn: int, tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    rows(100).to_parquet(source)
    output = tmp_path / "out"
    modelport.batch_predict("churn@production", str(source), str(output))

    with pytest.raises(ConflictError, match="exists; pass --overwrite"):
        modelport.batch_predict("churn@production", str(source), str(output))
    with pytest.raises(ConflictError, match="complete: there is nothing to resume"):
        modelport.batch_predict("churn@production", str(source), str(output), resume=True)

    rows(30).to_parquet(source)
    summary = modelport.batch_predict("churn@production", str(source), str(output), overwrite=True)
    assert summary.rows_out == 30 and len(read_output(output)) == 30
    assert not Path(f"{output}.modelport-old").exists()


def test_an_interrupted_run_is_resumed_or_discarded_not_ignored(churn: int, tmp_path: Path) -> None:
    source, output = _interrupted_run(tmp_path)

    with pytest.raises(ConflictError, match="pass --resume to continue it, or --overwrite"):
        modelport.batch_predict("churn@production", str(source), str(output), chunk_rows=100)

    summary = modelport.batch_predict(
        "churn@production", str(source), str(output), chunk_rows=100, overwrite=True
    )
    assert summary.resumed_parts == 0 and summary.rows_out == 600


def test_fsspec_uris_in_and_out(churn: int) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    data = rows(300)
    with fs.open("/batch-test/in/a.parquet", "wb") as handle:
        data.to_parquet(handle)
    try:
        summary = modelport.batch_predict(
            "churn@production", "memory://batch-test/in", "memory://batch-test/out", chunk_rows=100
        )
        assert summary.output == "memory://batch-test/out" and summary.parts == 3
        # No rename on object stores: _SUCCESS, written last, says the output is whole.
        assert fs.exists("/batch-test/out/_SUCCESS")
        with fs.open("/batch-test/out/part-00000-000000000100.parquet", "rb") as handle:
            part = pd.read_parquet(handle)
        assert part["customer_id"].tolist() == list(range(100, 200))
        with pytest.raises(ConflictError, match="exists"):
            modelport.batch_predict(
                "churn@production", "memory://batch-test/in", "memory://batch-test/out"
            )
    finally:
        fs.rm("/batch-test", recursive=True)


def test_scores_go_to_the_prediction_log(churn: int, tmp_path: Path) -> None:
    from modelport.config import Settings
    from modelport.monitoring.prediction_log import query

    rows(250).to_parquet(tmp_path / "in.parquet")
    modelport.batch_predict(
        "churn@production",
        str(tmp_path / "in.parquet"),
        str(tmp_path / "out"),
        chunk_rows=100,
        log_predictions=True,
    )

    logged = query(Settings().resolved_prediction_log_uri, "churn", str(churn)).to_pandas()
    assert len(logged) == 250
    assert set(logged["protocol"]) == {"batch"}
    assert sorted(logged["id_customer_id"]) == list(range(250))
    scored = read_output(tmp_path / "out")
    by_id = logged.set_index("id_customer_id").sort_index()
    np.testing.assert_array_equal(by_id["out_predictions"], scored["prediction"])
    assert by_id["prediction_id"].is_unique


def test_bad_arguments_are_refused_and_leave_no_output(churn: int, tmp_path: Path) -> None:
    rows(10).to_parquet(tmp_path / "in.parquet")
    source, output = str(tmp_path / "in.parquet"), str(tmp_path / "out")
    with pytest.raises(InvalidArgumentError, match="unknown engine 'spark'"):
        modelport.batch_predict("churn@production", source, output, engine="spark")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="no input file"):
        modelport.batch_predict("churn@production", str(tmp_path / "nothing.csv"), output)
    with pytest.raises(InvalidArgumentError, match="no column 'email' to keep"):
        modelport.batch_predict("churn@production", source, output, keep=["email"])
    assert not Path(output).exists()


def test_a_signed_only_alias_scores_only_a_verified_version(
    churn: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("model_signing")
    from modelport.cli.main import main
    from modelport.config import Settings
    from modelport.errors import SignatureVerificationError

    with pytest.raises(SystemExit):
        main(["keys", "generate", "--out", str(tmp_path / "trusted")])
    capsys.readouterr()
    settings = Settings(
        signing={"trusted_keys": [str(tmp_path / "trusted.pub")], "require_signed": ["production"]}
    )
    rows(20).to_parquet(tmp_path / "in.parquet")
    source = str(tmp_path / "in.parquet")

    with pytest.raises(SignatureVerificationError, match=f"churn/{churn}"):
        modelport.batch_predict("churn@production", source, str(tmp_path / "a"), settings=settings)
    assert not (tmp_path / "a").exists()
    # Another alias of the same version is not covered by the policy.
    modelport.set_alias("churn", "nightly", churn)
    modelport.batch_predict("churn@nightly", source, str(tmp_path / "b"), settings=settings)

    with modelport.connect(settings) as registry:
        registry.sign_version(f"churn/{churn}", tmp_path / "trusted.pem")
    summary = modelport.batch_predict(
        "churn@production", source, str(tmp_path / "a"), settings=settings
    )
    assert summary.rows_out == 20


@pytest.mark.slow
def test_an_s3_input_and_output(churn: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for name, value in {
            "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
        }.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket="lake")
        data = rows(400)
        client.put_object(Bucket="lake", Key="in/day=1/a.parquet", Body=data.to_parquet())
        client.put_object(Bucket="lake", Key="in/day=1/_SUCCESS", Body=b"")

        summary = modelport.batch_predict(
            "churn@production", "s3://lake/in/day=*/", "s3://lake/scores", chunk_rows=150
        )

        assert summary.rows_out == 400 and summary.parts == 3
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="lake")["Contents"])
        assert [k for k in keys if k.startswith("scores/")] == [
            "scores/_SUCCESS", "scores/_job.json", "scores/_modelport.json",
            "scores/part-00000-000000000000.parquet", "scores/part-00000-000000000150.parquet",
            "scores/part-00000-000000000300.parquet",
        ]  # fmt: skip
        body = client.get_object(Bucket="lake", Key="scores/part-00000-000000000150.parquet")
        import io

        part = pd.read_parquet(io.BytesIO(body["Body"].read()))
        assert part["customer_id"].tolist() == list(range(150, 300))
        with pytest.raises(ConflictError, match="exists"):
            modelport.batch_predict("churn@production", "s3://lake/in/day=*/", "s3://lake/scores")
    finally:
        server.stop()


def test_a_word_in_a_numeric_csv_column_fails_only_its_row(churn: int, tmp_path: Path) -> None:
    # One cell that is not a number makes the CSV reader take the whole column as text;
    # the other rows of that column are still numbers and are scored.
    data = rows(300).astype({"charges": object})
    data.loc[7, "charges"] = "unknown"
    source = tmp_path / "in.csv"
    data.to_csv(source, index=False)

    summary = modelport.batch_predict(
        "churn@production", str(source), str(tmp_path / "out"), on_error="skip"
    )

    assert (summary.rows_out, summary.rows_failed) == (299, 1)
    errors = pd.read_parquet(tmp_path / "out" / "_errors")
    assert errors[["row", "column"]].to_dict("records") == [{"row": 7, "column": "charges"}]
    assert "'unknown'" in errors["error"][0]
    scored = read_output(tmp_path / "out")
    good = rows(300).drop(index=7)
    np.testing.assert_array_equal(scored["prediction"], expected(good))
    with pytest.raises(BatchRowError, match=r"row 7, column 'charges'"):
        modelport.batch_predict("churn@production", str(source), str(tmp_path / "failed"))
