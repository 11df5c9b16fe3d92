"""Package files over HTTP: registration by upload, and download with digests.

Upload (``POST /api/registry/models/{name}/versions``): the body is a tar stream of the
package directory (``application/x-tar``) and ``X-Modelport-Manifest-Sha256`` the sha256
of its ``modelport.yaml``. The body is spooled to disk (up to ``serve.max_upload_bytes``),
then every member is checked before anything is registered: the manifest against the
header, each file against the sha256 the manifest records, nothing missing, nothing
extra, regular files only, no path leaving the package. Only then does the registry
register the directory, exactly as ``modelport model register DIR`` does locally (verify,
check the input example, upload, one metadata transaction): a refused or failed upload
leaves no version and no files.

Download: ``GET .../files`` lists the version's files with their sha256 and size (the
manifest's own digest is the one recorded at registration); ``GET .../file?path=P``
streams one of them. The client checks every digest as it writes its cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import IO, Any

from modelport.domain.entities import ModelVersion
from modelport.domain.names import validate_model_name
from modelport.errors import (
    IntegrityError,
    InvalidRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from modelport.package.location import MANIFEST_FILE
from modelport.package.manifest import read_manifest
from modelport.registry.service import RegistryService
from modelport.server.http.access import Access
from modelport.server.http.asgi import OCTET_STREAM, Receive, Scope, Send, header, respond
from modelport.server.http.endpoint import Reply
from modelport.server.http.registry_endpoint import (
    RegistryEndpoint,
    last,
    query,
    version_param,
)

TAR = "application/x-tar"
MANIFEST_HEADER = b"x-modelport-manifest-sha256"
SHA256_HEADER = b"x-modelport-sha256"
_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


async def register(
    endpoint: RegistryEndpoint, scope: Scope, receive: Receive, name: str
) -> ModelVersion:
    """Receive an uploaded package, check every file, and register it as the next
    version of ``name`` (the audit trail records the calling key)."""
    content_type = (header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if content_type != TAR:
        raise UnsupportedMediaTypeError(
            f"registering takes the package as {TAR}, not {content_type or 'no content type'}"
        )
    manifest_sha = (header(scope, MANIFEST_HEADER) or "").strip().lower()
    if not _SHA256.fullmatch(manifest_sha):
        raise InvalidRequestError(
            "X-Modelport-Manifest-Sha256 must carry the sha256 of modelport.yaml (64 hex digits)",
            field="X-Modelport-Manifest-Sha256",
        )
    validate_model_name(name)  # before receiving what may be gigabytes
    limit = endpoint.context.settings.max_upload_bytes
    scratch = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="modelport-upload-"))
    try:
        archive, package = scratch / "package.tar", scratch / "package"
        await spool_body(scope, receive, archive, limit)

        def publish(registry: RegistryService) -> ModelVersion:
            unpack_verified(archive, package, manifest_sha)
            return registry.register(package, name)

        version: ModelVersion = await endpoint.call(scope, publish)
        return version
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)


async def spool_body(
    scope: Scope, receive: Receive, target: Path, limit: int, what: str = "the package"
) -> None:
    """Write the request body (``what``, in messages) to ``target``, refusing more than
    ``limit`` bytes (413)."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"{what} is larger than the limit of {limit} bytes")
    size = 0
    with target.open("wb") as out:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise InvalidRequestError(f"the client disconnected before sending {what}")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"{what} is larger than the limit of {limit} bytes")
            if chunk:
                await asyncio.to_thread(out.write, chunk)
            if not message.get("more_body", False):
                return


def unpack_verified(archive: Path, target: Path, manifest_sha: str) -> None:
    """Unpack the package tar ``archive`` into ``target``, checking the manifest against
    ``manifest_sha`` and every file against the manifest (``IntegrityError`` naming the
    first file that differs, is missing or is not listed)."""
    target.mkdir()
    try:
        with tarfile.open(archive, mode="r:") as tar:
            members = {_member_path(m): m for m in tar.getmembers() if not m.isdir()}
            if MANIFEST_FILE not in members:
                raise IntegrityError(f"the upload has no {MANIFEST_FILE}", field=MANIFEST_FILE)
            _extract(tar, members.pop(MANIFEST_FILE), target / MANIFEST_FILE, manifest_sha)
            manifest = read_manifest(target)
            extra = sorted(set(members) - set(manifest.files))
            if extra:
                raise IntegrityError(
                    f"package file {extra[0]!r} is not listed in {MANIFEST_FILE}", field=extra[0]
                )
            for relpath, entry in sorted(manifest.files.items()):
                if relpath not in members:
                    raise IntegrityError(f"package file {relpath!r} is missing", field=relpath)
                _extract(tar, members[relpath], target / relpath, entry.sha256)
    except tarfile.TarError as exc:
        raise InvalidRequestError(f"the upload is not a readable tar stream: {exc}") from None


def _member_path(member: tarfile.TarInfo) -> str:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or not member.isfile():
        raise IntegrityError(
            f"{member.name!r} is not a regular file inside the package", field=member.name
        )
    return path.as_posix().removeprefix("./")


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, sha256: str) -> None:
    source = tar.extractfile(member)
    assert source is not None  # a regular file (checked by _member_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with source, target.open("wb") as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        raise IntegrityError(
            f"package file {member.name!r} does not match its sha256 in the upload "
            "(the upload was corrupted or the package changed after it was written)",
            field=member.name,
        )


def _listing(registry: RegistryService, name: str, number: int) -> tuple[Path, dict[str, Any]]:
    """The version's local directory (a remote store downloads it into its cache) and
    the files document."""
    version = registry.get_version(name, number)
    manifest = registry.get_manifest(version)
    directory = registry.artifacts.local_path(version.artifact_key)
    files = [{"path": MANIFEST_FILE, "sha256": version.manifest_digest,
              "size": (directory / MANIFEST_FILE).stat().st_size}]  # fmt: skip
    files += [
        {"path": path, "sha256": entry.sha256, "size": entry.size}
        for path, entry in sorted(manifest.files.items())
    ]
    document = {"name": name, "version": number, "manifest_sha256": version.manifest_digest}
    return directory, {**document, "files": files}


class ApiRegistryFiles(RegistryEndpoint):
    """GET .../versions/{version}/files: every file of the package with its sha256."""

    access = Access(("read",), "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name, number = scope["path_params"]["name"], version_param(scope)
        _, document = await self.call(scope, lambda r: _listing(r, name, number))
        return Reply.json(document)


class ApiRegistryFile(RegistryEndpoint):
    """GET .../versions/{version}/file?path=P: one listed file, streamed, its sha256 in
    ``X-Modelport-Sha256`` (``__call__`` streams it instead of building a ``Reply``)."""

    access = Access(("read",), "name")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            path, sha256, size = await self._find(scope)
            stream: IO[bytes] = await asyncio.to_thread(path.open, "rb")
        except Exception as exc:
            reply = self._error_reply(scope, exc)
            await respond(send, reply.status, reply.body, reply.content_type, reply.headers)
            return
        headers = [
            (b"content-type", OCTET_STREAM),
            (b"content-length", str(size).encode()),
            (SHA256_HEADER, sha256.encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with stream:
            while chunk := await asyncio.to_thread(stream.read, _CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _find(self, scope: Scope) -> tuple[Path, str, int]:
        name, number = scope["path_params"]["name"], version_param(scope)
        wanted = last(query(scope, ("path",)), "path")
        directory, document = await self.call(scope, lambda r: _listing(r, name, number))
        for entry in document["files"]:
            if entry["path"] == wanted:
                return directory / entry["path"], entry["sha256"], entry["size"]
        raise InvalidRequestError(
            f"version {number} of {name!r} has no file {wanted!r}; GET .../files lists them",
            field="path",
        )
