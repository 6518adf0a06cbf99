"""The watchdog's fetch probe against a real broker: which assigned partitions have records
beyond the consumer's position, read from the broker (not the consumer's cache)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_INVALID, TopicPartition

from processors.kafka.clients import consumer as new_consumer
from processors.kafka.clients import producer as new_producer
from processors.kafka.fetch_probe import lagging_positions
from tests.dlq.support import create_topics, write

pytestmark = pytest.mark.kafka


def test_lagging_partitions_and_positions_follow_what_is_consumed(kafka_settings) -> None:
    topic = kafka_settings.topic_main
    create_topics(kafka_settings, [topic], partitions=3)
    write(kafka_settings, topic, [(b"a", b"1", []), (b"b", b"2", [])], partition=0)
    write(kafka_settings, topic, [(b"c", b"3", [])], partition=2)
    reader = new_consumer(kafka_settings, f"{kafka_settings.group_main}-probe")
    try:
        reader.assign([TopicPartition(topic, p, 0) for p in range(3)])
        # Nothing consumed yet (no position): partitions 0 and 2 wait, the empty 1 does not.
        unknown = OFFSET_INVALID
        assert lagging_positions(reader) == {(topic, 0): unknown, (topic, 2): unknown}
        assert lagging_positions(reader, skip=[(topic, 0)]) == {(topic, 2): unknown}
        seen = 0
        deadline = time.monotonic() + 30
        while seen < 3 and time.monotonic() < deadline:
            message = reader.poll(0.5)
            seen += message is not None and message.error() is None
        assert seen == 3
        assert lagging_positions(reader) == {}
        # A record written after the consumer caught up shows at once: read from the broker.
        write(kafka_settings, topic, [(b"d", b"4", [])], partition=1)
        assert lagging_positions(reader) == {(topic, 1): unknown}
        write(kafka_settings, topic, [(b"e", b"5", [])], partition=0)
        assert lagging_positions(reader) == {(topic, 0): 2, (topic, 1): unknown}
    finally:
        reader.close()


def test_with_nothing_assigned_the_groups_committed_offsets_count(kafka_settings) -> None:
    topic = kafka_settings.topic_main
    create_topics(kafka_settings, [topic], partitions=2)
    write(kafka_settings, topic, [(b"a", b"1", []), (b"b", b"2", [])], partition=0)
    member = new_consumer(kafka_settings, kafka_settings.group_main)
    try:
        assert lagging_positions(member) == {}  # no group topic: nothing to say
        # Nothing committed: partition 0 waits from its start, the empty partition 1 does not.
        assert lagging_positions(member, group_topic=topic) == {(topic, 0): OFFSET_INVALID}
        member.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
        assert lagging_positions(member, group_topic=topic) == {(topic, 0): 1}
        member.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
        assert lagging_positions(member, group_topic=topic) == {}
    finally:
        member.close()


def test_an_idle_read_committed_reader_of_transactional_writes_is_not_lagging(
    kafka_settings,
) -> None:
    """Commit markers and aborted records count in the end offset but are never delivered:
    once the reader has read what it can, nothing may look like it waits."""
    topic = kafka_settings.topic_retry
    create_topics(kafka_settings, [topic], partitions=1)
    writer = new_producer(kafka_settings, **{"transactional.id": f"probe-{topic}"})
    writer.init_transactions(30)
    for commit in (True, False, True, False):
        writer.begin_transaction()
        for i in range(3):
            writer.produce(topic, key=b"k", value=str(i).encode(), partition=0)
        if commit:
            writer.commit_transaction(30)
        else:
            writer.abort_transaction(30)
    reader = new_consumer(kafka_settings, f"{kafka_settings.group_retry}-probe")
    try:
        reader.assign([TopicPartition(topic, 0, 0)])
        seen = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (seen < 6 or lagging_positions(reader)):
            message = reader.poll(0.5)
            seen += message is not None and message.error() is None
        assert seen == 6
        assert lagging_positions(reader) == {}, reader.position([TopicPartition(topic, 0)])
    finally:
        reader.close()
