"""Watching topics the way a downstream reader would: read_committed, noting when each record
became visible."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from bench.support import RDKAFKA_LOGGER, BenchError, wall_ms
from processors.kafka import clients
from processors.settings import Settings


@dataclass(frozen=True)
class Seen:
    """One record as the collector received it; ``value``/``headers`` only if kept."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int
    arrived_mono: float
    arrived_ms: int

    def header(self, name: str) -> bytes | None:
        found = None
        for key, value in self.headers:
            if key == name:
                found = value
        return found


class Collector:
    """A background read_committed reader of ``topics`` (from the beginning, or from their
    current end with ``from_end``). Use as a context manager: on entry the assignment is in
    place, so nothing produced afterwards is missed. It never commits or joins a group.
    """

    def __init__(
        self,
        settings: Settings,
        topics: Iterable[str],
        *,
        from_end: bool = False,
        keep_values: bool = True,
    ) -> None:
        self.settings = settings
        self.topics = list(topics)
        self.from_end = from_end
        self.keep_values = keep_values
        self.records: list[Seen] = []
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bench-collector", daemon=True)

    def __enter__(self) -> Collector:
        self._thread.start()
        if not self._ready.wait(30):
            self._stop.set()
            raise BenchError("collector could not assign its partitions within 30 s")
        self._raise_if_failed()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    # --- the reading thread (the consumer is used by this thread only) -------------------------
    def _run(self) -> None:
        consumer = clients.consumer(
            self.settings,
            f"bench-collector-{uuid.uuid4().hex[:8]}",
            logger=RDKAFKA_LOGGER,
            **{"fetch.wait.max.ms": 50},
        )
        try:
            metadata = consumer.list_topics(timeout=15)
            assignment = []
            for topic in self.topics:
                info = metadata.topics.get(topic)
                if info is None or info.error is not None:
                    raise BenchError(f"topic {topic} does not exist")
                for partition in info.partitions:
                    offset = OFFSET_BEGINNING
                    if self.from_end:
                        _low, offset = consumer.get_watermark_offsets(
                            TopicPartition(topic, partition), timeout=15, cached=False
                        )
                    assignment.append(TopicPartition(topic, partition, offset))
            consumer.assign(assignment)
            self._ready.set()
            while not self._stop.is_set():
                # consume() with a timeout waits for a full batch: block for one record only,
                # so that a record's arrival time is when it became readable.
                batch = consumer.consume(500, timeout=0)
                if not batch:
                    first = consumer.poll(0.1)
                    if first is None:
                        continue
                    batch = [first, *consumer.consume(499, timeout=0)]
                now_mono, now_ms = time.monotonic(), wall_ms()
                seen = []
                for message in batch:
                    error = message.error()
                    if error is not None:
                        if error.fatal():
                            raise BenchError(f"collector: {error.str()}")
                        continue
                    keep = self.keep_values
                    seen.append(
                        Seen(
                            topic=message.topic(),
                            partition=message.partition(),
                            offset=message.offset(),
                            key=message.key(),
                            value=message.value() if keep else None,
                            headers=tuple(message.headers() or ()) if keep else (),
                            timestamp_ms=message.timestamp()[1],
                            arrived_mono=now_mono,
                            arrived_ms=now_ms,
                        )
                    )
                with self._lock:
                    self.records.extend(seen)
                    self.counts.update(s.topic for s in seen)
        except BaseException as exc:  # surfaced to the waiting thread
            self._error = exc
            self._ready.set()
        finally:
            consumer.close()

    # --- the benchmark's side ------------------------------------------------------------------
    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise BenchError(f"collector failed: {self._error}") from self._error

    def snapshot(self, topic: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.records if topic is None or s.topic == topic]

    def count(self, topic: str) -> int:
        with self._lock:
            return self.counts[topic]

    def wait_for(
        self,
        done: Callable[[], bool],
        timeout_s: float,
        what: str,
        check: Callable[[], None] | None = None,
    ) -> None:
        """Poll ``done()`` until true; ``check()`` (e.g. "processors still alive") raises to
        stop early. Raises ``BenchError`` naming ``what`` at the deadline."""
        deadline = time.monotonic() + timeout_s
        while not done():
            self._raise_if_failed()
            if check is not None:
                check()
            if time.monotonic() >= deadline:
                raise BenchError(f"timed out after {timeout_s:g} s waiting for {what}")
            time.sleep(0.02)
