"""The retry processor: consumes ``orders.retry`` and processes each record at its due time.

Quix Streams has no delay operator, so this is our own loop over the public low-level clients
of a Quix ``Application`` (``get_consumer`` / ``get_producer``). It reads ahead and holds
records that are not yet due in memory (a heap per partition), keeps polling all the time, and
processes each record when its ``x-retry-due-at`` has passed, across partitions in due order.
Offsets finish out of order, so each checkpoint commits per partition the lowest unfinished
offset plus a compact description of the finished ones above it (the commit metadata), in the
same transaction as the outputs. See docs/retry-semantics.md.

Run: ``orderflow retry`` or ``python -m processors.retry`` (settings from ``ORDERFLOW_*``).
"""

from __future__ import annotations

import logging
import signal
import time
from collections import Counter
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from processors.checkpoint import Commit, Committer
from processors.core import headers as h
from processors.core.envelope import Record, from_message
from processors.core.routing import effective_due
from processors.core.schedule import Held, PartitionQueue, Schedule
from processors.errors import KafkaUnavailableError, TopicDriftError
from processors.kafka.bounded import GRACE_S, guard_consumer, guard_producer
from processors.kafka.clients import quix_application
from processors.kafka.fetch_probe import lagging_positions
from processors.liveness import Watchdog
from processors.logs import event
from processors.metrics import Metrics
from processors.pipeline import GuardedStep, wall_clock_ms
from processors.runner import run_processor, standalone
from processors.runtime import (
    build_step,
    consumer_extra,
    import_quixstreams,
    instance_id,
    producer_extra,
)
from processors.settings import Settings

logger = logging.getLogger(__name__)

MAX_POLL_WAIT_S = 0.5
BATCH = 500
# Work done between two polls is bounded, so polling never pauses for long.
MAX_BURST_S = 1.0

Decoded = tuple[Record, h.Contract]


class RetryLoop:
    """The loop. ``consumer``/``producer`` are Quix Streams' low-level client wrappers."""

    def __init__(
        self,
        settings: Settings,
        step: GuardedStep,
        consumer: Any,
        producer: Any,
        watchdog: Watchdog,
        clock_ms: Any = wall_clock_ms,
    ) -> None:
        self.settings = settings
        self.watchdog = watchdog
        self.step = step
        self.metrics: Metrics = step.metrics
        self.consumer = consumer
        self.committer = Committer(
            producer,
            consumer,
            exactly_once=settings.processing_guarantee == "exactly-once",
            budget_s=settings.kafka_call_budget_s,
        )
        self.clock_ms = clock_ms
        self.capacity = settings.retry_max_held
        self.commit_interval_s = settings.commit_interval_s
        # Each held record with its decoded contract headers (decoded once, on arrival).
        self.schedule: Schedule[Decoded] = Schedule()
        self.dirty = False
        self.last_checkpoint = time.monotonic()
        self.consecutive_failures = 0
        self.stopping = False
        self.failed = False
        self.adjusted: Counter[str] = Counter()
        self.adjusted_logged_at: dict[str, float] = {}

    # --- lifecycle ----------------------------------------------------------------------------
    def stop(self, *_: object) -> None:
        self.stopping = True

    def work_waiting(self) -> bool:
        """Processed records not yet committed, or held records overdue by a second."""
        next_due = self.schedule.next_due()
        overdue = next_due is not None and next_due < self.clock_ms() - 1000
        return self.dirty or overdue

    def lagging(self) -> dict[tuple[str, int], int]:
        """Lagging partitions, but those paused on purpose (the schedule is full)."""
        raw = getattr(self.consumer, "_inner_consumer", None)  # once Quix has made it
        if raw is None:
            return {}
        paused = [q.key for q in list(self.schedule.queues.values()) if q.paused]
        return lagging_positions(raw, skip=paused)

    def run(self, install_signals: bool = True) -> None:
        """Run until :meth:`stop` (SIGTERM/SIGINT); raise on a Kafka or fatal error."""
        if install_signals:
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        try:
            with self.watchdog.call(
                "init_transactions", self.settings.kafka_call_budget_s + GRACE_S
            ):
                self.committer.start()
            self.consumer.subscribe(
                [self.settings.topic_retry],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
            while not self.stopping:
                self.watchdog.beat()
                self._poll()
                self._process_due()
                self._update_pauses()
                if self.dirty and time.monotonic() - self.last_checkpoint >= self.commit_interval_s:
                    self._checkpoint()
            self._checkpoint()
        except BaseException:
            self.failed = True
            raise
        finally:
            self._close()

    def _close(self) -> None:
        try:
            self.consumer.close()  # on_revoke: nothing left to commit (or failed: commits nothing)
        finally:
            self.committer.close()
            self.metrics.waiting(0)

    # --- reading ------------------------------------------------------------------------------
    def _poll_timeout(self) -> float:
        timeout = MAX_POLL_WAIT_S
        next_due = self.schedule.next_due()
        if next_due is not None:
            timeout = min(timeout, max(next_due - self.clock_ms(), 0) / 1000)
        if self.dirty:
            remaining = self.commit_interval_s - (time.monotonic() - self.last_checkpoint)
            timeout = min(timeout, max(remaining, 0.0))
        return timeout

    def _poll(self) -> None:
        first = self.consumer.poll(self._poll_timeout())
        if first is None:
            return
        batch = [first, *self.consumer.consume(num_messages=BATCH - 1, timeout=0)]
        for message in batch:
            self._receive(message)

    def _receive(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.fatal() or error.code() == KafkaError._FATAL:
                # The consumer is unusable. Seen: the static member fenced by the rejoin of its
                # own consumer while the group coordinator moved. The runner decides: new
                # clients (they rejoin with the same instance id), or exit 4 for a real twin.
                raise KafkaException(error)
            event(logger, "consumer_error", logging.WARNING, error=error.str())
            return
        key = (message.topic(), message.partition())
        queue = self.schedule.queues.get(key)
        if queue is None or queue.paused:
            # Not ours any more (the new owner reads it again), or fetched before the pause
            # took effect (read again from the seek position on resume).
            return
        offset = message.offset()
        if queue.progress.finished(offset):
            self.metrics.skipped()
            return
        if queue.full:
            # Hold no more: pause the partition and fetch this record again once it drains.
            tp = TopicPartition(*key, offset)
            self.consumer.pause([tp])
            self.consumer.seek(tp)
            queue.paused = True
            event(logger, "paused", logging.DEBUG, partition=key[1], held=len(queue.heap))
            return
        now = self.clock_ms()
        record = from_message(message)
        state = h.decode(record.headers)
        due, note = effective_due(state, self.step.policy, now)
        queue.admit(offset, due, (record, state), now)
        if note in ("due_invalid", "due_clamped"):
            self._adjusted(note, record, due - now)

    def _adjusted(self, note: str, record: Record, due_in_ms: int) -> None:
        """Log garbage due times: the first of each kind at once, then at most one line a
        minute per kind, with the number of records it stands for."""
        self.adjusted[note] += 1
        now = time.monotonic()
        if now - self.adjusted_logged_at.get(note, float("-inf")) < 60:
            return
        self.adjusted_logged_at[note] = now
        event(
            logger,
            "due_adjusted",
            logging.WARNING,
            note=note,
            partition=record.partition,
            offset=record.offset,
            due_in_ms=due_in_ms,
            records=self.adjusted.pop(note),
        )

    def _update_pauses(self) -> None:
        for queue in self.schedule.queues.values():
            if queue.paused and queue.drained:
                self.consumer.resume([TopicPartition(*queue.key)])
                queue.paused = False
                event(
                    logger, "resumed", logging.DEBUG, partition=queue.key[1], held=len(queue.heap)
                )
        self.metrics.waiting(self.schedule.waiting)

    # --- processing ---------------------------------------------------------------------------
    def _process_due(self) -> None:
        started = time.monotonic()
        done = 0
        while not self.stopping and done < BATCH and time.monotonic() - started < MAX_BURST_S:
            now = self.clock_ms()
            held = self.schedule.pop_due(now)
            if held is None:
                return
            self._process(held, now)
            done += 1

    def _process(self, held: Held[Record], now: int) -> None:
        self.metrics.lateness((now - held.due_ms) / 1000)
        output = self.step(*held.record).output
        if output is not None and not self.committer.write(output):
            self._rewind(self.committer.reason)
            return
        self.schedule.queues[held.partition].finish(held.offset)
        self.dirty = True

    # --- checkpoints --------------------------------------------------------------------------
    def _checkpoint(self) -> None:
        """Commit the outputs written so far and, per partition, the lowest unfinished offset
        with the finished ones above it in the metadata."""
        points = []
        for queue in self.schedule.queues.values():
            point = queue.commit_point()
            if point is not None:
                points.append((queue, point))
        offsets = [TopicPartition(*q.key, offset, metadata=meta) for q, (offset, meta) in points]
        self.last_checkpoint = time.monotonic()
        if not offsets and not self.committer.in_transaction and not self.dirty:
            return
        result = self.committer.commit(offsets)
        if result is Commit.REWIND:
            self._rewind(self.committer.reason)
            return
        if result is Commit.LATER:
            return
        for queue, (offset, metadata) in points:
            queue.committed_at(offset, metadata)
        self.dirty = False
        self.consecutive_failures = 0

    def _rewind(self, reason: str) -> None:
        """Forget everything since the last commit and read it again (with a short backoff)."""
        self.consecutive_failures += 1
        backoff = min(0.5 * 2 ** (self.consecutive_failures - 1), 10.0)
        event(logger, "rewind", logging.WARNING, reason=reason, backoff_s=backoff)
        self.dirty = False
        for key, queue in list(self.schedule.queues.items()):
            self.schedule.queues[key] = queue.rewound()
            offset = queue.restart_offset()
            if queue.first_offset is not None and offset is not None:
                self.consumer.seek(TopicPartition(*key, offset))
            if queue.paused:
                self.consumer.resume([TopicPartition(*key)])
        time.sleep(backoff)

    # --- rebalancing --------------------------------------------------------------------------
    def _on_assign(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        for tp in self.consumer.committed(partitions, timeout=30):
            queue: PartitionQueue[Decoded] = PartitionQueue(
                (tp.topic, tp.partition), tp.offset, tp.metadata, self.capacity
            )
            self.schedule.queues[queue.key] = queue
            event(
                logger,
                "assigned",
                partition=tp.partition,
                committed=queue.committed,
                restored_pending=queue.progress.restored_pending or None,
            )

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        try:
            if not self.failed:
                self._checkpoint()
        finally:
            self._drop(partitions, "revoked")

    def _on_lost(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self._drop(partitions, "lost")
        if self.committer.in_transaction:  # it may hold outputs of lost partitions: never commit
            self.committer.abort()
            self._rewind("partitions lost")

    def _drop(self, partitions: list[TopicPartition], why: str) -> None:
        for tp in partitions:
            queue = self.schedule.queues.pop((tp.topic, tp.partition), None)
            if queue is not None:
                event(logger, why, partition=tp.partition, dropped=len(queue.heap) or None)
        self.metrics.waiting(self.schedule.waiting)


def _check_topic(consumer: Any, settings: Settings) -> None:
    try:
        metadata = consumer.list_topics(timeout=30)  # by name could auto-create it
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"cannot reach {settings.bootstrap_servers}: {exc.args[0].str()}"
        ) from None
    topic = metadata.topics.get(settings.topic_retry)
    if topic is None or topic.error is not None:
        raise TopicDriftError(
            f'Topic "{settings.topic_retry}" not found on the broker '
            "(create the topics first: orderflow topics create)"
        )


def _session(settings: Settings, step: GuardedStep, watchdog: Watchdog) -> RetryLoop:
    """New clients (guarded: every blocking call bounded) and a loop over them."""
    app = quix_application(
        settings,
        settings.group_retry,
        loglevel=None,
        producer_extra=producer_extra(settings, "retry"),
        consumer_extra=consumer_extra(settings, "retry"),
    )
    budget = settings.kafka_call_budget_s
    consumer = guard_consumer(app.get_consumer(auto_commit_enable=False), watchdog, budget)
    _check_topic(consumer, settings)
    exactly_once = settings.processing_guarantee == "exactly-once"
    producer = guard_producer(app.get_producer(transactional=exactly_once), watchdog, budget)
    return RetryLoop(settings, step, consumer=consumer, producer=producer, watchdog=watchdog)


def run(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT (exit normally) or a fatal error (``ProcessorError``)."""
    metrics = Metrics("retry")
    step = build_step(settings, "retry", metrics)
    import_quixstreams()
    event(
        logger,
        "started",
        processor="retry",
        instance=instance_id(settings),
        topic=settings.topic_retry,
        group=settings.group_retry,
        guarantee=settings.processing_guarantee,
    )
    try:
        run_processor("retry", settings, metrics, lambda wd: _session(settings, step, wd))
    finally:
        step.routed_log.flush()  # the failures counted since the last summary


if __name__ == "__main__":
    standalone(run)
