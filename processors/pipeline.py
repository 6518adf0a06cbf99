"""The guarded step both processors run on every record: bytes in, one routed output out.

decode UTF-8/JSON → validate the order → run the handler → classify → route. It never raises
(except ``KeyboardInterrupt``/``SystemExit``): poison records, handler errors and even bugs in
this module become a retry or dead-letter output that carries the original key, value and
headers byte for byte. The adapters (main.py, retry.py) only write what it returns.
"""

from __future__ import annotations

import json
import logging
import random
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson

from processors.core import headers as h
from processors.core.classify import ErrorCategory, qualified_name
from processors.core.envelope import Record
from processors.core.order import Order, parse_order
from processors.core.policy import RetryPolicy
from processors.core.routing import (
    Decision,
    DlqReason,
    Failure,
    Identity,
    RecordMeta,
    Route,
    attempt_number,
    forwarded_headers,
    idempotency_key,
    route,
)
from processors.handler import Handler, HandlerContext
from processors.logs import event
from processors.metrics import Metrics

logger = logging.getLogger(__name__)

RawHeaders = h.HeaderList


class EmptyValueError(ValueError):
    """The record has no value (null or zero bytes)."""


class NotAnObjectError(ValueError):
    """The value is valid JSON but not a JSON object."""


class Output(NamedTuple):
    """One record to write: destination, key, value, headers and timestamp."""

    route: Route
    topic: str
    key: bytes | None
    value: bytes | None
    headers: RawHeaders
    timestamp_ms: int


class StepResult(NamedTuple):
    """The decision and what to write (``output`` is None only for a success with the outcome
    topic disabled)."""

    decision: Decision
    output: Output | None
    order_id: str | None = None


@dataclass(frozen=True)
class Topics:
    retry: str
    dlq: str
    processed: str  # empty: no outcome record


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class GuardedStep:
    """Callable ``(Record) -> StepResult`` that never raises.

    ``first_hop`` is True in the main processor (every record is a first attempt) and False in
    the retry processor (``x-attempts`` counts previous attempts).
    """

    def __init__(
        self,
        *,
        handler: Handler,
        policy: RetryPolicy,
        identity: Identity,
        topics: Topics,
        first_hop: bool,
        metrics: Metrics | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.handler = handler
        self.policy = policy
        self.identity = identity
        self.topics = topics
        self.first_hop = first_hop
        self.metrics = metrics or Metrics("main" if first_hop else "retry")
        self.clock_ms = clock_ms
        self.rand = rand
        self.routed_log = RoutedLog()
        # The outcome headers that are the same for every record of this instance, encoded once.
        self._content_type = (
            h.CONTENT_TYPE,
            h.encode({h.CONTENT_TYPE: "application/json"})[h.CONTENT_TYPE],
        )
        self._by = list(identity.headers.items())  # x-processor, x-consumer-group
        self._encoded_topics: dict[str, bytes | None] = {}
        self._processor = identity.processor

    def __call__(self, record: Record, state: h.Contract | None = None) -> StepResult:
        """``state``: the record's decoded contract headers, when the caller has them already."""
        started = time.perf_counter()
        try:
            result = self._step(record, state)
        except Exception as exc:  # a bug in the step itself: still never lose the record
            logger.exception("event=step_failed offset=%s", record.offset)
            result = self._emergency(record, exc)
        if result.decision.route is Route.PROCESSED:
            self.metrics.succeeded(time.perf_counter() - started)
        else:
            self._observe_failure(result.decision, time.perf_counter() - started)
        return result

    # --- the step -----------------------------------------------------------------------------
    def _step(self, record: Record, state: h.Contract | None) -> StepResult:
        meta = RecordMeta(record.topic, record.partition, record.offset, record.timestamp_ms)
        if state is None:
            # A first attempt ignores any retry state it carries: decode only what it reads.
            state = h.decode(record.headers, h.FIRST_ATTEMPT if self.first_hop else None)
        attempt, _ = attempt_number(state, self.policy, self.first_hop)
        handler_result: object = None
        order, failure, order_id = _order(record.value)
        event_id = idempotency_key(state, meta)
        if order is not None:
            context = HandlerContext(  # positional: built for every record
                attempt,
                self.policy.max_attempts,
                event_id,
                MappingProxyType(dict(record.headers)),
                record.topic,
                record.partition,
                record.offset,
            )
            try:
                handler_result = self.handler(order, context)
            except Exception as exc:
                failure = _failure(exc, self.policy.classifier.classify(exc))
        if order_id is None and record.key:
            order_id = record.key.decode("utf-8", errors="replace")
        now = self.clock_ms()
        decision = route(
            meta,
            state,
            failure,
            self.policy,
            self.identity,
            now,
            self.rand(),
            first_hop=self.first_hop,
        )
        if decision.route is Route.PROCESSED:
            output = self._outcome(
                record, state, meta, decision, now, order_id, event_id, handler_result
            )
        else:
            topic = self.topics.retry if decision.route is Route.RETRY else self.topics.dlq
            output = Output(
                route=decision.route,
                topic=topic,
                key=record.key,
                value=record.value,
                headers=forwarded_headers(record.headers, decision),
                timestamp_ms=now,
            )
        if failure is not None:
            self._log_failure(decision, failure, output, order_id, now)
            # The exception's traceback holds this frame and so ``failure``: a reference cycle
            # per failed record, left for the garbage collector. Dropping it here frees both.
            failure = None
        return StepResult(decision, output, order_id)

    def _outcome(
        self,
        record: Record,
        state: h.Contract,
        meta: RecordMeta,
        decision: Decision,
        now: int,
        order_id: str | None,
        event_id: str,
        handler_result: object,
    ) -> Output | None:
        if not self.topics.processed:
            return None
        origin = _origin(state, meta)
        body: dict[str, Any] = {
            "status": "processed",
            "order_id": order_id,
            "event_id": event_id,
            "attempts": decision.attempt,
            "processed_at": now,
            "processor": self._processor,
            "source": origin,
        }
        if handler_result is not None and isinstance(handler_result, Mapping):
            body["result"] = dict(handler_result)
        try:
            value = orjson.dumps(body, default=str, option=_JSON_OPTIONS)
        except TypeError:  # a handler result orjson refuses (an int beyond 64 bits, …)
            value = json.dumps(body, separators=(",", ":"), default=str).encode("utf-8")
        carried = [(n, v) for n, v in record.headers if n == h.TRACEPARENT]
        topic = self._encoded_topics.get(origin["topic"])
        if topic is None:  # a handful of topic names: each encoded once
            topic = h.encode({h.ORIGINAL_TOPIC: origin["topic"]})[h.ORIGINAL_TOPIC]
            if len(self._encoded_topics) < 64:
                self._encoded_topics[origin["topic"]] = topic
        headers: RawHeaders = [
            *carried,
            self._content_type,
            (h.ATTEMPTS, h.encode_int(decision.attempt)),
            *self._by,
            (h.ORIGINAL_TOPIC, topic),
            (h.ORIGINAL_PARTITION, h.encode_int(origin["partition"])),
            (h.ORIGINAL_OFFSET, h.encode_int(origin["offset"])),
        ]
        return Output(Route.PROCESSED, self.topics.processed, record.key, value, headers, now)

    def _emergency(self, record: Record, exc: Exception) -> StepResult:
        """Dead-letter the record with minimal headers: the step itself failed."""
        now = wall_clock_ms()
        decision = Decision(
            route=Route.DLQ,
            attempt=1,
            reason=DlqReason.NON_RETRYABLE,
            updates=h.encode(
                {
                    h.ERROR_CLASS: qualified_name(exc),
                    h.ERROR_MESSAGE: str(exc),
                    h.ERROR_CATEGORY: ErrorCategory.UNKNOWN.value,
                    h.DLQ_REASON: DlqReason.NON_RETRYABLE.value,
                    h.DLQ_AT: now,
                    h.ERROR_STACKTRACE: _trace(exc),
                }
            ),
        )
        output = Output(
            Route.DLQ,
            self.topics.dlq,
            record.key,
            record.value,
            h.rewrite(record.headers, decision.updates),
            now,
        )
        return StepResult(decision, output, None)

    # --- observability ------------------------------------------------------------------------
    def _observe_failure(self, decision: Decision, seconds: float) -> None:
        category = decision.updates.get(h.ERROR_CATEGORY) or b"unknown"
        self.metrics.failed(category.decode("utf-8", errors="replace"), seconds)
        if decision.route is Route.RETRY:
            self.metrics.retried(decision.attempt)
        elif decision.reason is not None:
            self.metrics.dead_lettered(decision.reason.value)

    def _log_failure(
        self,
        decision: Decision,
        failure: Failure,
        output: Output | None,
        order_id: str | None,
        now: int,
    ) -> None:
        level = logging.WARNING if decision.route is Route.DLQ else logging.INFO
        kind = decision.reason.value if decision.reason else failure.category.value
        first = self.routed_log.count(decision.route.value, kind, level)
        level = level if first else logging.DEBUG  # the rest are in the periodic summary
        if logger.isEnabledFor(level):
            event(
                logger,
                "routed",
                level,
                route=decision.route.value,
                topic=output.topic if output else None,
                attempt=decision.attempt,
                order_id=order_id,
                error=failure.error_class.rpartition(".")[2],
                category=failure.category.value,
                reason=decision.reason.value if decision.reason else None,
                due_in_ms=(decision.due_at_ms - now) if decision.due_at_ms is not None else None,
                notes=",".join(decision.notes) or None,
                message=failure.message[:200],
            )


class RoutedLog:
    """The failure log without a line per record: the first failure of each kind (route and
    reason, or category for a retry) in a window is logged in full at once; the others at DEBUG
    only, and counted into one ``event=routed_summary`` line per window (WARNING if it holds
    dead letters). Every record is still counted in the metrics, and every dead letter carries
    its reason and error in its headers."""

    def __init__(self, window_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.window_s = window_s
        self.clock = clock
        self.started = clock()
        self.counts: dict[tuple[str, str], int] = {}
        self.levels: dict[tuple[str, str], int] = {}

    def count(self, route: str, kind: str, level: int) -> bool:
        """Count one routed failure; True if it is the first of its kind in this window."""
        if self.clock() - self.started >= self.window_s:
            self.flush()
        key = (route, kind)
        seen = self.counts.get(key, 0)
        self.counts[key] = seen + 1
        self.levels[key] = level
        return seen == 0

    def flush(self) -> None:
        """Log the window's summary (if it counted more than its first lines) and start anew."""
        counts, levels = self.counts, self.levels
        self.counts, self.levels, self.started = {}, {}, self.clock()
        if not counts or all(n == 1 for n in counts.values()):
            return
        event(
            logger,
            "routed_summary",
            max(levels.values()),
            records=sum(counts.values()),
            window_s=round(self.window_s),
            **{f"{route}.{kind}": n for (route, kind), n in sorted(counts.items())},
        )


# The outcome body: orjson is ~10× faster than ``json`` here; a handler result's values that
# JSON has no type for become ``str`` (as with ``json.dumps(default=str)``); int keys become text.
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def _order(value: bytes | None) -> tuple[Order | None, Failure | None, str | None]:
    """The validated order, or why not (and the order id, if the value names one).

    Valid orders are parsed once, by pydantic from the text (JSON numbers become exact
    Decimals); only a value that fails is parsed again with ``json``, to tell garbage
    (deserialization) from JSON that is not a valid order (validation)."""
    try:
        text = _text(value)
    except Exception as exc:
        return None, _failure(exc, ErrorCategory.DESERIALIZATION), None
    try:
        order = parse_order(text)
    except Exception as invalid:
        try:
            document = json.loads(text)
        except Exception as exc:
            return None, _failure(exc, ErrorCategory.DESERIALIZATION), None
        order_id = _order_id_hint(document)
        try:
            if not isinstance(document, dict):
                raise NotAnObjectError(f"expected a JSON object, got {type(document).__name__}")
        except NotAnObjectError as exc:
            return None, _failure(exc, ErrorCategory.VALIDATION), order_id
        return None, _failure(invalid, ErrorCategory.VALIDATION), order_id
    return order, None, order.order_id


def _text(value: bytes | None) -> str:
    """The value as text; raises on null/empty or non-UTF-8."""
    if not value:
        raise EmptyValueError("record value is empty" if value == b"" else "record value is null")
    return value.decode("utf-8")


def _order_id_hint(document: Any) -> str | None:
    order_id = document.get("order_id") if isinstance(document, dict) else None
    return order_id[:64] if isinstance(order_id, str) and order_id else None


def _failure(exc: BaseException, category: ErrorCategory) -> Failure:
    return Failure(
        category=category,
        error_class=qualified_name(exc),
        message=str(exc) or qualified_name(exc),
        exception=exc,
    )


def _trace(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _origin(state: h.Contract, meta: RecordMeta) -> dict[str, object]:
    topic, partition, offset = state.original_topic, state.original_partition, state.original_offset
    if isinstance(topic, str) and topic and isinstance(partition, int) and isinstance(offset, int):
        return {"topic": topic, "partition": partition, "offset": offset}
    return {"topic": meta.topic, "partition": meta.partition, "offset": meta.offset}
