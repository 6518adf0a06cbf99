"""Consumer-group lag: how many records a group still has to read, per topic and partition."""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from processors.errors import KafkaUnavailableError
from processors.kafka import cached, tail
from processors.settings import Settings

# Lags up to this size are verified by reading the few records behind them: a transactional
# writer leaves a commit marker after its last record, which would otherwise show as a lag of 1
# forever on an idle partition.
EXACT_LAG_LIMIT = 20
# A brand-new cluster answers these until its group coordinator is ready.
_COORDINATOR_SETTLING = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError._WAIT_COORD,
    }
)


def committed_offsets(
    settings: Settings, group: str, topics: Iterable[str], timeout_s: float = 5.0
) -> dict[str, dict[int, int | None]]:
    """``{topic: {partition: committed offset or None}}`` of ``group`` (``None``: no commit).

    Asking never creates the group. Partitions come from the topics' current metadata; a
    missing topic maps to ``{}``.
    """
    return _committed(settings, group, tail.watermarks(settings, topics, timeout_s), timeout_s)


def _committed(
    settings: Settings, group: str, marks: dict[str, dict[int, tuple[int, int]]], timeout_s: float
) -> dict[str, dict[int, int | None]]:
    partitions = [TopicPartition(t, p) for t, parts in marks.items() for p in parts]
    result: dict[str, dict[int, int | None]] = {
        t: dict.fromkeys(parts) for t, parts in marks.items()
    }
    if not partitions:
        return result
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with cached.offset_reader(settings, group) as consumer:
                answer = consumer.committed(
                    partitions, timeout=max(0.5, deadline - time.monotonic())
                )
            break
        except KafkaException as exc:
            error = exc.args[0] if exc.args else exc
            settling = isinstance(error, KafkaError) and error.code() in _COORDINATOR_SETTLING
            if settling and time.monotonic() + 0.2 < deadline:
                time.sleep(0.2)  # the coordinator is being elected or loaded: ask again
                continue
            text = error.str() if isinstance(error, KafkaError) else str(error)
            raise KafkaUnavailableError(f"cannot read offsets of group {group}: {text}") from exc
    for tp in answer:
        if tp.topic in result and tp.error is None and tp.offset >= 0:
            result[tp.topic][tp.partition] = tp.offset
    return result


def group_lag(
    settings: Settings, group: str, topics: Iterable[str], timeout_s: float = 5.0
) -> dict[str, dict[int, int]]:
    """``{topic: {partition: lag}}``: high watermark minus the group's committed offset.

    A partition the group never committed counts from its low watermark (everything retained
    is still to be read). Lags up to ``EXACT_LAG_LIMIT`` are exact (transaction markers
    excluded); larger ones count markers too and are therefore an upper bound.
    """
    topics = list(topics)
    marks = tail.watermarks(settings, topics, timeout_s)
    offsets = _committed(settings, group, marks, timeout_s)
    lags: dict[str, dict[int, int]] = {}
    for topic, parts in marks.items():
        lags[topic] = {}
        small: dict[int, tuple[int, int]] = {}
        for partition, (low, high) in parts.items():
            position = offsets.get(topic, {}).get(partition)
            start = low if position is None else max(position, low)
            lag = max(0, high - start)
            lags[topic][partition] = lag
            if 0 < lag <= EXACT_LAG_LIMIT:
                small[partition] = (start, high)
        if small:
            exact = tail.count_records(settings, topic, small, timeout_s=min(timeout_s, 2.0))
            if exact is not None:
                lags[topic].update(exact)
    return lags
