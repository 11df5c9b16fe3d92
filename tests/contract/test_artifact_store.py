"""The same tests against every ArtifactStore: local disk, memory, and S3 (a real moto
server spoken to over HTTP by s3fs)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelport.artifacts.local import LocalArtifactStore
from modelport.artifacts.memory import MemoryArtifactStore
from modelport.artifacts.remote import FsspecArtifactStore
from modelport.artifacts.store import ArtifactStore
from modelport.errors import IntegrityError, InvalidArgumentError
from modelport.package.digests import sha256_file


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _s3_store(endpoint: str, tmp_path: Path) -> FsspecArtifactStore:
    import boto3

    bucket = f"models-{tmp_path.name.lower().replace('_', '-')[:40]}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="x", aws_secret_access_key="x",
        region_name="us-east-1",
    )  # fmt: skip
    client.create_bucket(Bucket=bucket)
    return FsspecArtifactStore(
        f"s3://{bucket}/registry",
        tmp_path / "cache",
        key="x",
        secret="x",
        client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"},
    )


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    if request.param == "local":
        yield LocalArtifactStore(tmp_path / "artifacts")
    elif request.param == "memory":
        memory = MemoryArtifactStore()
        yield memory
        memory.close()
    else:
        yield _s3_store(request.getfixturevalue("s3_endpoint"), tmp_path)


@pytest.fixture
def package(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "package"
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.onnx").write_bytes(b"\x08\x07graph" * 100)
    (root / "modelport.yaml").write_text("format_version: 1\n")
    digests = {
        path.relative_to(root).as_posix(): sha256_file(path)
        for path in root.rglob("*")
        if path.is_file()
    }
    return root, digests


def test_put_then_read_back(store: ArtifactStore, package: tuple[Path, dict[str, str]]) -> None:
    root, digests = package
    store.put_directory(root, "churn/abc123", digests)
    assert store.exists("churn/abc123")
    assert store.keys() == ["churn/abc123"]
    local = store.local_path("churn/abc123")
    for relpath, digest in digests.items():
        assert sha256_file(local / relpath) == digest
    # Exactly the package's files: nothing of the store's own (a cache marker) among them,
    # or the digests and a model signature would see an unexpected file.
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert files == set(digests)
    assert store.local_path("churn/abc123") == local


def test_delete_removes_everything(
    store: ArtifactStore, package: tuple[Path, dict[str, str]]
) -> None:
    root, digests = package
    store.put_directory(root, "churn/one", digests)
    store.put_directory(root, "churn/two", digests)
    store.delete("churn/one")
    assert store.keys() == ["churn/two"]
    assert not store.exists("churn/one")
    store.delete("churn/never-existed")


def test_a_digest_mismatch_leaves_nothing(
    store: ArtifactStore, package: tuple[Path, dict[str, str]]
) -> None:
    root, digests = package
    wrong = {**digests, "model/model.onnx": "0" * 64}
    with pytest.raises(IntegrityError, match=r"model/model\.onnx"):
        store.put_directory(root, "churn/bad", wrong)
    assert store.keys() == []
    assert not store.exists("churn/bad")


def test_a_failed_upload_leaves_nothing(
    store: ArtifactStore, package: tuple[Path, dict[str, str]]
) -> None:
    root, digests = package
    with pytest.raises(OSError):
        store.put_directory(root, "churn/partial", {**digests, "zzz/missing.bin": "0" * 64})
    assert store.keys() == []


@pytest.mark.parametrize("key", ["../escape", "/abs/key", "churn/../../x", "churn//x", ""])
def test_unsafe_keys_are_refused(store: ArtifactStore, key: str) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid artifact key"):
        store.exists(key)


def test_unsafe_relative_paths_are_refused(
    store: ArtifactStore, package: tuple[Path, dict[str, str]]
) -> None:
    root, _ = package
    with pytest.raises(IntegrityError, match="unsafe file path"):
        store.put_directory(root, "churn/x", {"../outside": "0" * 64})
    assert store.keys() == []


def test_local_store_is_private_to_the_user(
    tmp_path: Path, package: tuple[Path, dict[str, str]]
) -> None:
    root, digests = package
    store = LocalArtifactStore(tmp_path / "artifacts")
    store.put_directory(root, "churn/abc", digests)
    assert (tmp_path / "artifacts").stat().st_mode & 0o077 == 0
