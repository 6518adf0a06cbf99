"""Loopback port checks: is a port free, is something listening, pick free ports."""

from __future__ import annotations

import socket

from deploy.localkafka.config import LOOPBACK


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True if a listener could bind ``host:port`` now (a TIME_WAIT leftover does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Java binds with SO_REUSEADDR too, so only a live listener makes the port unusable.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def is_listening(port: int, host: str = LOOPBACK, timeout_s: float = 0.5) -> bool:
    """True if a TCP connection to ``host:port`` succeeds within ``timeout_s``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports the kernel reports free right now (racy, fine for tests)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
