"""Port helpers (loopback sockets only, no broker)."""

from __future__ import annotations

import socket

from deploy.localkafka import net


def test_free_ports_are_distinct_bindable_and_not_ephemeral() -> None:
    low, high = net._ephemeral_range()
    ports = net.free_ports(6)
    assert len(set(ports)) == 6
    assert all(not low <= port <= high for port in ports)
    assert all(net.port_is_free(port) for port in ports)


def test_a_listener_makes_a_port_busy_and_listening() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert not net.port_is_free(port)  # bound, even before listen()
        assert not net.is_listening(port)
        sock.listen()
        assert net.is_listening(port)
    assert net.port_is_free(port)
