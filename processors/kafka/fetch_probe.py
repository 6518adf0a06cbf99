"""The watchdog's view of a consumer's fetching: which partitions have records waiting beyond
where this consumer (or, with nothing assigned, its group) stands (see
``liveness.FetchStalls``). Called from the watchdog's thread every few seconds, on the raw
confluent-kafka consumer: librdkafka's handle is safe to share between threads."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from confluent_kafka import TopicPartition

PROBE_TIMEOUT_S = 2.0


def lagging_positions(
    consumer: Any,
    skip: Collection[tuple[str, int]] = (),
    group_topic: str | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> dict[tuple[str, int], int]:
    """``{(topic, partition): position}`` of the assigned partitions (but ``skip``: paused on
    purpose) whose end offset (the last stable offset for a read_committed consumer) is past
    the position; a position not known yet counts from the partition's first offset.

    With nothing assigned and a ``group_topic``, the same for every partition of that topic,
    from the group's committed offsets: records that wait while this member has no partitions
    and nobody's commits move (a join that never completed). Raises ``KafkaException`` when the
    brokers do not answer within ``timeout_s`` per request."""
    assigned = consumer.assignment()
    if assigned:
        wanted = [tp for tp in assigned if (tp.topic, tp.partition) not in skip]
        positions = consumer.position(wanted) if wanted else []
    elif group_topic is not None:
        topic = consumer.list_topics(group_topic, timeout=timeout_s).topics[group_topic]
        partitions = [TopicPartition(group_topic, p) for p in topic.partitions]
        positions = consumer.committed(partitions, timeout=timeout_s) if partitions else []
    else:
        positions = []
    lagging = {}
    for tp in positions:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(tp.topic, tp.partition), timeout=timeout_s, cached=False
        )
        if high > (tp.offset if tp.offset >= 0 else low):
            lagging[(tp.topic, tp.partition)] = tp.offset
    return lagging
