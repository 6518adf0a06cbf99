"""Waiting until a local cluster serves clients: every client port open, all brokers in metadata.

With a fixed client port, a KRaft broker opens it only once it is caught up and unfenced, so a
TCP connect is the first signal; the metadata check then proves all N brokers joined.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from confluent_kafka import KafkaException

from deploy.localkafka.config import Layout, Node
from deploy.localkafka.net import is_listening
from deploy.localkafka.process import is_alive
from processors.errors import LocalKafkaError
from processors.kafka.clients import admin_client
from processors.settings import Settings

log = logging.getLogger(__name__)

_POLL_S = 0.25


class BrokerStartError(LocalKafkaError):
    """A node died during start-up or the cluster was not ready in time.

    ``log_tail`` holds the last lines of the relevant node's logs, for the user to read.
    """

    def __init__(self, message: str, log_tail: list[str]) -> None:
        super().__init__(message)
        self.log_tail = log_tail


def loopback_settings(bootstrap_servers: str) -> Settings:
    """Settings for our own PLAINTEXT loopback brokers, whatever the user's environment says."""
    return Settings.model_construct(bootstrap_servers=bootstrap_servers)


def broker_count(layout: Layout, timeout_s: float, settings: Settings | None = None) -> int:
    """How many brokers the cluster's metadata lists (0 if the request fails in time)."""
    admin = admin_client(settings or loopback_settings(layout.bootstrap_servers))
    try:
        return len(admin.list_topics(timeout=max(0.5, timeout_s)).brokers)
    except KafkaException:
        return 0


def wait_ready(
    layout: Layout,
    pids: Mapping[Node, int],
    tails: Callable[[Node], list[str]],
    settings: Settings | None = None,
    *,
    deadline: float,
) -> None:
    """Return once every client port accepts connections and metadata lists every node.

    ``settings``: how to connect (default: PLAINTEXT to the layout's bootstrap servers).

    ``pids`` are the nodes just started: one exiting fails at once. Raises ``BrokerStartError``
    with ``tails(node)`` of the failing (or first unready) node at ``deadline`` (monotonic).
    """
    expected = len(layout.nodes)
    started = time.monotonic()
    while True:
        for node, pid in pids.items():
            if not is_alive(pid):
                raise BrokerStartError(
                    f"{node.name} exited during start-up; see the log tail above or "
                    f"`orderflow kafka logs --node {node.node_id}` (a corrupt data dir? "
                    "`orderflow kafka down --purge` starts over)",
                    tails(node),
                )
        closed = [node for node in layout.nodes if not is_listening(node.client_port)]
        seen = 0
        if not closed:
            seen = broker_count(layout, min(5.0, deadline - time.monotonic()), settings)
            if seen >= expected:
                log.info("kafka_ready brokers=%d seconds=%.1f", seen, time.monotonic() - started)
                return
        if time.monotonic() >= deadline:
            waited = time.monotonic() - started
            if closed:
                reason = "client port(s) " + ",".join(str(n.client_port) for n in closed)
                reason += " not accepting connections"
            else:
                reason = f"metadata lists {seen} of {expected} brokers"
            culprit = closed[0] if closed else layout.nodes[0]
            raise BrokerStartError(
                f"local Kafka not ready after {waited:.0f} s: {reason}", tails(culprit)
            )
        time.sleep(_POLL_S)
