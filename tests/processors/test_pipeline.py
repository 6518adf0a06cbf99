"""The guarded step without a broker: every input becomes exactly one routed output."""

from __future__ import annotations

import gc
import json
import logging

import pytest

from processors import PermanentError, TransientError
from processors.core import headers as h
from processors.core.envelope import Record
from processors.core.order import Simulation
from processors.core.policy import RetryPolicy
from processors.core.routing import Identity, Route
from processors.handler import HandlerContext, handle_order
from processors.metrics import Metrics
from processors.pipeline import GuardedStep, RoutedLog, Topics
from tests.processors.harness import order

NOW = 1_800_000_000_000
TOPICS = Topics("orders.retry", "orders.dlq", "orders.processed")
IDENTITY = Identity("orderflow-main", "0.1.0", "test", "orderflow-main")


def step(handler=handle_order, first_hop: bool = True, **policy: object) -> GuardedStep:
    return GuardedStep(
        handler=handler,
        policy=RetryPolicy(jitter=0.0, **policy),  # type: ignore[arg-type]
        identity=IDENTITY,
        topics=TOPICS,
        first_hop=first_hop,
        metrics=Metrics("main"),
        clock_ms=lambda: NOW,
        rand=lambda: 0.5,
    )


def record(value: bytes | None, headers=None, key: bytes | None = b"k") -> Record:
    return Record("orders.v1", 1, 10, NOW - 100, key, value, headers)


def metric(s: GuardedStep, name: str, **labels: str) -> float:
    value = s.metrics.registry.get_sample_value(name, {"processor": "main", **labels})
    return value or 0.0


def test_success_produces_the_outcome_record() -> None:
    s = step()
    headers = [(h.CE_ID, b"evt-1"), (h.TRACEPARENT, b"00-t"), ("other", b"x")]
    result = s(record(order("o-1").to_json_bytes(), headers))
    assert result.decision.route is Route.PROCESSED
    out = result.output
    assert out is not None and out.topic == "orders.processed" and out.key == b"k"
    body = json.loads(out.value or b"")
    assert body == {
        "status": "processed",
        "order_id": "o-1",
        "event_id": "evt-1",
        "attempts": 1,
        "processed_at": NOW,
        "processor": "orderflow-main/0.1.0/test",
        "source": {"topic": "orders.v1", "partition": 1, "offset": 10},
    }
    assert dict(out.headers)[h.TRACEPARENT] == b"00-t"
    assert "other" not in dict(out.headers)
    assert out.timestamp_ms == NOW
    assert metric(s, "orderflow_records_succeeded_total") == 1


def test_outcome_topic_disabled() -> None:
    s = step()
    s.topics = Topics("orders.retry", "orders.dlq", "")
    result = s(record(order("o-1").to_json_bytes()))
    assert result.decision.route is Route.PROCESSED and result.output is None


@pytest.mark.parametrize(
    ("value", "reason", "error_class"),
    [
        (None, "deserialization_failed", "processors.pipeline.EmptyValueError"),
        (b"", "deserialization_failed", "processors.pipeline.EmptyValueError"),
        (b"\xc3\x28", "deserialization_failed", "UnicodeDecodeError"),
        (b"{", "deserialization_failed", "json.decoder.JSONDecodeError"),
        (b"[]", "validation_failed", "processors.pipeline.NotAnObjectError"),
        (b'{"order_id": "x"}', "validation_failed", "processors.errors.InvalidOrderError"),
    ],
)
def test_poison_is_dead_lettered_with_original_bytes(
    value: bytes | None, reason: str, error_class: str
) -> None:
    s = step()
    original = [("a", b"1"), ("n", None)]
    result = s(record(value, original))
    out = result.output
    assert result.decision.route is Route.DLQ and out is not None
    assert out.topic == "orders.dlq" and out.value == value and out.key == b"k"
    assert out.headers[:2] == original
    headers = dict(out.headers)
    assert headers[h.DLQ_REASON] == reason.encode()
    assert headers[h.ERROR_CLASS] == error_class.encode()
    assert metric(s, "orderflow_records_dead_lettered_total", reason=reason) == 1


def test_handler_context_and_classification() -> None:
    seen: list[HandlerContext] = []

    def handler(order, ctx: HandlerContext) -> None:
        seen.append(ctx)
        raise TransientError("later")

    s = step(handler, first_hop=False)
    incoming = [
        (h.ATTEMPTS, b"2"),
        (h.ORIGINAL_TOPIC, b"orders.v1"),
        (h.ORIGINAL_PARTITION, b"0"),
        (h.ORIGINAL_OFFSET, b"5"),
        (h.FIRST_FAILURE_AT, b"%d" % (NOW - 5000)),
    ]
    result = s(record(order("o-2").to_json_bytes(), incoming))
    [ctx] = seen
    assert (ctx.attempt, ctx.max_attempts, ctx.idempotency_key) == (3, 5, "orders.v1:0:5")
    assert ctx.headers[h.ATTEMPTS] == b"2" and not ctx.is_last_attempt
    assert result.decision.route is Route.RETRY
    assert result.decision.due_at_ms == NOW + 9000
    assert result.output is not None and result.output.topic == "orders.retry"
    assert metric(s, "orderflow_records_retried_total", attempt="3") == 1
    assert metric(s, "orderflow_records_failed_total", category="transient") == 1


def _caused(exc: Exception, cause: Exception) -> Exception:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "route", "reason"),
    [
        (PermanentError("no"), Route.DLQ, "non_retryable"),
        (RuntimeError("bug"), Route.RETRY, None),
        (_caused(ValueError("wrapper"), PermanentError("declined")), Route.DLQ, "non_retryable"),
    ],
)
def test_handler_exceptions(exc: Exception, route: Route, reason: str | None) -> None:
    def handler(order, ctx) -> None:
        raise exc

    result = step(handler)(record(order("o-3").to_json_bytes()))
    assert result.decision.route is route
    assert (result.decision.reason.value if result.decision.reason else None) == reason


def test_a_bug_in_the_step_still_dead_letters_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr("processors.pipeline.route", broken)
    result = step()(record(b"raw", [("a", b"1")]))
    assert result.decision.route is Route.DLQ
    out = result.output
    assert out is not None and out.value == b"raw" and out.headers[0] == ("a", b"1")
    assert dict(out.headers)[h.ERROR_CLASS] == b"ZeroDivisionError"


def test_simulation_through_the_step() -> None:
    s = step(first_hop=False)
    value = order("o-4", Simulation(fail_attempts=2)).to_json_bytes()
    assert s(record(value, [(h.ATTEMPTS, b"1")])).decision.route is Route.RETRY
    assert s(record(value, [(h.ATTEMPTS, b"2")])).decision.route is Route.PROCESSED


def test_keyboard_interrupt_is_not_swallowed() -> None:
    def handler(order, ctx) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        step(handler)(record(order("o-5").to_json_bytes()))


def test_a_retry_record_carries_no_stack_trace_a_dead_letter_a_full_one() -> None:
    def handler(order, ctx) -> None:
        raise TransientError("later")

    retried = step(handler)(record(order("o-6").to_json_bytes()))
    assert retried.decision.route is Route.RETRY and retried.output is not None
    assert h.ERROR_STACKTRACE not in dict(retried.output.headers)
    last = step(handler, first_hop=False)(
        record(order("o-6").to_json_bytes(), [(h.ATTEMPTS, b"4")])
    )
    assert last.decision.route is Route.DLQ and last.output is not None
    trace = dict(last.output.headers)[h.ERROR_STACKTRACE].decode()
    assert trace.startswith("Traceback") and "TransientError: later" in trace


def test_a_first_attempt_ignores_the_retry_state_it_carries() -> None:
    garbage = [(h.ATTEMPTS, b"9"), (h.RETRY_DUE_AT, b"x"), (h.CE_ID, b"evt-7")]
    result = step()(record(order("o-7").to_json_bytes(), garbage))
    assert result.decision.route is Route.PROCESSED and result.output is not None
    assert dict(result.output.headers)[h.ATTEMPTS] == b"1"
    assert json.loads(result.output.value or b"")["event_id"] == "evt-7"


def test_failures_log_the_first_of_each_kind_then_a_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = [0.0]
    s = step()
    s.routed_log = RoutedLog(window_s=10, clock=lambda: clock[0])
    transient = order("o-8", Simulation(fail_attempts=1)).to_json_bytes()
    caplog.set_level(logging.INFO, logger="processors.pipeline")
    for _ in range(3):
        s(record(transient))
    s(record(b"{"))
    routed = [r for r in caplog.records if "event=routed " in r.getMessage()]
    assert [(r.levelno, "route=dlq" in r.getMessage()) for r in routed] == [
        (logging.INFO, False),
        (logging.WARNING, True),
    ]
    clock[0] = 10.0
    s(record(transient))  # a new window: the last one's summary, then this one in full
    summary = [r for r in caplog.records if "event=routed_summary" in r.getMessage()]
    assert len(summary) == 1 and summary[0].levelno == logging.WARNING
    assert "records=4" in summary[0].getMessage()
    assert "retry.transient=3" in summary[0].getMessage()
    assert "dlq.deserialization_failed=1" in summary[0].getMessage()
    assert len([r for r in caplog.records if "event=routed " in r.getMessage()]) == 3


def test_a_handler_result_orjson_refuses_is_still_an_outcome() -> None:
    result = step(lambda order, ctx: {"big": 2**70, "n": 1})(record(order("o-9").to_json_bytes()))
    assert result.decision.route is Route.PROCESSED and result.output is not None
    assert json.loads(result.output.value or b"")["result"] == {"big": 2**70, "n": 1}


@pytest.mark.parametrize(
    "value",
    [
        order("o-t", simulate=Simulation(error="transient", fail_attempts=1)).to_json_bytes(),
        order("o-p", simulate=Simulation(error="permanent")).to_json_bytes(),
        b"\xff\xfe not utf-8",
        b'{"order_id": "o-j", "items": [',
        b'{"order_id": "o-v"}',
    ],
    ids=["transient", "permanent", "non-utf8", "invalid-json", "invalid-order"],
)
def test_a_failed_record_leaves_no_reference_cycle_behind(value: bytes) -> None:
    # An exception kept with its traceback holds the step's frame: were the frame to hold the
    # exception too, every failed record would leave a cycle that only the collector frees
    # (≈ 40 objects each, and collections that walk them), on the path that fails most.
    s = step()
    s(record(value))  # the first of its kind is logged: not what is measured
    gc.collect()
    gc.disable()
    try:
        results = [s(record(value)) for _ in range(50)]
        unreachable = gc.collect()
    finally:
        gc.enable()
    assert {r.decision.route for r in results} <= {Route.RETRY, Route.DLQ}
    assert unreachable == 0
