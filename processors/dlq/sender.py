"""The writing side of a replay run: republishes and ledger entries, in transactions
(exactly-once) or not (at-least-once), with every blocking Kafka call bounded.

A call that does not finish within its budget raises ``ReplayStalledError`` (one line, naming
the call and how long it waited). librdkafka calls that take a timeout can still hang (upstream
issues #5511, #3013), so each one also runs under a guard thread that gives up on it from outside.

Exactly-once errors are sorted the way Kafka Streams sorts them: a transaction aborted under the
run (``TransactionAbortedError``) or a producer fenced by its own transaction's recovery after a
coordinator failover (``ProducerFencedError``) is for the caller to recover from: abort or
``renew`` (a new producer with the same transactional id), rewind to the last commit, go on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from processors.errors import KafkaUnavailableError
from processors.kafka import clients, tail
from processors.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")
Headers = list[tuple[str, bytes]]
# A coordinator still loading or moving (a new or restarted broker), or still finishing the
# abort of an earlier producer's transaction with this id (a rerun right after a frozen or
# killed run): worth asking again, although librdkafka does not flag all of these retriable.
COORDINATOR_SETTLING = frozenset(
    {
        KafkaError.CONCURRENT_TRANSACTIONS,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.UNSTABLE_OFFSET_COMMIT,
        KafkaError._WAIT_COORD,
    }
)
# A coordinator that answers "still finishing an earlier transaction" is alive and working
# (after a cluster-wide freeze it must first write that transaction's abort markers, which can
# outlast the transaction timeout): it gets this long in all before the call gives up.
SETTLING_S = 120.0


# Delivery errors that no retry of the same record can fix (it is too large for the target, or
# the broker refuses its contents): the record is skipped and listed as refused, with the error.
UNPUBLISHABLE = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_MSG_SIZE,
    }
)


class UnpublishableError(KafkaUnavailableError):
    """The client refused this one record for good (e.g. too large): skip it, say why."""


class ReplayStalledError(KafkaUnavailableError):
    """A Kafka call of a replay did not finish within its budget; progress up to the last
    commit is kept."""


class TransactionAbortedError(KafkaUnavailableError):
    """The open transaction cannot commit and must be aborted (its work is then redone)."""


class ProducerFencedError(KafkaUnavailableError):
    """The producer is unusable (fenced or fatal error); a new one with the same
    transactional id may go on."""


def bounded(what: str, call: Callable[[], T], budget_s: float) -> T:
    """``call()`` in a guard thread; ``ReplayStalledError`` if it has not returned after
    ``budget_s`` (the blocked thread is abandoned: it is a daemon, the process can exit)."""
    result: list[Any] = []

    def target() -> None:
        try:
            result.append((True, call()))
        except BaseException as exc:  # handed over to the caller's thread below
            result.append((False, exc))

    worker = threading.Thread(target=target, name=f"replay-{what}", daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(budget_s)
    if worker.is_alive():
        waited = time.monotonic() - started
        logger.error("event=stalled call=%s waited_s=%.1f", what, waited)
        raise ReplayStalledError(
            f"replay stalled: {what} did not return within {waited:.0f} s;"
            " progress up to the last commit is kept, run the same command again"
        )
    ok, value = result[0]
    if ok:
        return value
    raise value


class Sender:
    """One producer (transactional when ``transactional_id`` is given) and its bounded calls.

    ``budget_s`` bounds each transactional call and is derived from the transaction timeout:
    past it the broker aborts the transaction anyway.
    """

    def __init__(
        self, settings: Settings, *, transactional_id: str | None, delivery_timeout_s: float
    ) -> None:
        self.settings = settings
        self.transactional_id = transactional_id
        self.delivery_timeout_s = delivery_timeout_s
        self.budget_s = settings.transaction_timeout_ms / 1000 + 5
        self.in_transaction = False
        self.producer = self._new_producer()

    @property
    def exactly_once(self) -> bool:
        return self.transactional_id is not None

    def _new_producer(self) -> Producer:
        delivery_ms = int(self.delivery_timeout_s * 1000)
        overrides: dict[str, Any] = {
            "message.timeout.ms": delivery_ms,
            # At-least-once: any dead letter the DLQ holds may go back and the target topic's
            # limit decides (a refusal skips that record). Exactly-once: a refusal by the broker
            # would abort the whole transaction, so records over the main topic's limit are
            # refused here, by the client, before they join it.
            "message.max.bytes": clients.MAIN_RECORD_LIMIT
            if self.transactional_id is not None
            else clients.FAILURE_RECORD_LIMIT,
        }
        if self.transactional_id is not None:
            # librdkafka: a delivery may not outlive the transaction it belongs to.
            overrides["message.timeout.ms"] = min(delivery_ms, self.settings.transaction_timeout_ms)
            overrides["transactional.id"] = self.transactional_id
            overrides["transaction.timeout.ms"] = self.settings.transaction_timeout_ms
        producer = clients.producer(self.settings, logger=tail.RDKAFKA_LOGGER, **overrides)
        if self.transactional_id is not None:
            # Fences an earlier producer with this id (a killed run) and aborts its open
            # transaction, so committed offsets and the ledger are settled before planning.
            self._retrying("init_transactions", producer.init_transactions, producer)
        return producer

    def _retrying(self, what: str, call: Callable[[float], Any], producer: Producer) -> None:
        """A transactional call, repeated while its error is retriable, within ``budget_s``."""
        started = time.monotonic()
        deadline = started + self.budget_s
        while True:
            left = deadline - time.monotonic()
            try:
                timeout = max(1.0, left)
                bounded(what, lambda: call(timeout), timeout + 5)  # noqa: B023 (called here)
                return
            except KafkaException as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                if error is None:
                    raise KafkaUnavailableError(f"{what} failed: {exc}") from exc
                if error.txn_requires_abort():
                    raise TransactionAbortedError(f"{what}: {error.str()}") from exc
                if error.fatal():
                    raise ProducerFencedError(f"{what}: {error.str()}") from exc
                retriable = error.retriable() or error.code() in COORDINATOR_SETTLING
                if error.code() == KafkaError.CONCURRENT_TRANSACTIONS:
                    deadline = max(deadline, started + SETTLING_S)
                if not retriable or time.monotonic() >= deadline:
                    if error.code() == KafkaError._TIMED_OUT:
                        raise ReplayStalledError(
                            f"replay stalled: {what} did not finish within"
                            f" {self.budget_s:.0f} s; progress up to the last commit is kept"
                        ) from exc
                    raise KafkaUnavailableError(f"{what} failed: {error.str()}") from exc
                logger.info("event=txn_retry call=%s error=%r", what, error.str())
                time.sleep(0.2)

    # --- sending -------------------------------------------------------------------------------
    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        on_delivery: Callable[[KafkaError | None, Any], None],
    ) -> None:
        if self.exactly_once and not self.in_transaction:
            self._begin()
        while True:
            try:
                self.producer.produce(
                    topic, key=key, value=value, headers=headers, on_delivery=on_delivery
                )
                return
            except BufferError:
                self.producer.poll(0.1)
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if isinstance(error, KafkaError) and error.code() in UNPUBLISHABLE:
                    raise UnpublishableError(error.str()) from exc  # this record only
                self._raise(exc, "produce")

    def _begin(self) -> None:
        try:
            self.producer.begin_transaction()  # local: no request, no wait
        except KafkaException as exc:
            self._raise(exc, "begin_transaction")
        self.in_transaction = True

    def _raise(self, exc: KafkaException, what: str) -> None:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        text = error.str() if error is not None else str(exc)
        if error is not None and error.fatal():
            raise ProducerFencedError(f"{what}: {text}") from exc
        if self.exactly_once:
            # The transaction cannot go on (e.g. its deliveries timed out while the process was
            # frozen: librdkafka then refuses new records with an "erroneous state"): abort it.
            raise TransactionAbortedError(f"{what}: {text}") from exc
        raise KafkaUnavailableError(f"{what} failed: {text}") from exc

    def poll(self, timeout_s: float) -> None:
        self.producer.poll(timeout_s)

    def flush(self) -> int:
        """Wait for every delivery report; the number still unconfirmed after the budget."""
        budget = self.delivery_timeout_s + 5
        try:
            return bounded("flush", lambda: self.producer.flush(budget), budget + 5)
        except KafkaException as exc:  # e.g. fenced while frozen: the run recovers from it
            self._raise(exc, "flush")
            raise  # unreachable: _raise always raises

    # --- transactions ----------------------------------------------------------------------------
    def commit(self, offsets: list[TopicPartition], consumer: Consumer | None) -> None:
        """Commit the open transaction, with ``offsets`` of ``consumer``'s group in it."""
        if not self.exactly_once:
            return
        if not self.in_transaction:
            if not offsets or consumer is None:
                return
            self._begin()
        if offsets and consumer is not None:
            metadata = consumer.consumer_group_metadata()
            self._retrying(
                "send_offsets_to_transaction",
                lambda t: self.producer.send_offsets_to_transaction(offsets, metadata, t),
                self.producer,
            )
        self._retrying("commit_transaction", self.producer.commit_transaction, self.producer)
        self.in_transaction = False

    def abort(self) -> None:
        """Abort the open transaction; renew the producer if even that fails."""
        if not self.in_transaction:
            return
        try:
            self._retrying("abort_transaction", self.producer.abort_transaction, self.producer)
            self.in_transaction = False
        except (ProducerFencedError, TransactionAbortedError, KafkaUnavailableError) as exc:
            if isinstance(exc, ReplayStalledError):
                raise
            logger.warning("event=abort_failed error=%r; renewing the producer", str(exc))
            self.renew()

    def renew(self) -> None:
        """Throw the producer away and make a new one with the same transactional id."""
        old, self.producer = self.producer, None  # type: ignore[assignment]
        self.in_transaction = False
        # The old producer is unusable; its work is redone from the last commit.
        with contextlib.suppress(KafkaException, ReplayStalledError, RuntimeError):
            bounded("purge", lambda: old.purge(in_queue=True, in_flight=True), 5)
        self.producer = self._new_producer()

    def close(self, *, abort: bool) -> None:
        """Abort (exactly-once, when ``abort``) or deliver what is pending; bounded either way."""
        try:
            if self.exactly_once and self.in_transaction and abort:
                self.abort()
            elif not self.exactly_once:
                self.flush()
        except (ReplayStalledError, ProducerFencedError, TransactionAbortedError) as exc:
            logger.warning("event=close_incomplete error=%r", str(exc))
