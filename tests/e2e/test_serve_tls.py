"""``modelport serve`` over HTTPS with a CA made by the test: curl, tritonclient and
MLflow-style requests, health probes, and client certificates (mutual TLS); and behind
a TLS-terminating proxy (``--behind-proxy``).

MLflow's own scoring client (``mlflow.pyfunc.scoring_server.client.ScoringServerClient``)
builds ``http://`` URLs only; what it sends (``requests``, ``GET /ping`` and ``POST
/invocations`` with ``Content-Type: application/json``) is sent here with ``requests``
over HTTPS, as a user pointing that code at an HTTPS server would.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import requests

import modelport
from modelport.package.options import PackageOptions
from testing_models import EchoModel
from testing_process import serving
from testing_tls import Pki, make_pki

ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
PROBES = ("/v2/health/live", "/v2/health/ready", "/ping", "/health")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def register_echo() -> None:
    options = PackageOptions(sample_input=np.zeros((4, 3)))
    with modelport.connect() as registry:
        version = registry.register(EchoModel(), "echo", options).version
        registry.promote("echo", version, "production")


def tls_args(pki: Pki, *extra: str) -> list[str]:
    files = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    return ["echo@production", *files, *extra]


CURL = ["curl", "--silent", "--show-error", "--max-time", "10", "--write-out", "\n%{http_code}"]


def curl(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """curl: the body then the status code on stdout ("000": no HTTP answer)."""
    command = [*CURL, *args, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def with_cert(files: tuple[Path, Path]) -> tuple[str, ...]:
    return ("--cert", str(files[0]), "--key", str(files[1]))


def curl_infer(url: str, *args: str) -> float:
    result = curl(f"{url}/v2/models/echo/infer", *args, "--json", json.dumps(ROW))
    body, _, status = result.stdout.rpartition("\n")
    assert status == "200", result.stderr + result.stdout
    return float(json.loads(body)["outputs"][0]["data"][0])


def triton(url: str, ssl_options: dict[str, str]) -> float:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(
        url=url.removeprefix("https://"), ssl=True, ssl_options=ssl_options
    )
    try:
        assert client.is_server_live() and client.is_server_ready()
        given = httpclient.InferInput("input", [1, 3], "FP64")
        given.set_data_from_numpy(np.array([[1.0, 2.0, 3.0]]))
        return float(client.infer("echo", [given]).as_numpy("predictions")[0])
    finally:
        client.close()


def mlflow_scoring(url: str, **tls: object) -> list[float]:
    assert requests.get(f"{url}/ping", timeout=10, **tls).status_code == 200  # type: ignore[arg-type]
    response = requests.post(
        f"{url}/invocations",
        data=json.dumps({"inputs": [[1, 2, 3]]}),
        headers={"Content-Type": "application/json"},
        timeout=10,
        **tls,  # type: ignore[arg-type]
    )
    assert response.status_code == 200, response.text
    return list(response.json()["predictions"])


def test_https_serves_probes_curl_tritonclient_and_mlflow_requests(
    isolated_home: Path, pki: Pki
) -> None:
    register_echo()
    ca = str(pki.ca.cert)
    with serving(isolated_home, tls_args(pki)) as server:
        assert server.url.startswith("https://127.0.0.1:")
        for path in PROBES:  # what a load balancer's or kubelet's HTTPS probe asks
            probe = curl(server.url + path, "--cacert", ca, "--output", "/dev/null")
            assert probe.stdout == "\n200", (path, probe)
        assert curl_infer(server.url, "--cacert", ca) == 6.0
        assert triton(server.url, {"ca_certs": ca}) == 6.0
        with pytest.raises(ssl.SSLCertVerificationError):  # it checks the certificate
            triton(server.url, {"ca_certs": str(pki.other_ca.cert)})
        assert mlflow_scoring(server.url, verify=ca) == [6.0]
        # A client that does not trust our CA refuses the server's certificate.
        refused = curl(server.url + "/ping")
        assert refused.returncode == 60, refused.stderr  # "SSL certificate problem"
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{server.url}/ping", verify=str(pki.other_ca.cert), timeout=10)
        # Plain HTTP on the port is not served.
        assert curl(server.url.replace("https://", "http://") + "/ping").stdout.endswith("000")


def test_client_certificates_are_required_and_checked(isolated_home: Path, pki: Pki) -> None:
    register_echo()
    ca = str(pki.ca.cert)
    client = pki.ca.issue("ci", client=True)
    cert, key = str(client[0]), str(client[1])
    expired = pki.ca.issue("retired", client=True, expired=True)
    stranger = pki.other_ca.issue("stranger", client=True)
    with serving(isolated_home, tls_args(pki, "--tls-client-ca", ca)) as server:
        assert curl_infer(server.url, "--cacert", ca, *with_cert(client)) == 6.0
        assert triton(server.url, {"ca_certs": ca, "certfile": cert, "keyfile": key}) == 6.0
        assert mlflow_scoring(server.url, verify=ca, cert=(cert, key)) == [6.0]
        refusals = {
            "no certificate": curl(server.url + "/ping", "--cacert", ca),
            "expired": curl(server.url + "/ping", "--cacert", ca, *with_cert(expired)),
            "another CA's": curl(server.url + "/ping", "--cacert", ca, *with_cert(stranger)),
        }
        for name, result in refusals.items():
            assert result.returncode != 0 and result.stdout.endswith("000"), (name, result)
        with pytest.raises(requests.exceptions.RequestException):
            requests.get(f"{server.url}/ping", verify=ca, timeout=10)
        log = server.stderr.read_text()
    assert "Traceback" not in log


def access_clients(log: Path) -> list[str]:
    """The ``client`` of each access-log line."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line["client"] for line in lines if line.get("message", "").startswith("GET /ping")]


def test_behind_a_proxy_only_the_trusted_proxy_names_the_client(isolated_home: Path) -> None:
    register_echo()
    proxy = ["--behind-proxy", "--forwarded-allow-ips", "127.0.0.1", "--access-log"]
    forwarded = {"X-Forwarded-For": "127.0.0.1, 198.51.100.7", "X-Forwarded-Proto": "https"}
    with serving(isolated_home, ["echo@production", *proxy]) as server:
        for source in ("127.0.0.1", "127.0.0.2"):  # the proxy, then anyone else on loopback
            transport = httpx.HTTPTransport(local_address=source)
            with httpx.Client(base_url=server.url, transport=transport, timeout=10) as client:
                assert client.get("/ping", headers=forwarded).status_code == 200
        log = server.stderr
        deadline = time.monotonic() + 5
        while len(access_clients(log)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    # From the trusted proxy: the rightmost address it did not add itself (a client may
    # write "127.0.0.1" on its own); from anyone else, its header is ignored.
    assert access_clients(log) == ["198.51.100.7", "127.0.0.2"]
