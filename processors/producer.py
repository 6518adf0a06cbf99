"""Putting orders on ``orders.v1``: traceable events, every delivery confirmed or reported.

Each record is a CloudEvent in the Kafka binding's binary mode: the order JSON is the value, the
key is the order id, and the event attributes are ``ce_*`` headers, plus a W3C ``traceparent``.
``ce_id`` is a fresh UUID per event and doubles as the idempotency key the processors hand to
their handler. The producer is idempotent with ``acks=all`` (see ``clients.producer``); a record
not acknowledged within ``delivery_timeout_s`` is counted as failed, never silently dropped.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import KafkaError, KafkaException, Message

from processors.core import headers as h
from processors.core.order import EVENT_TYPE, Order
from processors.errors import AuthorizationError, InvalidOrderError, KafkaUnavailableError
from processors.kafka import access, clients
from processors.orders_gen import (
    SCENARIOS,
    GeneratedItem,
    RawPayload,
    Scenario,
    generate_orders,
)
from processors.settings import Settings

__all__ = [
    "SCENARIOS",
    "Delivery",
    "GeneratedItem",
    "ProduceSummary",
    "RawPayload",
    "Scenario",
    "generate_orders",
    "order_headers",
    "produce_one",
    "produce_orders",
]

logger = logging.getLogger(__name__)
# librdkafka's own log lines (e.g. every refused connection) go through logging, not raw stderr;
# delivery reports carry the errors that matter to a caller.
RDKAFKA_LOGGER = logging.getLogger("processors.kafka.rdkafka")

CONTENT_TYPE_JSON = "application/json"
SPEC_VERSION = "1.0"
DEFAULT_DELIVERY_TIMEOUT_S = 10.0
_MAX_ERRORS = 10
_MAX_FAILED_KEYS = 100
UNCONFIRMED = "reported delivered without an offset (no broker acknowledged it)"


def rfc3339(moment: datetime) -> str:
    """``2026-01-31T12:00:00.123Z``: UTC, millisecond precision."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_headers(
    *,
    source: str,
    time_: datetime,
    event_id: str | None = None,
    traceparent: str | None = None,
) -> h.HeaderList:
    """The CloudEvents binary-mode attributes and a ``traceparent`` (a new trace unless given).

    Raises ``InvalidOrderError`` (exit code 2) for a malformed ``traceparent``.
    """
    if traceparent is not None and not h.is_valid_traceparent(traceparent):
        raise InvalidOrderError(
            f"traceparent: {traceparent!r} is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)"
        )
    return [
        (h.CE_SPECVERSION, SPEC_VERSION.encode()),
        (h.CE_ID, (event_id or h.new_event_id()).encode()),
        (h.CE_SOURCE, source.encode()),
        (h.CE_TYPE, EVENT_TYPE.encode()),
        (h.CE_TIME, rfc3339(time_).encode()),
        (h.CONTENT_TYPE, CONTENT_TYPE_JSON.encode()),
        (h.TRACEPARENT, (traceparent or h.new_traceparent()).encode()),
    ]


def order_headers(
    order: Order, *, source: str, event_id: str | None = None, traceparent: str | None = None
) -> h.HeaderList:
    """Headers for one order event; ``ce_time`` is the order's ``created_at``."""
    return event_headers(
        source=source, time_=order.created_at, event_id=event_id, traceparent=traceparent
    )


def _record(
    item: GeneratedItem, source: str, event_id: str | None = None, traceparent: str | None = None
) -> tuple[bytes | None, bytes, h.HeaderList]:
    if isinstance(item, RawPayload):
        now = datetime.now(UTC)
        headers = event_headers(
            source=source, time_=now, event_id=event_id, traceparent=traceparent
        )
        return item.key, item.value, headers
    headers = order_headers(item, source=source, event_id=event_id, traceparent=traceparent)
    return item.order_id.encode(), item.to_json_bytes(), headers


def _error_text(err: KafkaError | BaseException) -> str:
    return err.str() if isinstance(err, KafkaError) else str(err)


@dataclass
class ProduceSummary:
    """Outcome of ``produce_orders``: ``delivered + failed`` records were attempted.

    ``errors`` lists distinct failure causes with their counts; ``failed_keys`` the keys of the
    first failed records. ``interrupted`` is set when Ctrl-C or a fatal producer error stopped
    the run before every item was sent.
    """

    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    failed_keys: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.interrupted

    @property
    def rate(self) -> float:
        """Delivered records per second."""
        return self.delivered / self.elapsed_s if self.elapsed_s > 0 else 0.0


class _Tracker:
    """Counts delivery reports; called from ``poll``/``flush`` in the producing thread."""

    def __init__(
        self,
        progress: Callable[[int, int], None] | None,
        denied: Callable[[KafkaError], str | None],
    ) -> None:
        self.denied = denied  # KafkaError -> one line if it is an ACL denial, else None
        self.denial: str | None = None
        self.delivered = 0
        self.failed = 0
        self.causes: Counter[str] = Counter()
        self.failed_keys: list[str] = []
        self.progress = progress

    def fail(self, key: bytes | None, cause: str, count: int = 1) -> None:
        self.failed += count
        self.causes[cause] += count
        if key is not None and len(self.failed_keys) < _MAX_FAILED_KEYS:
            self.failed_keys.append(key.decode("utf-8", errors="backslashreplace"))

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        offset = msg.offset() if err is None else None
        if err is None and offset is not None and offset >= 0:
            self.delivered += 1
        elif err is None:
            # No broker acknowledged this record: librdkafka inferred it from a later batch's
            # success ("implicitly acked", see clients.producer), and it may never have been
            # written. Reported, never counted as delivered.
            self.fail(msg.key(), UNCONFIRMED)
        else:
            self.denial = self.denial or self.denied(err)
            self.fail(msg.key(), _error_text(err))
        if self.progress is not None:
            self.progress(self.delivered, self.failed)


def produce_orders(
    settings: Settings,
    items: Iterable[GeneratedItem],
    rate: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    topic: str | None = None,
    delivery_timeout_s: float = DEFAULT_DELIVERY_TIMEOUT_S,
) -> ProduceSummary:
    """Send every item to ``topic`` (default ``settings.topic_main``) and account for each one.

    ``rate`` caps records per second (evenly paced); ``progress(delivered, failed)`` is called
    after every delivery report. Returns once every record is acknowledged or has failed; the
    wait is bounded by ``delivery_timeout_s`` after the last send (a broker that is down yields
    failures, not a hang). Ctrl-C stops sending, waits briefly for what is in flight and returns
    with ``interrupted`` set. An ACL denial raises ``AuthorizationError`` once all is settled.
    """
    topic = topic or settings.topic_main
    tracker = _Tracker(progress, lambda err: access.denied(settings, err, "WRITE", topic))
    timeout_ms = int(delivery_timeout_s * 1000)
    producer = clients.producer(
        settings,
        logger=RDKAFKA_LOGGER,
        **{"message.timeout.ms": timeout_ms, "socket.connection.setup.timeout.ms": timeout_ms},
    )
    started = time.monotonic()
    interval = 1.0 / rate if rate else 0.0
    interrupted = False
    sent = 0
    try:
        for item in items:
            if interval:
                due = started + sent * interval
                # poll returns early whenever it serves a delivery report
                while (wait := due - time.monotonic()) > 0:
                    producer.poll(wait)
            key, value, headers = _record(item, settings.event_source)
            while True:
                try:
                    producer.produce(
                        topic,
                        key=key,
                        value=value,
                        headers=headers,
                        on_delivery=tracker.on_delivery,
                    )
                    break
                except BufferError:  # local queue full: let deliveries drain
                    producer.poll(0.1)
                except KafkaException as exc:  # fatal producer error: stop, count this one
                    tracker.fail(key, _error_text(exc.args[0] if exc.args else exc))
                    interrupted = True
                    break
            if interrupted:
                break
            sent += 1
            producer.poll(0)
    except KeyboardInterrupt:
        interrupted = True
        tracker.causes["interrupted by the user"] += 1
    finally:
        flush_s = delivery_timeout_s + 5 if not interrupted else min(5.0, delivery_timeout_s)
        unconfirmed = producer.flush(flush_s)
        if unconfirmed:
            tracker.fail(None, f"no acknowledgement within {flush_s:g} s", unconfirmed)
    summary = ProduceSummary(
        delivered=tracker.delivered,
        failed=tracker.failed,
        errors=[f"{cause} (×{n})" for cause, n in tracker.causes.most_common(_MAX_ERRORS)],
        failed_keys=tracker.failed_keys,
        elapsed_s=time.monotonic() - started,
        interrupted=interrupted,
    )
    if tracker.denial:
        raise AuthorizationError(f"{tracker.denial}; {summary.failed} record(s) not delivered")
    logger.info(
        "produce=done topic=%s delivered=%d failed=%d elapsed_s=%.2f interrupted=%s",
        topic,
        summary.delivered,
        summary.failed,
        summary.elapsed_s,
        summary.interrupted,
    )
    return summary


@dataclass(frozen=True)
class Delivery:
    """Where one produced record landed, and its event identity."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    event_id: str
    traceparent: str


def produce_one(
    settings: Settings,
    order: GeneratedItem,
    *,
    topic: str | None = None,
    event_id: str | None = None,
    traceparent: str | None = None,
    delivery_timeout_s: float = DEFAULT_DELIVERY_TIMEOUT_S,
) -> Delivery:
    """Send one order (or raw payload) and wait for its acknowledgement.

    Raises ``KafkaUnavailableError`` if it is not acknowledged within ``delivery_timeout_s``.
    """
    topic = topic or settings.topic_main
    key, value, headers = _record(order, settings.event_source, event_id, traceparent)
    timeout_ms = int(delivery_timeout_s * 1000)
    producer = clients.producer(
        settings,
        logger=RDKAFKA_LOGGER,
        **{"message.timeout.ms": timeout_ms, "socket.connection.setup.timeout.ms": timeout_ms},
    )
    outcome: list[tuple[KafkaError | None, Message]] = []
    producer.produce(
        topic,
        key=key,
        value=value,
        headers=headers,
        on_delivery=lambda err, msg: outcome.append((err, msg)),
    )
    producer.flush(delivery_timeout_s + 5)
    if not outcome:
        raise KafkaUnavailableError(
            f"no acknowledgement from Kafka within {delivery_timeout_s:g} s"
        )
    err, msg = outcome[0]
    if err is not None:
        if line := access.denied(settings, err, "WRITE", topic):
            raise AuthorizationError(line)
        raise KafkaUnavailableError(f"order not delivered to {topic}: {_error_text(err)}")
    values = h.last_values(headers)
    return Delivery(
        topic=msg.topic(),
        partition=msg.partition(),
        offset=msg.offset(),
        timestamp_ms=msg.timestamp()[1],
        key=None if key is None else key.decode("utf-8", errors="backslashreplace"),
        event_id=values[h.CE_ID].decode(),
        traceparent=values[h.TRACEPARENT].decode(),
    )
