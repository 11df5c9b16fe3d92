"""The TLS scenario of the serving benchmark: what HTTPS costs.

    python benchmarks/serve.py --tls [--duration 10] [--workers 2]

The accelerated forest of ``serve.py`` (RandomForestClassifier(n_estimators=100) on 20
float64 columns) is served twice, both servers up: ``modelport serve forest@production``
on plain HTTP, and the same with ``--tls-cert/--tls-key`` (a P-256 certificate made
here with ``cryptography``). ``wrk`` (built with OpenSSL: it speaks HTTPS without
checking the certificate) posts single-row MLflow requests on 64 keep-alive connections
to each in turn, three rounds, so that the machine's drift hits both alike. With
several workers the server closes a keep-alive connection every 100 requests and sheds
one every 0.1 s while busy (``server.http.connections``), so the HTTPS runs include
those connections' new handshakes, as real clients would pay them.

Prints each run, then the table and plain vs TLS requests/s.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import ipaddress
import os
import ssl
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import serve as bench

ROUNDS = 3
CONCURRENCY = 64
PLAIN, TLS = "plain HTTP", "HTTPS (TLS 1.3)"


@dataclass(frozen=True)
class Run:
    """One wrk run of one server."""

    scenario: str
    result: bench.WrkResult


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for 127.0.0.1 and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, bench.HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(bench.HOST))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def https_ready(port: int, context: ssl.SSLContext) -> bool:
    """Whether the HTTPS server answers its readiness probe with 200."""
    connection = http.client.HTTPSConnection(bench.HOST, port, timeout=5, context=context)
    try:
        connection.request("GET", "/v2/health/ready")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def start_tls(workers: int, cert: Path, key: Path, logs: Path) -> bench.Server:
    """The HTTPS server, ready."""
    port = bench.free_port()
    files = ("--tls-cert", str(cert), "--tls-key", str(key))
    command = bench.modelport_command("forest@production", port, workers, *files)
    server = bench.start_server(TLS, command, dict(os.environ), port, logs)
    context = ssl.create_default_context(cafile=str(cert))
    deadline = time.monotonic() + bench.READY_TIMEOUT_S
    while not https_ready(port, context):
        if server.process.poll() is not None or time.monotonic() > deadline:
            bench.stop_server(server)
            raise RuntimeError(f"{TLS} did not become ready:\n{server.log_tail()}")
        time.sleep(0.1)
    return server


def start_plain(workers: int, logs: Path) -> bench.Server:
    """The plain HTTP server, ready."""
    port = bench.free_port()
    command = bench.modelport_command("forest@production", port, workers)
    server = bench.start_server(PLAIN, command, dict(os.environ), port, logs)
    bench.wait_ready(server, "/v2/health/ready")
    return server


def measure(scenario: str, url: str, body: Path, duration: int) -> Run:
    """One wrk run, printed as it ends."""
    result = bench.run_wrk(url, body, CONCURRENCY, duration)
    print(
        f"  {scenario:<16} c={CONCURRENCY} {result.requests_per_s:9.1f} req/s  "
        f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  errors {result.errors}",
        flush=True,
    )
    return Run(scenario, result)


def compare(body: Path, duration: int, workers: int, scratch: Path) -> list[Run]:
    """Both servers up; measured in turns."""
    cert, key = make_certificate(scratch)
    logs = scratch / "logs"
    servers: list[bench.Server] = []
    runs: list[Run] = []
    try:
        servers.append(start_plain(workers, logs))
        servers.append(start_tls(workers, cert, key, logs))
        urls = {
            PLAIN: servers[0].url("/invocations"),
            TLS: f"https://{bench.HOST}:{servers[1].port}/invocations",
        }
        for url in urls.values():
            bench.run_wrk(url, body, CONCURRENCY, 2)  # warm-up
        for _ in range(ROUNDS):
            for scenario, url in urls.items():
                runs.append(measure(scenario, url, body, duration))
    finally:
        for server in servers:
            with contextlib.suppress(Exception):
                bench.stop_server(server)
    return runs


def report(runs: list[Run], workers: int) -> None:
    """The runs, then TLS against plain."""
    print(f"\n| server ({workers} workers) | c | req/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        r = run.result
        print(
            f"| {run.scenario} | {CONCURRENCY} | {r.requests_per_s:.1f} | {r.p50_ms:.2f} "
            f"| {r.p99_ms:.2f} | {r.errors} |"
        )
    means = {
        scenario: statistics.fmean(r.result.requests_per_s for r in runs if r.scenario == scenario)
        for scenario in (PLAIN, TLS)
    }
    p99 = {
        scenario: statistics.fmean(r.result.p99_ms for r in runs if r.scenario == scenario)
        for scenario in (PLAIN, TLS)
    }
    print("\n| measure | plain HTTP | HTTPS | HTTPS / plain |")
    print("|---|---|---|---|")
    print(
        f"| mean req/s, c={CONCURRENCY} | {means[PLAIN]:.0f} | {means[TLS]:.0f} "
        f"| {means[TLS] / means[PLAIN]:.1%} |"
    )
    print(
        f"| mean p99 ms, c={CONCURRENCY} | {p99[PLAIN]:.2f} | {p99[TLS]:.2f} "
        f"| {p99[TLS] / p99[PLAIN]:.1%} |"
    )


def main(duration: int, workers: int) -> int:
    """Train, register, measure, report."""
    bench.check_tools()
    with tempfile.TemporaryDirectory(prefix="modelport-bench-tls-") as directory:
        scratch = Path(directory)
        bodies = bench.registered_forest(scratch)
        print(f"- plain HTTP against HTTPS, c={CONCURRENCY}, {ROUNDS} rounds", flush=True)
        runs = compare(bodies.single, duration, workers, scratch)
        report(runs, workers)
    return 0
