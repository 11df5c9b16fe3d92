"""What ``RegistryClient``'s version checks send and read back: a sample reaches the
server's reader exactly as it was read here, and a gate report comes back as the same
``GateReport`` (its exit code with it)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from modelport.domain.gates import GateOutcome, GateReport, GateResult
from modelport.remote.versions import report_from_wire, write_sample
from modelport.server.http.registry_uploads import read_table


@pytest.mark.parametrize(
    "sample",
    [
        pd.DataFrame({"a": [1.5, 2.5], "b": ["x", "y"], "c": [1, 2]}),
        np.arange(12, dtype=np.float32).reshape(4, 3),
    ],
    ids=["table", "array"],
)
def test_a_sample_reaches_the_server_unchanged(sample: object, tmp_path: Path) -> None:
    with tempfile.TemporaryFile() as spool:
        fmt = write_sample(sample, spool)
        received = tmp_path / f"upload.{fmt}"
        received.write_bytes(spool.read())
    read = read_table(received)
    if isinstance(sample, pd.DataFrame):
        pd.testing.assert_frame_equal(read, sample)
    else:
        assert isinstance(read, np.ndarray) and read.dtype == np.float32
        np.testing.assert_array_equal(read, sample)


def test_an_unreadable_upload_is_a_clear_error(tmp_path: Path) -> None:
    from modelport.errors import InvalidRequestError

    bad = tmp_path / "upload.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(InvalidRequestError, match="cannot be read as parquet") as info:
        read_table(bad)
    assert str(tmp_path) not in info.value.message


def test_a_gate_report_comes_back_whole() -> None:
    report = GateReport(
        "churn",
        2,
        "production",
        (
            GateResult("artifacts", GateOutcome.PASSED, "3 files match"),
            GateResult("holdout", GateOutcome.FAILED, "accuracy 0.5 < 0.9", {"rows": 200}),
            GateResult("shadow", GateOutcome.SKIPPED, "no shadow"),
        ),
        baseline=1,
    )
    rebuilt = report_from_wire(orjson.loads(orjson.dumps(report.to_dict())))
    assert rebuilt == report and rebuilt.exit_code == 1
