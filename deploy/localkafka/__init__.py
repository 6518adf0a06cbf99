"""A real Apache Kafka (KRaft) cluster on loopback, without Docker: ``orderflow kafka …``.

Public API::

    from deploy.localkafka import LocalKafka, fixed_layout, layout_on_ports

    kafka = LocalKafka(Path(".orderflow/kafka"))   # the state directory
    result = kafka.up(fixed_layout(brokers=3))     # blocks until all brokers serve metadata
    result.layout.bootstrap_servers                # "127.0.0.1:9092,127.0.0.1:9094,..."
    kafka.status()                                 # [NodeStatus(...)], truthful after kill -9
    kafka.down(purge=False)                        # SIGTERM all, SIGKILL after 30 s

``deploy.localkafka.process`` holds the reusable background-process helpers.
"""

from deploy.localkafka.config import Layout, Node, fixed_layout, layout_on_ports
from deploy.localkafka.manager import (
    CRASHED,
    DEFAULT_STATE_DIR,
    RUNNING,
    STOPPED,
    DownResult,
    LocalKafka,
    NodeStatus,
    UpResult,
)
from deploy.localkafka.readiness import BrokerStartError

__all__ = [
    "CRASHED",
    "DEFAULT_STATE_DIR",
    "RUNNING",
    "STOPPED",
    "BrokerStartError",
    "DownResult",
    "Layout",
    "LocalKafka",
    "Node",
    "NodeStatus",
    "UpResult",
    "fixed_layout",
    "layout_on_ports",
]
