"""The listening socket of `gdpr-sweep serve`: its connections send small answers without delay.

Without TCP_NODELAY each answer (headers, then body: two writes) waited for the client's delayed ACK,
~40 ms, so every request, read or write, cost the same (issue 19). asyncio sets the option only on
sockets whose protocol is TCP, so `_bind` must say so, and set it on the listener for the accepted
connections to inherit."""

from __future__ import annotations

import socket

import pytest

from gdpr_sweep.cli_serve import _bind
from pipelines.core.errors import InputError


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_accepted_connections_have_tcp_nodelay(host):
    try:
        listener = _bind(host, 0)
    except InputError:  # no IPv6 loopback on this machine
        if host == "::1":
            pytest.skip("no IPv6 loopback")
        raise
    with listener:
        assert listener.proto == socket.IPPROTO_TCP
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as client:
            client.connect(listener.getsockname()[:2])
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.proto == socket.IPPROTO_TCP  # asyncio's _set_nodelay checks this
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
