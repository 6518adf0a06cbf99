"""Consumer-group lag against a real broker."""

from __future__ import annotations

import logging
import time

import pytest
from confluent_kafka import TopicPartition

from processors.errors import KafkaUnavailableError
from processors.kafka import cached, clients, groups
from processors.settings import load_settings
from tests.dlq.support import create_topics, group_ids, write
from tests.producer.test_producer import closed_port

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


def test_broker_gone_gives_one_line_and_no_raw_librdkafka_output(
    tmp_path, capfd, caplog: pytest.LogCaptureFixture
) -> None:
    # The CLI commands quiet this logger in their process; a CliRunner test may have left it so.
    caplog.set_level(logging.DEBUG, logger=cached.RDKAFKA_LOGGER.name)
    settings = load_settings(bootstrap_servers=f"127.0.0.1:{closed_port()}", state_dir=tmp_path)
    with pytest.raises(KafkaUnavailableError, match=r"^cannot read metadata of t-gone: .*\Z"):
        groups.group_lag(settings, "g-gone", ["t-gone"], timeout_s=1)
    # That stops at the watermark read. The cached admin client, which a dashboard keeps when
    # its broker goes away, is asked for the group's offsets: twice, as two refreshes would.
    marks = {"t-gone": {0: (0, 1)}}
    for _ in range(2):
        with pytest.raises(KafkaUnavailableError, match=r"^cannot read offsets of group g-gone"):
            groups._committed(settings, "g-gone", marks, timeout_s=1)
    # librdkafka hands its lines over only when the client is polled: poll until one came.
    deadline = time.monotonic() + 15
    while not refused_lines(caplog) and time.monotonic() < deadline:
        cached.admin(settings).poll(0.2)
    assert "%3|" not in capfd.readouterr().err
    # an AdminClient is a producer handle to librdkafka: its lines are logged, not lost
    assert refused_lines(caplog)


def refused_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        line
        for line in (r.getMessage() for r in caplog.records if r.name == "processors.kafka.rdkafka")
        if "rdkafka#producer" in line and "Connection refused" in line
    ]
