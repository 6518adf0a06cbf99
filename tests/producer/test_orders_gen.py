"""Generated orders: valid, reproducible, each scenario what it says."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from processors.core.order import Order, parse_order
from processors.errors import InvalidOrderError
from processors.orders_gen import RawPayload, generate_orders

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def test_same_seed_same_orders() -> None:
    first = list(generate_orders(50, "mixed", seed=3, now=NOW))
    assert first == list(generate_orders(50, "mixed", seed=3, now=NOW))
    assert first != list(generate_orders(50, "mixed", seed=4, now=NOW))


def test_success_orders_are_valid_and_unique() -> None:
    orders = list(generate_orders(500, "success", seed=1, now=NOW))
    assert all(isinstance(o, Order) and o.simulate is None for o in orders)
    assert len({o.order_id for o in orders}) == 500
    for order in orders:  # survives the wire
        assert parse_order(order.to_json_bytes()) == order
    assert {o.currency for o in orders} >= {"EUR", "USD", "JPY"}


def test_failure_scenarios() -> None:
    transient = list(generate_orders(100, "transient", seed=1, now=NOW))
    assert all(
        o.simulate.error == "transient" and o.simulate.fail_attempts in (1, 2) for o in transient
    )
    permanent = list(generate_orders(10, "permanent", seed=1, now=NOW))
    assert all(o.simulate.error == "permanent" for o in permanent)


def test_poison_covers_every_kind_and_never_parses() -> None:
    poison = list(generate_orders(8, "poison", seed=1, now=NOW))
    assert all(isinstance(p, RawPayload) for p in poison)
    assert Counter(p.kind for p in poison) == dict.fromkeys(
        ("invalid_json", "non_utf8", "empty", "schema_invalid"), 2
    )
    for payload in poison:
        with pytest.raises((InvalidOrderError, ValueError)):
            parse_order(payload.value)
    schema_invalid = next(p for p in poison if p.kind == "schema_invalid")
    assert json.loads(schema_invalid.value)["order_id"] == schema_invalid.key.decode()
    assert next(p for p in poison if p.kind == "empty").value == b""


def test_mixed_is_mostly_success() -> None:
    kinds = Counter(
        "poison" if isinstance(i, RawPayload) else (i.simulate.error if i.simulate else "ok")
        for i in generate_orders(2000, "mixed", seed=5, now=NOW)
    )
    assert kinds["ok"] > 1400 and kinds["transient"] > 100
    assert kinds["permanent"] > 20 and kinds["poison"] > 20


def test_unknown_scenario() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        list(generate_orders(1, "chaos"))  # type: ignore[arg-type]
