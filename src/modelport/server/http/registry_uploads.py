"""Data files uploaded to the registry routes: a training sample (``.../stats``) or a
labelled holdout (``.../validate``), sent as the raw bytes of the file
(``application/octet-stream``) with its format in the query (``?format=parquet``).

The body is spooled to a scratch file of that suffix, at most ``[serve]
max_upload_bytes`` (413 beyond), and removed when the request ends. Parquet and NumPy
files are read without executing anything (``allow_pickle=False``).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from modelport.errors import InvalidRequestError, UnsupportedMediaTypeError
from modelport.server.http.asgi import Receive, Scope, header
from modelport.server.http.registry_endpoint import RegistryEndpoint, last
from modelport.server.http.registry_transfer import spool_body

DATA = "application/octet-stream"
FORMATS = ("csv", "parquet", "npy")


def data_format(params: Mapping[str, list[str]], accepted: tuple[str, ...]) -> str:
    """The ``format`` query parameter, one of ``accepted``."""
    found = last(params, "format")
    if found not in accepted:
        raise InvalidRequestError(
            f"format must be one of {', '.join(accepted)}, not {found!r}", field="format"
        )
    return found


@asynccontextmanager
async def uploaded_file(
    endpoint: RegistryEndpoint, scope: Scope, receive: Receive, suffix: str, what: str
) -> AsyncIterator[Path | None]:
    """The request body as a scratch file named ``*.SUFFIX`` (None when the body is
    empty), removed when the block ends; ``what`` names it in messages."""
    content_type = (header(scope, b"content-type") or DATA).split(";")[0].strip().lower()
    if content_type != DATA:
        raise UnsupportedMediaTypeError(
            f"{scope['method']} {scope['path']} takes {what} as {DATA} (the file's bytes), "
            f"not {content_type}"
        )
    limit = endpoint.context.settings.max_upload_bytes
    scratch = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="modelport-data-"))
    try:
        path = scratch / f"upload.{suffix}"
        await spool_body(scope, receive, path, limit, what)
        yield path if path.stat().st_size else None
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)


def read_table(path: Path) -> Any:
    """A data file as the sample the registry takes: a DataFrame (CSV, Parquet) or an
    array (NumPy); ``InvalidRequestError`` when it cannot be read as its format."""
    import numpy as np
    import pandas as pd

    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (ValueError, OSError) as exc:  # pyarrow's and pandas' errors derive from these
        why = str(exc).replace(str(path), "the upload")  # never the server's scratch path
        raise InvalidRequestError(
            f"the uploaded file cannot be read as {path.suffix.lstrip('.')}: {why}", field="body"
        ) from None
