"""A real `gdpr-sweep serve` process on a free loopback port, called with httpx (no proxies)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import procs
from tests.support.lake import lake_toml, two_datasets
from tests.support.procs import Server, stop_server

__all__ = ["CONFIG", "KEY", "Server", "start_server", "stop_server"]

KEY = "test-key-0123456789abcdef"
CONFIG = lake_toml(*two_datasets(source_root=None))


def start_server(root: Path, key: str | None = KEY, *extra: str) -> Server:
    """Start `gdpr-sweep serve --port 0` in `root` (the two-dataset configuration unless it has one)
    with the test API key, and wait until /healthz answers."""
    return procs.start_server(root, key, *extra)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """One server per test module (API key required); tests use distinct identities."""
    srv = start_server(tmp_path_factory.mktemp("api"))
    yield srv
    stop_server(srv)
    assert "@" not in srv.log, "the server log must not carry emails"


@pytest.fixture
def client(server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
