"""Tail reads against a real broker: newest N, no consumer group, bounded, markers handled."""

from __future__ import annotations

import time

import pytest

from processors.errors import KafkaUnavailableError
from processors.kafka import tail
from processors.settings import load_settings
from tests.dlq.support import committed, create_topics, group_ids, write

pytestmark = pytest.mark.kafka


def _records(prefix: str, count: int) -> list:
    return [
        (f"{prefix}-{i}".encode(), f"v{i}".encode(), [("h", str(i).encode())]) for i in range(count)
    ]


def test_read_tail_returns_newest_per_partition_newest_first(kafka_settings) -> None:
    topic = kafka_settings.topic_main
    create_topics(kafka_settings, [topic], partitions=2)
    write(kafka_settings, topic, _records("a", 30), partition=0)
    write(kafka_settings, topic, _records("b", 5), partition=1)

    records = tail.read_tail(kafka_settings, topic, limit_per_partition=10)

    by_partition = {p: [r for r in records if r.partition == p] for p in (0, 1)}
    assert [r.offset for r in by_partition[0]] == list(range(29, 19, -1))
    assert [r.offset for r in by_partition[1]] == list(range(4, -1, -1))
    assert by_partition[0][0].key == b"a-29" and by_partition[0][0].value == b"v29"
    assert by_partition[0][0].headers == (("h", b"29"),)
    stamps = [(r.timestamp_ms, r.offset) for r in records]
    assert stamps == sorted(stamps, reverse=True)
    assert records[0].ref == f"{topic}:{records[0].partition}:{records[0].offset}"

    only_one = tail.read_tail(kafka_settings, topic, limit_per_partition=3, partitions=[1])
    assert [(r.partition, r.offset) for r in only_one] == [(1, 4), (1, 3), (1, 2)]


def test_read_tail_steps_back_over_transaction_markers(kafka_settings, unique) -> None:
    topic = kafka_settings.topic_main
    create_topics(kafka_settings, [topic], partitions=1)
    # One transaction per record: offsets alternate record, commit marker.
    write(kafka_settings, topic, _records("t", 40), partition=0, transactional_id=f"tx-{unique}")

    records = tail.read_tail(kafka_settings, topic, limit_per_partition=25)

    assert len(records) == 25
    assert [r.key for r in records] == [f"t-{i}".encode() for i in range(39, 14, -1)]


def test_tail_reads_create_no_consumer_group(kafka_settings) -> None:
    topic = kafka_settings.topic_main
    create_topics(kafka_settings, [topic], partitions=3)
    write(kafka_settings, topic, _records("k", 20))

    for _ in range(3):
        assert tail.read_tail(kafka_settings, topic, limit_per_partition=5)
    assert len(tail.read_range(kafka_settings, topic, 0, 0, 100)) > 0
    assert sum(1 for _ in tail.scan(kafka_settings, topic)) == 20

    assert tail.TAIL_GROUP_ID not in group_ids(kafka_settings)
    assert committed(kafka_settings, tail.TAIL_GROUP_ID, topic) == {}


def test_watermarks_totals_and_missing_topic(kafka_settings) -> None:
    topic = kafka_settings.topic_main
    create_topics(kafka_settings, [topic], partitions=3)
    write(kafka_settings, topic, _records("w", 7), partition=2)

    marks = tail.watermarks(kafka_settings, [topic, "no-such-topic-x"])

    assert marks[topic] == {0: (0, 0), 1: (0, 0), 2: (0, 7)}
    assert marks["no-such-topic-x"] == {}
    assert tail.topic_totals(kafka_settings, [topic]) == {topic: 7}
    assert tail.read_tail(kafka_settings, "no-such-topic-x") == []


def test_read_range_is_clamped_and_ordered(kafka_settings) -> None:
    topic = kafka_settings.topic_main
    create_topics(kafka_settings, [topic], partitions=1)
    write(kafka_settings, topic, _records("r", 10), partition=0)

    assert [r.offset for r in tail.read_range(kafka_settings, topic, 0, 3, 6)] == [3, 4, 5]
    assert [r.offset for r in tail.read_range(kafka_settings, topic, 0, 8, 1000)] == [8, 9]
    assert tail.read_range(kafka_settings, topic, 0, 10, 20) == []


def test_scan_reports_progress_over_every_offset(kafka_settings, unique) -> None:
    topic = kafka_settings.topic_main
    create_topics(kafka_settings, [topic], partitions=2)
    write(kafka_settings, topic, _records("s", 12), partition=0, transactional_id=f"tx-{unique}")
    write(kafka_settings, topic, _records("s", 5), partition=1)
    steps: list[int] = []

    records = list(tail.scan(kafka_settings, topic, progress=steps.append))

    assert len(records) == 17
    assert sum(steps) == sum(tail.topic_totals(kafka_settings, [topic]).values()) == 24 + 5


def test_tail_reads_the_newest_records_of_a_big_topic(kafka_settings) -> None:
    """What a tail read costs at 1,000,000 records is measured by `make bench`."""
    topic = kafka_settings.topic_main
    create_topics(kafka_settings, [topic], partitions=1)
    write(kafka_settings, topic, [(None, b"x" * 100, [])] * 20_000, partition=0)
    tail.read_tail(kafka_settings, topic, limit_per_partition=5)  # warm the pooled connection

    records = tail.read_tail(kafka_settings, topic, limit_per_partition=5)

    assert [r.offset for r in records] == [19_999, 19_998, 19_997, 19_996, 19_995]


def test_broker_down_raises_within_the_timeout(tmp_path) -> None:
    settings = load_settings(bootstrap_servers="127.0.0.1:1", state_dir=tmp_path)
    started = time.monotonic()
    with pytest.raises(KafkaUnavailableError):
        tail.read_tail(settings, "orders.v1", timeout_s=2.0)
    with pytest.raises(KafkaUnavailableError):
        tail.topic_totals(settings, ["orders.v1"], timeout_s=2.0)
    assert time.monotonic() - started < 10
