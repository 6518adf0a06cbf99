"""Cheap, bounded reads of topics: the newest records, a range of offsets, watermarks and totals.

Every read assigns partitions and seeks; none subscribes, joins or commits to a consumer group, so
a refresh never creates a consumer group and never scans a whole topic to show its latest records.
All clients use one fixed ``group.id`` (``TAIL_GROUP_ID``) that is never committed to, read
``read_committed`` (records of open or aborted transactions are never shown) and are reused
between calls through a small pool. Every wait is bounded by a timeout.

Offsets and counts: a transactional producer writes one control record (a commit or abort
marker) per partition per transaction. Markers take an offset but are never delivered, so
``high - low`` counts them too, and a tail read of the last N offsets may return fewer than N
records (``read_tail`` steps back to make up for them, a bounded number of times).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from processors.core.envelope import Record, from_message
from processors.errors import KafkaUnavailableError
from processors.kafka import cached
from processors.kafka.cached import RDKAFKA_LOGGER as RDKAFKA_LOGGER  # short-lived clients use it
from processors.settings import Settings

logger = logging.getLogger(__name__)

# One group id for every read-only client. It is never subscribed with and never committed to,
# so the broker never stores a group for it.
TAIL_GROUP_ID = "orderflow-tail-reader"

# Each extra round doubles the window; 4 rounds reach back at most 16x the requested count.
_TAIL_ROUNDS = 4
_BATCH = 500
_POOL_MAX_IDLE = 4
# Errors that only mean "the cluster is still settling", worth a short retry.
_SETTLING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._WAIT_COORD,
    }
)


# --- client pool ----------------------------------------------------------------------------------
class _ConsumerPool:
    """Idle read-only consumers per connection, so a dashboard refresh reuses its connections.

    A consumer is used by one caller at a time (confluent-kafka clients are not thread-safe)
    and is unassigned before it goes back to the pool.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[cached.ConnectionKey, list[Consumer]] = {}

    @contextmanager
    def borrow(self, settings: Settings) -> Iterator[Consumer]:
        key = cached.connection_key(settings)
        with self._lock:
            idle = self._idle.get(key, [])
            consumer = idle.pop() if idle else None
        if consumer is None:
            consumer = cached.reader(
                settings,
                TAIL_GROUP_ID,
                **{
                    "enable.partition.eof": True,
                    # short long-polls: a pooled reader is idle between calls, and a pending
                    # fetch would delay the next call's offset request on the same connection
                    "fetch.wait.max.ms": 10,
                    "allow.auto.create.topics": False,
                },
            )
        healthy = False
        try:
            yield consumer
            healthy = True
        finally:
            try:
                consumer.unassign()
            except KafkaException:
                healthy = False
            with self._lock:
                idle = self._idle.setdefault(key, [])
                if healthy and len(idle) < _POOL_MAX_IDLE:
                    idle.append(consumer)
                    consumer = None
            if consumer is not None:
                consumer.close()

    def close_all(self) -> None:
        with self._lock:
            consumers = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for consumer in consumers:
            consumer.close()


_POOL = _ConsumerPool()
atexit.register(_POOL.close_all)


def _unavailable(what: str, exc: BaseException) -> KafkaUnavailableError:
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else exc
    text = error.str() if isinstance(error, KafkaError) else str(error)
    return KafkaUnavailableError(f"{what}: {text}")


def _partitions(consumer: Consumer, topic: str, timeout_s: float) -> list[int]:
    """Partition ids of ``topic``, or ``[]`` if it does not exist."""
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
    except KafkaException as exc:
        raise _unavailable(f"cannot read metadata of {topic}", exc) from exc
    info = metadata.topics.get(topic)
    if info is None or info.error is not None:
        return []
    return sorted(info.partitions)


def _watermarks(
    consumer: Consumer, topic: str, partitions: Iterable[int], timeout_s: float
) -> dict[int, tuple[int, int]]:
    """Low and high watermark per partition. Retriable errors (a leader moving or not yet
    elected, e.g. just after the topic was created) are retried until ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    result = {}
    for partition in partitions:
        while True:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=remaining, cached=False
                )
                break
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                retriable = isinstance(error, KafkaError) and (
                    error.retriable() or error.code() in _SETTLING
                )
                if not retriable or time.monotonic() + 0.1 >= deadline:
                    raise _unavailable(f"cannot read offsets of {topic}[{partition}]", exc) from exc
                time.sleep(0.1)
        result[partition] = (low, high)
    return result


def next_batch(consumer: Consumer, timeout_s: float) -> list[Message]:
    """Up to ``_BATCH`` messages: waits at most ``timeout_s`` for the first one, then takes only
    what is already fetched. (``consume(n, timeout)`` alone waits the full timeout unless n
    messages arrive, which would add its timeout to every small read.)"""
    first = consumer.poll(timeout_s)
    if first is None:
        return []
    return [first, *consumer.consume(_BATCH - 1, timeout=0)]


def _consume_ranges(
    consumer: Consumer,
    topic: str,
    ranges: dict[int, tuple[int, int]],
    timeout_s: float,
    *,
    idle: bool = False,
) -> Iterator[Record]:
    """Yield records with ``start <= offset < end`` per partition, until each range is done.

    A partition is done when a record at or past ``end - 1`` arrives or its end of log is
    reached. With ``idle=False`` the whole read is bounded by ``timeout_s`` and stops quietly
    (logging what it left unread); with ``idle=True`` the clock restarts at every record and a
    stall raises ``KafkaUnavailableError``, so a generator that ends normally read everything.
    """
    pending = {p: rng for p, rng in ranges.items() if rng[0] < rng[1]}
    if not pending:
        return
    consumer.assign([TopicPartition(topic, p, start) for p, (start, _) in pending.items()])
    deadline = time.monotonic() + timeout_s
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if idle:
                raise KafkaUnavailableError(
                    f"no record from {topic} partitions {sorted(pending)} for {timeout_s:g} s"
                )
            logger.warning("read=incomplete topic=%s pending=%s", topic, sorted(pending))
            return
        try:
            messages = next_batch(consumer, min(remaining, 0.5))
        except KafkaException as exc:
            raise _unavailable(f"cannot read {topic}", exc) from exc
        if idle and messages:
            deadline = time.monotonic() + timeout_s
        for message in messages:
            partition = message.partition()
            if partition not in pending:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.pop(partition)
                    continue
                if error.fatal() or not error.retriable():
                    raise KafkaUnavailableError(f"cannot read {topic}[{partition}]: {error.str()}")
                continue
            start, end = pending[partition]
            offset = message.offset()
            if offset >= end:
                pending.pop(partition)
                continue
            if offset >= start:
                yield from_message(message)
            if offset >= end - 1:
                pending.pop(partition)


# --- public API -----------------------------------------------------------------------------------
def watermarks(
    settings: Settings, topics: Iterable[str], timeout_s: float = 5.0
) -> dict[str, dict[int, tuple[int, int]]]:
    """``{topic: {partition: (low, high)}}``; a missing topic maps to ``{}``.

    ``high`` is the last stable offset (read_committed): records of open transactions are not
    counted yet. Raises ``KafkaUnavailableError`` if the brokers cannot be reached in time.
    """
    with _POOL.borrow(settings) as consumer:
        return {
            topic: _watermarks(consumer, topic, _partitions(consumer, topic, timeout_s), timeout_s)
            for topic in topics
        }


def topic_totals(
    settings: Settings, topics: Iterable[str], timeout_s: float = 5.0
) -> dict[str, int]:
    """Records retained per topic, as the sum of ``high - low`` over its partitions.

    Cheap (no record is read) but approximate for transactional topics: every transaction
    leaves one commit marker per partition it wrote to, and markers are counted too.
    """
    return {
        topic: sum(high - low for low, high in marks.values())
        for topic, marks in watermarks(settings, topics, timeout_s).items()
    }


def read_tail(
    settings: Settings,
    topic: str,
    limit_per_partition: int = 50,
    partitions: Iterable[int] | None = None,
    timeout_s: float = 5.0,
) -> list[Record]:
    """The newest ``limit_per_partition`` records of each partition, newest first overall.

    Seeks to ``high - N`` per partition and reads forward; where transaction markers or aborted
    records leave fewer than N, it steps back with a doubled window, at most a few times, so the
    cost depends on N, never on the topic's size. A missing topic gives ``[]``. The whole call is
    bounded by ``timeout_s``; what was read by then is returned.
    """
    if limit_per_partition <= 0:
        return []
    deadline = time.monotonic() + timeout_s
    found: dict[int, list[Record]] = {}
    with _POOL.borrow(settings) as consumer:
        wanted = _partitions(consumer, topic, timeout_s)
        if partitions is not None:
            selected = set(partitions)
            wanted = [p for p in wanted if p in selected]
        marks = _watermarks(consumer, topic, wanted, timeout_s)
        # Per partition: the window still to read, [start, end).
        windows = {
            p: (max(low, high - limit_per_partition), high) for p, (low, high) in marks.items()
        }
        for round_no in range(_TAIL_ROUNDS):
            left = deadline - time.monotonic()
            for record in _consume_ranges(consumer, topic, windows, left):
                found.setdefault(record.partition, []).append(record)
            next_windows = {}
            for p, (start, _) in windows.items():
                missing = limit_per_partition - len(found.get(p, []))
                low = marks[p][0]
                if missing > 0 and start > low:
                    step = max(missing, limit_per_partition) << (round_no + 1)
                    next_windows[p] = (max(low, start - step), start)
            if not next_windows or time.monotonic() >= deadline:
                break
            windows = next_windows
    records = []
    for partition_records in found.values():
        partition_records.sort(key=lambda r: r.offset)
        records.extend(partition_records[-limit_per_partition:])
    records.sort(key=lambda r: (r.timestamp_ms, r.offset, r.partition), reverse=True)
    return records


def read_range(
    settings: Settings,
    topic: str,
    partition: int,
    start_offset: int,
    end_offset: int,
    timeout_s: float = 10.0,
) -> list[Record]:
    """Records of one partition with ``start_offset <= offset < end_offset``, oldest first.

    ``end_offset`` is clamped to the partition's high watermark, so asking past the end returns
    what exists. For one record: ``read_range(s, t, p, offset, offset + 1)``.
    """
    with _POOL.borrow(settings) as consumer:
        marks = _watermarks(consumer, topic, [partition], timeout_s)
        low, high = marks[partition]
        window = {partition: (max(start_offset, low), min(end_offset, high))}
        return list(_consume_ranges(consumer, topic, window, timeout_s))


def read_ranges(
    settings: Settings, topic: str, ranges: dict[int, tuple[int, int]], timeout_s: float = 10.0
) -> list[Record]:
    """Records with ``start <= offset < end`` for each ``{partition: (start, end)}``, read
    together; oldest first within each partition. Bounded by ``timeout_s`` (then partial)."""
    with _POOL.borrow(settings) as consumer:
        return list(_consume_ranges(consumer, topic, ranges, timeout_s))


def scan(
    settings: Settings,
    topic: str,
    ranges: dict[int, tuple[int, int]] | None = None,
    progress: Callable[[int], None] | None = None,
    idle_timeout_s: float = 30.0,
) -> Iterator[Record]:
    """Every record of ``topic`` (or of ``ranges``: ``{partition: (start, end)}``), in offset
    order within each partition. This reads the whole selection: use it for stats, export and
    replay planning, never for a page refresh.

    ``progress`` is called with the number of offsets covered since its previous call (markers
    included), so a bar sized by ``sum(end - start)`` ends at 100 %. Raises
    ``KafkaUnavailableError`` if no record arrives for ``idle_timeout_s``.
    """
    with _POOL.borrow(settings) as consumer:
        if ranges is None:
            partitions = _partitions(consumer, topic, idle_timeout_s)
            ranges = _watermarks(consumer, topic, partitions, idle_timeout_s)
        position = {p: start for p, (start, _) in ranges.items()}
        for record in _consume_ranges(consumer, topic, ranges, idle_timeout_s, idle=True):
            if progress is not None:
                progress(record.offset + 1 - position[record.partition])
            position[record.partition] = record.offset + 1
            yield record
        if progress is not None:
            rest = sum(max(0, ranges[p][1] - position[p]) for p in ranges)
            if rest:
                progress(rest)


def count_records(
    settings: Settings, topic: str, ranges: dict[int, tuple[int, int]], timeout_s: float = 2.0
) -> dict[int, int] | None:
    """Records actually present per partition in small ``[start, end)`` ranges (markers and
    aborted records excluded), or ``None`` if the read did not finish within ``timeout_s``."""
    counts = dict.fromkeys(ranges, 0)
    with _POOL.borrow(settings) as consumer:
        try:
            for record in _consume_ranges(consumer, topic, ranges, timeout_s, idle=True):
                counts[record.partition] += 1
        except KafkaUnavailableError:
            return None
    return counts
