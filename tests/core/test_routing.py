from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from processors.core import headers as h
from processors.core.classify import ErrorCategory
from processors.core.policy import RetryPolicy
from processors.core.routing import (
    DlqReason,
    Failure,
    Identity,
    RecordMeta,
    Route,
    attempt_number,
    effective_due,
    forwarded_headers,
    idempotency_key,
    route,
)

NOW = 1_800_000_000_000
POLICY = RetryPolicy(max_attempts=5, backoff_initial_ms=1000, backoff_multiplier=3, jitter=0.0)
IDENTITY = Identity("orderflow-retry", "0.1.0", "host-1", "orderflow-retry")
MAIN = RecordMeta("orders.v1", 2, 41, NOW - 5000)
RETRY = RecordMeta("orders.retry", 1, 7, NOW - 2000)

TRANSIENT = Failure(ErrorCategory.TRANSIENT, "shop.PaymentTimeout", "timed out", "Traceback…")
PERMANENT = Failure(ErrorCategory.PERMANENT, "shop.Declined", "declined", "Traceback…")
UNKNOWN = Failure(ErrorCategory.UNKNOWN, "KeyError", "'x'", "Traceback…")
INVALID = Failure(ErrorCategory.VALIDATION, "processors.errors.InvalidOrderError", "total: bad")
POISON = Failure(ErrorCategory.DESERIALIZATION, "UnicodeDecodeError", "bad byte")


def state(**values: bytes) -> h.Contract:
    names = {
        "attempts": h.ATTEMPTS,
        "due": h.RETRY_DUE_AT,
        "first": h.FIRST_FAILURE_AT,
        "ce_id": h.CE_ID,
    }
    return h.decode([(names[k], v) for k, v in values.items()])


@dataclass
class Case:
    name: str
    meta: RecordMeta
    state: h.Contract
    failure: Failure | None
    route: Route
    attempt: int
    reason: DlqReason | None = None
    due_in: int | None = None
    notes: tuple[str, ...] = ()
    policy: RetryPolicy = field(default=POLICY)


CASES = [
    Case("main success", MAIN, state(), None, Route.PROCESSED, 1),
    Case("main transient", MAIN, state(), TRANSIENT, Route.RETRY, 1, due_in=1000),
    Case("main unknown retried", MAIN, state(), UNKNOWN, Route.RETRY, 1, due_in=1000),
    Case(
        "main unknown not retried",
        MAIN,
        state(),
        UNKNOWN,
        Route.DLQ,
        1,
        DlqReason.NON_RETRYABLE,
        policy=RetryPolicy(retry_unknown=False),
    ),
    Case("main permanent", MAIN, state(), PERMANENT, Route.DLQ, 1, DlqReason.NON_RETRYABLE),
    Case("main validation", MAIN, state(), INVALID, Route.DLQ, 1, DlqReason.VALIDATION_FAILED),
    Case("main poison", MAIN, state(), POISON, Route.DLQ, 1, DlqReason.DESERIALIZATION_FAILED),
    Case(
        "main ignores x-attempts",
        MAIN,
        state(attempts=b"4"),
        TRANSIENT,
        Route.RETRY,
        1,
        due_in=1000,
    ),
    Case(
        "main single attempt policy",
        MAIN,
        state(),
        TRANSIENT,
        Route.DLQ,
        1,
        DlqReason.MAX_ATTEMPTS_EXHAUSTED,
        policy=RetryPolicy(max_attempts=1),
    ),
    Case("retry 2nd attempt ok", RETRY, state(attempts=b"1"), None, Route.PROCESSED, 2),
    Case(
        "retry 2nd attempt fails",
        RETRY,
        state(attempts=b"1", first=b"%d" % (NOW - 1000)),
        TRANSIENT,
        Route.RETRY,
        2,
        due_in=3000,
    ),
    Case(
        "retry 4th fails",
        RETRY,
        state(attempts=b"3", first=b"%d" % (NOW - 9000)),
        TRANSIENT,
        Route.RETRY,
        4,
        due_in=27000,
    ),
    Case(
        "retry last attempt",
        RETRY,
        state(attempts=b"4", first=b"%d" % (NOW - 40_000)),
        TRANSIENT,
        Route.DLQ,
        5,
        DlqReason.MAX_ATTEMPTS_EXHAUSTED,
    ),
    Case(
        "retry permanent",
        RETRY,
        state(attempts=b"2", first=b"%d" % (NOW - 4000)),
        PERMANENT,
        Route.DLQ,
        3,
        DlqReason.NON_RETRYABLE,
    ),
    Case(
        "garbage attempts",
        RETRY,
        state(attempts=b"lots"),
        TRANSIENT,
        Route.DLQ,
        5,
        DlqReason.MAX_ATTEMPTS_EXHAUSTED,
        notes=("attempts_invalid", "first_failure_invalid"),
    ),
    Case(
        "garbage attempts ok",
        RETRY,
        state(attempts=b"-3"),
        None,
        Route.PROCESSED,
        5,
        notes=("attempts_invalid",),
    ),
    Case(
        "missing attempts",
        RETRY,
        state(),
        TRANSIENT,
        Route.DLQ,
        5,
        DlqReason.MAX_ATTEMPTS_EXHAUSTED,
        notes=("attempts_missing", "first_failure_invalid"),
    ),
    Case(
        "attempts beyond max",
        RETRY,
        state(attempts=b"99", first=b"1"),
        TRANSIENT,
        Route.DLQ,
        100,
        DlqReason.MAX_ATTEMPTS_EXHAUSTED,
        notes=("attempts_beyond_max",),
    ),
    Case(
        "attempts beyond max ok",
        RETRY,
        state(attempts=b"99"),
        None,
        Route.PROCESSED,
        100,
        notes=("attempts_beyond_max",),
    ),
    Case(
        "deadline exceeded",
        RETRY,
        state(attempts=b"2", first=b"%d" % (NOW - 55_000)),
        TRANSIENT,
        Route.DLQ,
        3,
        DlqReason.RETRY_DEADLINE_EXCEEDED,
        policy=RetryPolicy(jitter=0.0, deadline_ms=60_000),
    ),
    Case(
        "deadline not yet",
        RETRY,
        state(attempts=b"2", first=b"%d" % (NOW - 50_000)),
        TRANSIENT,
        Route.RETRY,
        3,
        due_in=9000,
        policy=RetryPolicy(jitter=0.0, deadline_ms=60_000),
    ),
    Case(
        "deadline from first failure in future uses record timestamp",
        RETRY,
        state(attempts=b"1", first=b"%d" % (NOW + 10**9)),
        TRANSIENT,
        Route.RETRY,
        2,
        due_in=3000,
        notes=("first_failure_invalid",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_route_table(case: Case) -> None:
    meta = case.meta
    decision = route(
        meta,
        case.state,
        case.failure,
        case.policy,
        IDENTITY,
        NOW,
        0.5,
        first_hop=meta is MAIN,
    )
    assert decision.route is case.route
    assert decision.attempt == case.attempt
    assert decision.reason == case.reason
    assert decision.notes == case.notes
    assert decision.due_at_ms == (None if case.due_in is None else NOW + case.due_in)
    if case.route is Route.PROCESSED:
        assert decision.updates == {} and decision.originals == {}
        return
    updates = decision.updates
    assert updates[h.ATTEMPTS] == str(case.attempt).encode()
    assert updates[h.MAX_ATTEMPTS] == str(case.policy.max_attempts).encode()
    assert updates[h.LAST_FAILURE_AT] == str(NOW).encode()
    assert updates[h.ERROR_CATEGORY] == case.failure.category.value.encode()
    assert updates[h.ERROR_CLASS] == case.failure.error_class.encode()
    assert updates[h.PROCESSOR] == b"orderflow-retry/0.1.0/host-1"
    assert updates[h.CONSUMER_GROUP] == b"orderflow-retry"
    if case.route is Route.RETRY:
        assert updates[h.RETRY_DUE_AT] == str(NOW + case.due_in).encode()
        assert updates[h.DLQ_REASON] is None and updates[h.DLQ_AT] is None
        assert updates[h.ERROR_STACKTRACE] is None
    else:
        assert updates[h.RETRY_DUE_AT] is None
        assert updates[h.DLQ_REASON] == case.reason.value.encode()
        assert updates[h.DLQ_AT] == str(NOW).encode()
        assert updates[h.ERROR_STACKTRACE]
    assert decision.originals == {
        h.ORIGINAL_TOPIC: meta.topic.encode(),
        h.ORIGINAL_PARTITION: str(meta.partition).encode(),
        h.ORIGINAL_OFFSET: str(meta.offset).encode(),
        h.ORIGINAL_TIMESTAMP: str(meta.timestamp_ms).encode(),
    }


def test_first_failure_is_now_on_main_and_carried_on_retry() -> None:
    first = route(MAIN, state(first=b"5"), TRANSIENT, POLICY, IDENTITY, NOW, 0.5, first_hop=True)
    assert first.updates[h.FIRST_FAILURE_AT] == str(NOW).encode()
    later = route(
        RETRY,
        state(attempts=b"1", first=b"%d" % (NOW - 1234)),
        TRANSIENT,
        POLICY,
        IDENTITY,
        NOW,
        0.5,
        first_hop=False,
    )
    assert later.updates[h.FIRST_FAILURE_AT] == str(NOW - 1234).encode()
    garbage = route(
        RETRY,
        state(attempts=b"1", first=b"x"),
        TRANSIENT,
        POLICY,
        IDENTITY,
        NOW,
        0.5,
        first_hop=False,
    )
    assert garbage.updates[h.FIRST_FAILURE_AT] == str(RETRY.timestamp_ms).encode()


def test_long_texts_are_cut_to_the_limits() -> None:
    failure = Failure(ErrorCategory.PERMANENT, "E", "m" * 5000, "line\n" * 5000)
    decision = route(MAIN, state(), failure, POLICY, IDENTITY, NOW, 0.5, first_hop=True)
    assert len(decision.updates[h.ERROR_MESSAGE]) == h.ERROR_MESSAGE_LIMIT
    stack = decision.updates[h.ERROR_STACKTRACE]
    assert len(stack) <= h.STACKTRACE_LIMIT and stack.endswith(b"line\n")


def test_forwarded_headers_replace_and_set_once() -> None:
    incoming = [
        ("ce_id", b"evt-1"),
        (h.ATTEMPTS, b"1"),
        ("traceparent", b"00-abc"),
        (h.ERROR_MESSAGE, b"old"),
        (h.ATTEMPTS, b"1"),  # a duplicate from a sloppy writer: both go
        (h.ORIGINAL_TOPIC, b"orders.v1"),
        (h.ORIGINAL_OFFSET, b"41"),
        ("nullable", None),
        (h.RETRY_DUE_AT, b"123"),
    ]
    decision = route(
        RETRY, h.decode(incoming), PERMANENT, POLICY, IDENTITY, NOW, 0.5, first_hop=False
    )
    out = forwarded_headers(incoming, decision)
    names = [name for name, _ in out]
    # untouched headers keep their order and exact value, including a null one
    assert [(n, v) for n, v in out if not n.startswith("x-")] == [
        ("ce_id", b"evt-1"),
        ("traceparent", b"00-abc"),
        ("nullable", None),
    ]
    assert names.index(h.ORIGINAL_TOPIC) == 2  # kept in place, value unchanged
    for name in (*h.HOP_HEADERS, *h.ORIGINAL_HEADERS):
        assert names.count(name) <= 1, name
    values = dict(out)
    assert values[h.ATTEMPTS] == b"2"
    assert values[h.ERROR_MESSAGE] == b"declined"
    assert h.RETRY_DUE_AT not in values  # removed on the way to the DLQ
    assert values[h.ORIGINAL_TOPIC] == b"orders.v1" and values[h.ORIGINAL_OFFSET] == b"41"
    assert values[h.ORIGINAL_PARTITION] == b"1"  # absent before: set from this record
    # a second hop does not grow the list
    again = forwarded_headers(out, decision)
    assert len(again) == len(out)


@pytest.mark.parametrize(
    ("due", "expected", "note"),
    [
        (None, NOW, "due_missing"),
        (b"soon", NOW, "due_invalid"),
        (b"", NOW, "due_invalid"),
        (b"%d" % (NOW - 10), NOW - 10, None),
        (b"%d" % (NOW + 5000), NOW + 5000, None),
        (b"%d" % (NOW + 300_000), NOW + 300_000, None),
        (b"%d" % (NOW + 300_001), NOW + 300_000, "due_clamped"),
        (b"%d" % (NOW + 10**12), NOW + 300_000, "due_clamped"),
    ],
)
def test_effective_due(due: bytes | None, expected: int, note: str | None) -> None:
    st = state() if due is None else state(due=due)
    assert effective_due(st, POLICY, NOW) == (expected, note)


def test_idempotency_key_is_stable_across_hops() -> None:
    assert idempotency_key(state(ce_id=b"evt-9"), RETRY) == "evt-9"
    carried = h.decode(
        [(h.ORIGINAL_TOPIC, b"orders.v1"), (h.ORIGINAL_PARTITION, b"2"), (h.ORIGINAL_OFFSET, b"41")]
    )
    assert idempotency_key(carried, RETRY) == "orders.v1:2:41"
    assert idempotency_key(state(), MAIN) == "orders.v1:2:41"
    assert idempotency_key(state(ce_id=b"  "), RETRY) == "orders.retry:1:7"


def test_attempt_number_on_main_is_always_one() -> None:
    assert attempt_number(state(attempts=b"garbage"), POLICY, True) == (1, ())
