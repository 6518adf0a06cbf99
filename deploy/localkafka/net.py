"""Loopback port checks: is a port free, is something listening, pick free ports."""

from __future__ import annotations

import random
import socket
from pathlib import Path

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
    """``count`` distinct ports, free right now, outside the kernel's ephemeral range.

    For brokers started in tests. A port from the ephemeral range (what binding port 0 gives)
    can be taken as the source port of any outgoing connection while its broker is down, or even
    connect to itself, so a restarted broker could not bind it again. Racy against another
    program choosing the same port at the same moment; fine for tests.
    """
    low, high = _EPHEMERAL
    candidates = [p for p in range(_TEST_PORTS[0], _TEST_PORTS[1]) if not low <= p <= high]
    random.shuffle(candidates)
    chosen = [port for port in candidates[: count * 20] if port_is_free(port, host)][:count]
    if len(chosen) < count:
        raise OSError(f"no {count} free ports in {_TEST_PORTS[0]}-{_TEST_PORTS[1]}")
    return chosen


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535  # the IANA range macOS and the BSDs use


# Below Linux's default ephemeral range (32768-60999); clear of 9092-9099 and 19092-19099.
_TEST_PORTS = (20000, 32700)
_EPHEMERAL = _ephemeral_range()
