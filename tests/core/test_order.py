"""The order schema: versioned, ISO 4217 with minor units, total = sum of items, simulate."""

from __future__ import annotations

import json

import pytest

from processors.core.order import CURRENCIES, MINOR_UNITS, Order, parse_order
from processors.errors import InvalidOrderError

BASE = {
    "order_id": "ord-1",
    "customer_id": "cus-1",
    "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "1.25"}],
    "currency": "EUR",
    "total": "2.50",
    "created_at": "2026-01-31T12:00:00Z",
}


def test_valid_order_round_trips_through_json() -> None:
    order = parse_order(json.dumps(BASE))
    assert order.schema_version == 1
    assert parse_order(order.to_json_bytes()) == order
    assert json.loads(order.to_json_bytes())["total"] == "2.50"  # money stays exact on the wire


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"currency": "eur"}, "currency: unknown ISO 4217"),
        ({"currency": "XAU"}, "currency: unknown ISO 4217"),
        ({"total": "2.49"}, "does not equal the sum of the items 2.50"),
        ({"items": [{"sku": "S", "quantity": 0, "unit_price": "1"}]}, "items.0.quantity"),
        ({"items": [{"sku": "S", "quantity": 1, "unit_price": "-1"}]}, "items.0.unit_price"),
        ({"items": []}, "items: List should have at least 1 item"),
        (
            {"currency": "JPY"},
            "total 2.50, items.0.unit_price 1.25: more than 0 decimal places for JPY",
        ),
        ({"created_at": "2026-01-31T12:00:00"}, "created_at: created_at needs a timezone"),
        ({"schema_version": 2}, "schema_version"),
        ({"extra": 1}, "extra: Extra inputs are not permitted"),
        ({"simulate": {"error": "flaky"}}, "simulate.error"),
        ({"order_id": "has space"}, "order_id"),
    ],
)
def test_invalid_orders_name_the_field(change: dict, fragment: str) -> None:
    with pytest.raises(InvalidOrderError) as raised:
        parse_order({**BASE, **change})
    assert fragment in str(raised.value)
    assert raised.value.exit_code == 2


def test_missing_fields_are_all_listed() -> None:
    with pytest.raises(InvalidOrderError) as raised:
        parse_order(b'{"order_id": "x"}')
    for name in ("customer_id", "items", "currency", "total", "created_at"):
        assert f"{name}: Field required" in str(raised.value)


def test_minor_units() -> None:
    assert {"EUR", "USD", "JPY", "KWD", "CLF"} <= CURRENCIES
    assert (MINOR_UNITS["JPY"], MINOR_UNITS["EUR"], MINOR_UNITS["KWD"]) == (0, 2, 3)
    kwd = {**BASE, "currency": "KWD", "items": [{"sku": "S", "quantity": 1, "unit_price": "1.125"}]}
    assert (
        parse_order({**kwd, "total": "1.125"}).total
        == parse_order({**kwd, "total": "1.1250"}).total
    )
    jpy = {**BASE, "currency": "JPY", "items": [{"sku": "S", "quantity": 3, "unit_price": "500"}]}
    assert parse_order({**jpy, "total": "1500"}).currency == "JPY"


def test_simulation_and_timezone_normalised() -> None:
    order = Order.model_validate(
        {**BASE, "created_at": "2026-01-31T13:00:00+01:00", "simulate": {"fail_attempts": 2}}
    )
    assert order.created_at.isoformat() == "2026-01-31T12:00:00+00:00"
    assert order.simulate is not None and order.simulate.error == "transient"
