"""The broker a benchmark run uses: one given with ``--bootstrap``, else a local jar broker of
its own on free loopback ports in a temporary directory, stopped (data removed) at the end."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from deploy.localkafka import LocalKafka, layout_on_ports
from deploy.localkafka.net import free_ports

# Never these: the lead's brokers live there (see the team brief).
RESERVED_PORTS = frozenset(range(9092, 9100)) | frozenset(range(19092, 19100))


@contextlib.contextmanager
def own_broker(progress: Callable[[str], None] | None = None) -> Iterator[str]:
    """Start a single-node KRaft broker from the cached Maven jars; yield its bootstrap."""
    ports = [p for p in free_ports(6) if p not in RESERVED_PORTS][:2]
    if len(ports) < 2:  # pragma: no cover - the kernel handed out reserved ports only
        raise RuntimeError("no free loopback ports outside the reserved ranges")
    with tempfile.TemporaryDirectory(prefix="orderflow-bench-kafka-") as tmp:
        manager = LocalKafka(Path(tmp), progress=progress)
        try:
            yield manager.up(layout_on_ports([ports[0]], [ports[1]])).layout.bootstrap_servers
        finally:
            manager.down(purge=True, timeout_s=30)
