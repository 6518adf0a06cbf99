from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from dashboard import forms
from dashboard.forms import FormErrors, OrderForm

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
ROW = {"sku": "SKU-1", "quantity": 2, "unit_price": 9.99}


def form(**changes: object) -> OrderForm:
    values: dict[str, object] = {
        "order_id": "ord-1",
        "customer_id": "cust-1",
        "currency": "EUR",
        "items": [ROW],
        "scenario": "succeed",
    }
    return OrderForm(**{**values, **changes})  # type: ignore[arg-type]


def errors_of(bad: OrderForm) -> dict[str, str]:
    with pytest.raises(FormErrors) as info:
        forms.build_order(bad, NOW)
    return info.value.fields


def test_valid_form_computes_total_and_no_simulation() -> None:
    second = {"sku": "B", "quantity": 1, "unit_price": "0.5"}
    order = forms.build_order(form(items=[ROW, second]), NOW)
    assert order.total == Decimal("20.48")
    assert order.simulate is None
    assert order.created_at == NOW


def test_blank_order_id_is_generated() -> None:
    assert forms.build_order(form(order_id="  "), NOW).order_id.startswith("ord-")


@pytest.mark.parametrize(
    ("scenario", "simulate"),
    [
        ("fail_then_succeed", {"error": "transient", "fail_attempts": 3}),
        ("permanent", {"error": "permanent", "fail_attempts": None}),
    ],
)
def test_scenarios_set_simulation(scenario: str, simulate: dict) -> None:
    order = forms.build_order(form(scenario=scenario, fail_attempts=3), NOW)
    assert order.simulate is not None
    assert order.simulate.model_dump() == simulate


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"customer_id": ""}, "customer_id", "at least 1 character"),
        ({"order_id": "has space"}, "order_id", "pattern"),
        ({"currency": "XXX"}, "currency", "unknown ISO 4217"),
        ({"items": []}, "items", "add at least one item"),
        ({"items": [{"sku": "", "quantity": None, "unit_price": None}]}, "items", "at least one"),
        ({"items": [{"sku": "A", "quantity": "two", "unit_price": 1}]}, "items", "row 1"),
        ({"items": [{"sku": "A", "quantity": 0, "unit_price": 1}]}, "items", "row 1 quantity"),
        ({"items": [ROW, {"sku": "A", "quantity": 1, "unit_price": -1}]}, "items", "row 2"),
        ({"scenario": "fail_then_succeed", "fail_attempts": 0}, "fail_attempts", "between 1"),
    ],
)
def test_bad_fields_get_messages(changes: dict, field: str, fragment: str) -> None:
    errors = errors_of(form(**changes))
    assert fragment in errors[field], errors


def test_currency_decimal_places_reported_on_items() -> None:
    errors = errors_of(form(currency="JPY"))
    assert "decimal places" in errors["items"]


def test_several_bad_fields_reported_together() -> None:
    errors = errors_of(form(customer_id="", currency="usd", items=[]))
    assert set(errors) == {"customer_id", "currency", "items"}


def test_edited_payload_validated_as_order() -> None:
    order = forms.build_order(form(scenario="permanent"), NOW)
    payload = forms.without_simulation(order.to_json_bytes().decode())
    assert "simulate" not in json.loads(payload)
    assert forms.parse_edited_payload(payload).simulate is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{oops", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"order_id": "x"}', "customer_id"),
    ],
)
def test_bad_edited_payload(text: str, fragment: str) -> None:
    with pytest.raises(FormErrors) as info:
        forms.parse_edited_payload(text)
    assert fragment in info.value.fields["payload"]


def test_without_simulation_leaves_non_json_alone() -> None:
    assert forms.without_simulation("\\xff garbage") == "\\xff garbage"


def test_scenario_mix_and_split() -> None:
    mix = forms.scenario_mix({"success": 6, "transient": 3, "permanent": 1, "poison": 0})
    assert mix == {"success": 6, "transient": 3, "permanent": 1}
    assert forms.split_count(10, mix) == {"success": 6, "transient": 3, "permanent": 1}
    split = forms.split_count(7, {"a": 1, "b": 1, "c": 1})
    assert sum(split.values()) == 7 and sorted(split.values()) == [2, 2, 3]
    assert forms.split_count(1, {"a": 1, "b": 1}) in ({"a": 1}, {"b": 1})
    with pytest.raises(FormErrors):
        forms.scenario_mix({"success": 0})
