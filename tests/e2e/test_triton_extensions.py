"""tritonclient's calls for Triton's extensions against ``modelport serve --workers 2``:
model configuration, statistics summed over the workers, the repository index, and
load/unload refused with a message the client raises."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest

import modelport
from modelport.package.options import PackageOptions
from testing_models import EchoModel
from testing_process import serving

ROW = {"inputs": [{"name": "input", "shape": [2, 3], "datatype": "FP64", "data": [1] * 6}]}
REQUESTS = 40


def test_tritonclient_reads_config_statistics_and_index_of_two_workers(
    isolated_home: Path,
) -> None:
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    with modelport.connect() as registry:
        options = PackageOptions(sample_input=np.zeros((4, 3)))
        registry.register(EchoModel(), "echo", options)
        registry.promote("echo", 1, "production")
    args = ["echo@production", "--workers", "2", "--max-batch-size", "16"]
    with serving(isolated_home, args) as server:
        client = httpclient.InferenceServerClient(url=f"{server.host}:{server.port}")
        try:
            config = client.get_model_config("echo")
            assert (config["name"], config["max_batch_size"]) == ("echo", 16)
            assert config["version_policy"] == {"specific": {"versions": [1]}}
            assert client.get_model_repository_index() == [
                {"name": "echo", "version": "1", "state": "READY", "reason": ""}
            ]
            # One connection per request: the kernel spreads them over both workers.
            for _ in range(REQUESTS):
                response = httpx.post(
                    f"{server.url}/v2/models/echo/infer", json=ROW, headers={"Connection": "close"}
                )
                assert response.status_code == 200
            stats = _stats_once_all_counted(client)
            assert stats["inference_count"] == 2 * REQUESTS
            assert stats["inference_stats"]["queue"]["count"] == REQUESTS
            assert stats["execution_count"] >= 1
            by_version = client.get_inference_statistics("echo", "1")["model_stats"]
            assert by_version == client.get_inference_statistics("echo")["model_stats"]
            with pytest.raises(InferenceServerException, match="load / unload is not allowed"):
                client.load_model("echo")
            with pytest.raises(InferenceServerException, match="alias set echo production"):
                client.unload_model("echo")
        finally:
            client.close()


def _stats_once_all_counted(client: object) -> dict[str, object]:
    """The statistics of echo once every request shows (the other worker writes its
    counts every second)."""
    deadline = time.monotonic() + 10
    while True:
        (stat,) = client.get_inference_statistics()["model_stats"]  # type: ignore[attr-defined]
        if stat["inference_stats"]["success"]["count"] == REQUESTS:
            return dict(stat)
        assert time.monotonic() < deadline, f"only {stat['inference_stats']} were counted"
        time.sleep(0.2)
