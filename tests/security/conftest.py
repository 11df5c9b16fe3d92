"""The keyed registry the security tests share (built once per session: two small
models and the keys of ``testing_security.KEYS``), and a server checking its keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from testing_security import KeyedCatalog, build_keyed_catalog, keyed_server


@pytest.fixture(scope="session")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> KeyedCatalog:
    """The registry with the models alpha and beta and one key per kind of holder."""
    return build_keyed_catalog(tmp_path_factory.mktemp("keyed-registry"))


@pytest.fixture(scope="module")
def keyed_client(keyed: KeyedCatalog) -> Iterator[TestClient]:
    """A server of alpha and beta that requires keys, shared by a module's tests."""
    with keyed_server(keyed.settings) as client:
        yield client
