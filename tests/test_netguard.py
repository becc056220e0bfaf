"""The session-wide network guard (tests/fixtures/netguard.py) refuses every non-loopback connection and lookup."""

from __future__ import annotations

import errno
import socket

import httpx
import pytest

from tests.api._server import LiveServer, free_port
from tests.fixtures.netguard import OutboundConnectionError


@pytest.mark.parametrize("address", [("10.0.0.1", 80), ("169.254.169.254", 80), ("8.8.8.8", 53), ("192.168.1.1", 443)])
def test_connections_outside_loopback_are_refused(address: tuple[str, int]) -> None:
    with socket.socket() as sock, pytest.raises(OutboundConnectionError, match="not loopback"):
        sock.connect(address)
    with socket.socket() as sock, pytest.raises(OutboundConnectionError):
        sock.connect_ex(address)


def test_ipv6_and_name_lookups_are_refused_before_any_resolver_query() -> None:
    with socket.socket(socket.AF_INET6) as sock, pytest.raises(OutboundConnectionError):
        sock.connect(("2001:4860:4860::8888", 53, 0, 0))
    for host in ("example.org", "huggingface.co", b"pypi.org"):
        with pytest.raises(OutboundConnectionError, match="name lookup"):
            socket.getaddrinfo(host, 443)
    with pytest.raises(httpx.ConnectError):  # clients see an ordinary connection error
        httpx.get("http://example.org/", timeout=2)


def test_loopback_and_unix_sockets_still_work(minilm_server: LiveServer) -> None:
    assert httpx.get(f"{minilm_server.url}/livez", timeout=30).status_code == 200
    port = int(minilm_server.url.rsplit(":", 1)[1])
    assert socket.getaddrinfo("localhost", port)
    closed = free_port()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", closed)) == errno.ECONNREFUSED  # the kernel answers, not the guard
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"
