"""Unit tests are pure: every test runs with the network switched off (unix sockets stay allowed)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    """Any attempt to open an inet socket fails the test with SocketBlockedError."""
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
