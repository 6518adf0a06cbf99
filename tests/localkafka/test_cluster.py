"""Three real nodes on one host: RF 3 topics survive a SIGKILLed broker without losing a record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.localkafka import CRASHED, RUNNING, LocalKafka, layout_on_ports
from deploy.localkafka.net import free_ports
from processors.kafka import clients
from processors.kafka.topics import describe_topics, ensure_topics
from processors.settings import load_settings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def produce(settings, topic: str, values: list[str]) -> None:  # type: ignore[no-untyped-def]
    """acks=all (the factory's default); every delivery must succeed."""
    producer = clients.producer(settings)
    errors: list[str] = []
    delivered: list[str] = []

    def on_delivery(error, message) -> None:  # type: ignore[no-untyped-def]
        if error is not None:
            errors.append(str(error))
        else:
            delivered.append(message.value().decode())

    for value in values:
        producer.produce(topic, key=value.encode(), value=value.encode(), on_delivery=on_delivery)
    assert producer.flush(60) == 0, "records still in flight after 60 s"
    assert errors == []
    assert sorted(delivered) == sorted(values)


def consume_all(settings, topic: str, expected: set[str], timeout_s: float = 60) -> set[str]:  # type: ignore[no-untyped-def]
    consumer = clients.consumer(settings, f"{topic}-reader")
    consumer.subscribe([topic])
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while seen != expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                seen.add(message.value().decode())
    finally:
        consumer.close()
    return seen


LAG_PROBE = """
import sys
from processors.kafka import groups
from processors.settings import load_settings
settings = load_settings(bootstrap_servers=sys.argv[1])
for n in range(5):
    lag = groups.group_lag(settings, f"never-committed-{n}", [sys.argv[2]])
    assert lag == {sys.argv[2]: dict.fromkeys(lag[sys.argv[2]], 0)}, lag
print("lag read")
"""


def assert_group_offsets_readable_before_any_commit(settings) -> None:  # type: ignore[no-untyped-def]
    """On a brand-new cluster no group has committed yet and the group coordinator is not
    ready: librdkafka 2.12's AdminClient.list_consumer_group_offsets died there with SIGSEGV
    (the dashboard's overview asks exactly this). Run in a child, so a crash fails the test."""
    probe = subprocess.run(
        [sys.executable, "-c", LAG_PROBE, settings.bootstrap_servers, settings.topic_main],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0 and "lag read" in probe.stdout, (probe.returncode, probe.stderr)


def test_three_nodes_survive_a_killed_broker(tmp_path: Path, unique: str) -> None:
    ports = free_ports(6)
    manager = LocalKafka(tmp_path)
    try:
        result = manager.up(layout_on_ports(ports[:3], ports[3:]), timeout_s=120)
        assert [s.state for s in manager.status()] == [RUNNING] * 3
        settings = load_settings(
            bootstrap_servers=result.layout.bootstrap_servers,
            replication_factor=3,
            topic_main=f"t-{unique}.orders.v1",
            topic_retry=f"t-{unique}.orders.retry",
            topic_dlq=f"t-{unique}.orders.dlq",
            topic_processed=f"t-{unique}.orders.processed",
        )
        assert {r.status for r in ensure_topics(settings)} == {"created"}
        # The broker answering may not have the new topic's full metadata yet right after the
        # create (seen once: its replication factors were not {3}): bounded wait for it.
        deadline = time.monotonic() + 60
        while True:
            main = next(s for s in describe_topics(settings) if s.spec.name == settings.topic_main)
            settled = main.partitions and all(len(p.isr) == 3 for p in main.partitions)
            if (settled and main.replication_factors == {3}) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert main.replication_factors == {3}
        assert main.config["min.insync.replicas"] == "2"
        assert all(len(p.isr) == 3 for p in main.partitions), main.partitions
        assert_group_offsets_readable_before_any_commit(settings)

        before = [f"before-{i}" for i in range(30)]
        produce(settings, settings.topic_main, before)

        # Kill the leader of partition 0, so at least one partition must elect a new leader.
        leader = main.partitions[0].leader
        victim = next(n for n in result.layout.nodes if n.node_id == leader)
        pid = int(manager.pid_file(victim).read_text())
        os.kill(pid, signal.SIGKILL)
        after = [f"after-{i}" for i in range(30)]
        produce(settings, settings.topic_main, after)
        states = {s.node.node_id: s.state for s in manager.status()}
        assert states[leader] == CRASHED
        assert sorted(states.values()) == sorted([CRASHED, RUNNING, RUNNING])

        expected = set(before + after)
        assert consume_all(settings, settings.topic_main, expected) == expected
    finally:
        down = manager.down(purge=True, timeout_s=30)
    assert len(down.stopped) + len(down.killed) == 2 and len(down.stale) == 1
