"""Consumer-group lag against a real broker."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition

from processors.kafka import clients, groups
from tests.dlq.support import create_topics, group_ids, write

pytestmark = pytest.mark.kafka


def _commit(settings, group: str, topic: str, offsets: dict[int, int]) -> None:
    consumer = clients.consumer(settings, group)
    try:
        consumer.commit(
            offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False
        )
    finally:
        consumer.close()


def test_lag_from_low_watermark_then_from_commits(kafka_settings, unique) -> None:
    topic = kafka_settings.topic_main
    group = f"g-{unique}-lag"
    create_topics(kafka_settings, [topic], partitions=2)
    write(kafka_settings, topic, [(b"k", b"v", [])] * 30, partition=0)
    write(kafka_settings, topic, [(b"k", b"v", [])] * 4, partition=1)

    assert groups.group_lag(kafka_settings, group, [topic]) == {topic: {0: 30, 1: 4}}
    assert group not in group_ids(kafka_settings)  # asking created nothing

    _commit(kafka_settings, group, topic, {0: 5, 1: 4})
    assert groups.group_lag(kafka_settings, group, [topic]) == {topic: {0: 25, 1: 0}}
    assert groups.committed_offsets(kafka_settings, group, [topic]) == {topic: {0: 5, 1: 4}}
    assert groups.group_lag(kafka_settings, group, ["no-such-topic-y"]) == {"no-such-topic-y": {}}


def test_transaction_marker_is_not_lag(kafka_settings, unique) -> None:
    topic = kafka_settings.topic_main
    group = f"g-{unique}-tx"
    create_topics(kafka_settings, [topic], partitions=1)
    write(
        kafka_settings, topic, [(b"k", b"v", [])] * 3, partition=0, transactional_id=f"tx-{unique}"
    )
    # offsets 0 r, 1 marker, 2 r, 3 marker, 4 r, 5 marker: a reader that consumed all commits 5.
    _commit(kafka_settings, group, topic, {0: 5})
    assert groups.group_lag(kafka_settings, group, [topic]) == {topic: {0: 0}}
    _commit(kafka_settings, group, topic, {0: 2})
    assert groups.group_lag(kafka_settings, group, [topic]) == {topic: {0: 2}}
