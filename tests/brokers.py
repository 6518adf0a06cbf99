"""The test session's broker when ``ORDERFLOW_TEST_BOOTSTRAP`` is not set (see tests/conftest.py).

A Docker engine reachable: testcontainers' Kafka container (KRaft). Otherwise the local jar
broker (``deploy.localkafka``) on free ephemeral ports in a temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Confluent Platform 7.9 is Apache Kafka 3.9; testcontainers' KafkaContainer drives the
# Confluent image's start-up scripts, which it does not (yet) support for 8.x.
KAFKA_CONTAINER_IMAGE = "confluentinc/cp-kafka:7.9.0"


def docker_engine_reachable() -> bool:
    """True if a Docker engine answers a ping within a few seconds (cheap when there is none)."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure means "no usable engine": fall back to the jar broker
        return False


@contextlib.contextmanager
def container_broker() -> Iterator[str]:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers < 4.13 kept it here
        from testcontainers.kafka import KafkaContainer

    container = (
        KafkaContainer(KAFKA_CONTAINER_IMAGE)
        .with_kraft()
        # One broker: the transaction log must fit it, or exactly-once producers never start.
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    )
    with container:
        yield container.get_bootstrap_server()


@contextlib.contextmanager
def jar_broker(brokers: int = 1, *, extra_config: dict[str, str] | None = None) -> Iterator[str]:
    """A local jar cluster of ``brokers`` nodes on free ports, removed (data too) on exit."""
    from deploy.localkafka import Layout, LocalKafka, layout_on_ports
    from deploy.localkafka.net import free_ports

    with tempfile.TemporaryDirectory(prefix="orderflow-test-kafka-") as tmp:
        ports = free_ports(2 * brokers)
        nodes = layout_on_ports(ports[:brokers], ports[brokers:]).nodes
        layout = Layout(nodes, extra_config=extra_config or {})
        manager = LocalKafka(Path(tmp))
        try:
            yield manager.up(layout).layout.bootstrap_servers
        finally:
            manager.down(purge=True, timeout_s=20)


@contextlib.contextmanager
def session_broker() -> Iterator[str]:
    """One broker for the whole test session; yields its bootstrap address."""
    broker = container_broker if docker_engine_reachable() else jar_broker
    with broker() as bootstrap:
        yield bootstrap
