from __future__ import annotations

import random

import pytest

from processors import PermanentError, TransientError
from processors.core.order import Simulation
from processors.errors import SettingsError
from processors.handler import (
    HandlerContext,
    PaymentDeclined,
    PaymentTimeout,
    RandomFailures,
    build_handler,
    handle_order,
    load_handler,
)
from processors.settings import load_settings
from tests.processors.harness import order


def ctx(attempt: int) -> HandlerContext:
    return HandlerContext(attempt=attempt, max_attempts=5, idempotency_key="evt")


def outcome(simulate: Simulation | None, attempt: int) -> str:
    try:
        handle_order(order("o", simulate), ctx(attempt))
    except TransientError:
        return "transient"
    except PermanentError:
        return "permanent"
    return "ok"


@pytest.mark.parametrize(
    ("simulate", "expected"),
    [
        (None, ["ok", "ok", "ok"]),
        (Simulation(fail_attempts=2), ["transient", "transient", "ok"]),
        (Simulation(fail_attempts=0), ["ok", "ok", "ok"]),
        (Simulation(error="transient"), ["transient", "transient", "transient"]),
        (Simulation(error="permanent"), ["permanent", "permanent", "permanent"]),
        (Simulation(error="permanent", fail_attempts=1), ["permanent", "ok", "ok"]),
    ],
)
def test_simulation(simulate: Simulation | None, expected: list[str]) -> None:
    assert [outcome(simulate, attempt) for attempt in (1, 2, 3)] == expected


def test_simulated_errors_are_the_exported_types() -> None:
    assert issubclass(PaymentTimeout, TransientError)
    assert issubclass(PaymentDeclined, PermanentError)


def test_load_handler() -> None:
    assert load_handler("processors.handler:handle_order") is handle_order
    assert load_handler("random:Random.random") is random.Random.random


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("processors.handler", "expected"),
        ("no_such_module_xyz:fn", "cannot import"),
        ("processors.handler:nope", "has no"),
        ("processors.handler:__doc__", "not callable"),
    ],
)
def test_load_handler_errors(spec: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_handler(spec)


def test_random_failures_only_wrap_the_builtin_handler() -> None:
    assert build_handler(load_settings()) is handle_order
    wrapped = build_handler(load_settings(random_failure_rate=0.5))
    assert isinstance(wrapped, RandomFailures)
    custom = build_handler(load_settings(random_failure_rate=0.5, handler="random:random"))
    assert custom is random.random


def test_random_failure_rate() -> None:
    handler = RandomFailures(handle_order, 0.3, random.Random(1))
    failures = 0
    for _ in range(2000):
        try:
            handler(order("o"), ctx(1))
        except PaymentTimeout:
            failures += 1
    assert 500 < failures < 700
