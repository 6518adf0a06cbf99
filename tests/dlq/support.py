"""Helpers for broker tests of the producer, tail reads and DLQ tools: topics, raw writes, reads.

They build clients through ``processors.kafka.clients`` like production code does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import NewTopic

from processors.kafka import clients
from processors.settings import Settings

RawRecord = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def create_topics(settings: Settings, names: Iterable[str], partitions: int = 3) -> None:
    admin = clients.admin_client(settings)
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names],
        operation_timeout=10,
    )
    for name, future in futures.items():
        try:
            future.result(timeout=15)
        except Exception as exc:  # an existing topic is fine
            if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise AssertionError(f"cannot create {name}: {exc}") from exc


def write(
    settings: Settings,
    topic: str,
    records: Sequence[RawRecord],
    *,
    partition: int | None = None,
    transactional_id: str | None = None,
) -> None:
    """Write records and wait for every acknowledgement; one transaction per record if
    ``transactional_id`` is given (so every other offset is a commit marker)."""
    overrides = {"transactional.id": transactional_id} if transactional_id else {}
    producer = clients.producer(settings, **overrides)
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(err)

    if transactional_id:
        producer.init_transactions(15)
    extra = {} if partition is None else {"partition": partition}
    for key, value, headers in records:
        if transactional_id:
            producer.begin_transaction()
        producer.produce(
            topic, key=key, value=value, headers=headers, on_delivery=on_delivery, **extra
        )
        if transactional_id:
            producer.commit_transaction(15)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not errors, errors


def read_all(
    settings: Settings, topic: str, expect: int, timeout_s: float = 30.0
) -> list[tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes]]]]:
    """Read ``topic`` from the beginning (read_committed, no group commit) until ``expect``
    records arrived or ``timeout_s`` passed; then keep reading 0.5 s more to catch extras."""
    consumer = clients.consumer(settings, f"test-reader-{time.monotonic_ns()}")
    metadata = consumer.list_topics(topic, timeout=10)
    consumer.assign(
        [TopicPartition(topic, p, -2) for p in metadata.topics[topic].partitions]  # -2: beginning
    )
    found = []
    deadline = time.monotonic() + timeout_s
    extra_until = None
    try:
        while time.monotonic() < (extra_until or deadline):
            for msg in consumer.consume(500, timeout=0.2):
                if msg.error() is None:
                    found.append(
                        (msg.partition(), msg.offset(), msg.key(), msg.value(), msg.headers() or [])
                    )
            if len(found) >= expect and extra_until is None:
                extra_until = time.monotonic() + 0.5
    finally:
        consumer.close()
    return found


def committed(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """The committed offsets of ``group`` on ``topic`` (partition → offset; absent if none)."""
    consumer = clients.consumer(settings, group)
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        tps = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        return {
            tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10) if tp.offset >= 0
        }
    finally:
        consumer.close()


def group_ids(settings: Settings) -> set[str]:
    admin = clients.admin_client(settings)
    result = admin.list_consumer_groups(request_timeout=10).result()
    return {listing.group_id for listing in result.valid}
