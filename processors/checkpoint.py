"""How the retry processor writes outputs and commits offsets, per delivery guarantee.

Exactly-once: outputs and offsets (with their metadata) are one Kafka transaction per
checkpoint. At-least-once: every output is acknowledged before the offsets are committed. Either
way a failure that loses outputs is reported as ``REWIND`` (the caller forgets everything since
the last commit and reads it again); only fatal errors raise ``ProcessorError``.
"""

from __future__ import annotations

import logging
import time
from enum import Enum
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from processors.errors import ProcessorError
from processors.logs import event
from processors.pipeline import Output

logger = logging.getLogger(__name__)

RETRIES = 5  # retriable transaction errors, within one call budget in all


class Commit(Enum):
    DONE = "done"  # outputs and offsets committed
    REWIND = "rewind"  # outputs since the last commit are gone: read them again
    LATER = "later"  # outputs are safe, the offset commit failed: try at the next checkpoint


class Committer:
    """Wraps Quix Streams' low-level producer (transactional in exactly-once mode)."""

    def __init__(
        self, producer: Any, consumer: Any, exactly_once: bool, budget_s: float = 10.0
    ) -> None:
        self.producer = producer
        self.budget_s = budget_s
        self.consumer = consumer
        self.exactly_once = exactly_once
        self.in_transaction = False
        self.delivery_error: KafkaError | None = None
        self.reason = ""

    def start(self) -> None:
        """Create the producer now; with a stable ``transactional.id`` this fences a crashed
        predecessor's open transaction before anything is read."""
        self.producer.poll(0)

    def write(self, output: Output) -> bool:
        """Produce one output (in the open transaction); ``False``: abort and rewind."""
        try:
            self._begin()
            self.producer.produce(
                topic=output.topic,
                key=output.key,
                value=output.value,
                headers=output.headers,
                timestamp=output.timestamp_ms,
                on_delivery=self._on_delivery,
            )
        except KafkaException as exc:
            self._abort_after(exc.args[0], "produce")
            return False
        return True

    def commit(self, offsets: list[TopicPartition]) -> Commit:
        """Commit everything written so far with ``offsets``."""
        if self.exactly_once:
            return self._commit_transaction(offsets)
        return self._commit_acknowledged(offsets)

    def abort(self) -> None:
        """Abort an open transaction (shutdown after a failure); errors are only logged."""
        if not self.in_transaction:
            return
        try:
            self.producer.abort_transaction(timeout=self.budget_s)
        except KafkaException as exc:
            event(logger, "abort_failed", logging.WARNING, error=exc.args[0].str())
        self.in_transaction = False

    def close(self) -> None:
        """Abort what is open and flush; never raises (it runs while a failure propagates)."""
        self.abort()
        try:
            self.producer.flush(timeout=5)
        except KafkaException as exc:
            event(logger, "flush_failed", logging.WARNING, error=exc.args[0].str())

    # --- internals ------------------------------------------------------------------------------
    def _begin(self) -> None:
        if self.exactly_once and not self.in_transaction:
            self.producer.begin_transaction()
            self.in_transaction = True

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None and self.delivery_error is None:
            self.delivery_error = error

    def _commit_transaction(self, offsets: list[TopicPartition]) -> Commit:
        if not self.in_transaction and not offsets:
            return Commit.DONE
        offsets_sent = not offsets
        deadline = time.monotonic() + self.budget_s
        for attempt in range(1, RETRIES + 1):
            remaining = max(deadline - time.monotonic(), 1.0)
            try:
                self._begin()
                if not offsets_sent:
                    group = self.consumer.consumer_group_metadata()
                    self.producer.send_offsets_to_transaction(offsets, group, timeout=remaining)
                    offsets_sent = True
                self.producer.commit_transaction(timeout=remaining)
                self.in_transaction = False
                return Commit.DONE
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                retry = error.retriable() and not error.txn_requires_abort()
                if retry and attempt < RETRIES and time.monotonic() < deadline:
                    event(
                        logger, "commit_retry", logging.WARNING, attempt=attempt, error=error.str()
                    )
                    time.sleep(min(0.2 * 2**attempt, 2.0))
                    continue
                self._abort_after(error, "commit")
                return Commit.REWIND
        raise AssertionError("unreachable")  # pragma: no cover

    def _commit_acknowledged(self, offsets: list[TopicPartition]) -> Commit:
        remaining = self.producer.flush(timeout=self.budget_s)
        if remaining or self.delivery_error is not None:
            error = self.delivery_error
            self.reason = f"delivery failed: {error.str() if error else f'{remaining} unsent'}"
            self.delivery_error = None
            return Commit.REWIND
        if not offsets:
            return Commit.DONE
        try:
            results = self.consumer.commit(offsets=offsets, asynchronous=False) or []
        except KafkaException as exc:
            event(logger, "commit_failed", logging.WARNING, error=exc.args[0].str())
            return Commit.LATER
        failed = [tp for tp in results if tp.error is not None]
        if failed:
            event(logger, "commit_failed", logging.WARNING, error=str(failed[0].error))
            return Commit.LATER
        return Commit.DONE

    def _abort_after(self, error: KafkaError, operation: str) -> None:
        """After a failed produce/commit: a fatal error raises ``ProcessorError`` (exit, the
        restart resumes from the committed offsets); otherwise the open transaction is aborted
        (retrying a retriable abort) and the caller rewinds."""
        if error.fatal():
            raise ProcessorError(f"{operation} failed: {error.str()}")
        self.reason = f"{operation} failed: {error.str()}"
        self.delivery_error = None
        if not self.in_transaction:
            return
        for attempt in range(1, RETRIES + 1):
            try:
                self.producer.abort_transaction(timeout=self.budget_s)
                break
            except KafkaException as exc:
                abort_error: KafkaError = exc.args[0]
                if abort_error.fatal() or not abort_error.retriable() or attempt == RETRIES:
                    raise ProcessorError(f"transaction abort failed: {abort_error.str()}") from None
                time.sleep(min(0.2 * 2**attempt, 2.0))
        self.in_transaction = False
