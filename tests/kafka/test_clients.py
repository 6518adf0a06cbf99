"""The client factory against a real broker."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import NewTopic

from processors.kafka.clients import admin_client, producer

pytestmark = pytest.mark.kafka


def java_murmur2_partition(key: bytes, partitions: int) -> int:
    """Kafka's DefaultPartitioner for keyed records: murmur2, sign bit cleared, modulo."""
    m, r, length = 0x5BD1E995, 24, len(key)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = key[length - length % 4 :]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def test_keyed_records_land_where_java_and_quix_put_them(kafka_settings):
    topic = kafka_settings.topic_main
    admin = admin_client(kafka_settings)
    admin.create_topics([NewTopic(topic, 6, 1)])[topic].result(timeout=30)
    landed: dict[bytes, int] = {}

    def remember(err, msg):
        assert err is None, err
        landed[msg.key()] = msg.partition()

    client = producer(kafka_settings)
    keys = [f"ord-{i:04d}".encode() for i in range(60)]
    for key in keys:
        client.produce(topic, key=key, value=b"{}", on_delivery=remember)
    assert client.flush(30) == 0
    assert landed == {key: java_murmur2_partition(key, 6) for key in keys}
    assert len(set(landed.values())) == 6  # the keys really spread; the check is not vacuous
