"""Pure form logic for the Produce and DLQ pages: form input → a validated ``Order``, or messages
keyed by field so the page can show each one next to its widget (never a traceback).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import ValidationError

from processors.core.order import Order, describe_validation_error
from processors.orders_gen import GeneratedItem, RawPayload, generate_orders

Scenario = Literal["succeed", "fail_then_succeed", "permanent", "poison"]

SCENARIOS: dict[Scenario, str] = {
    "succeed": "succeed",
    "fail_then_succeed": "fail N times, then succeed",
    "permanent": "permanent failure",
    "poison": "poison (unparseable bytes)",
}

# Form field names, also the keys of ``FormErrors.fields``.
FIELDS = ("order_id", "customer_id", "currency", "items", "fail_attempts", "payload")


class FormErrors(Exception):
    """Validation failed; ``fields`` maps a field name to a readable message."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {msg}" for name, msg in fields.items()))
        self.fields = dict(fields)


@dataclass(frozen=True)
class OrderForm:
    """Raw input of the single-order form. ``items`` are rows of the items editor."""

    order_id: str
    customer_id: str
    currency: str
    items: Sequence[Mapping[str, Any]]
    scenario: Scenario
    fail_attempts: int = 2


def new_order_id() -> str:
    return f"ord-{uuid.uuid4().hex[:12]}"


def _field_of(location: tuple[int | str, ...]) -> str:
    head = str(location[0]) if location else "items"  # whole-order checks are about amounts
    if head in ("items", "total"):
        return "items"
    if head == "simulate":
        return "fail_attempts"
    return head if head in FIELDS else "items"


def describe(exc: ValidationError) -> dict[str, str]:
    """Pydantic errors grouped by form field, e.g. ``{"items": "row 2 quantity: …"}``."""
    messages: dict[str, list[str]] = {}
    for error in exc.errors():
        location = tuple(error["loc"])
        field = _field_of(location)
        text = error["msg"].removeprefix("Value error, ")
        if field == "items" and len(location) >= 3 and isinstance(location[1], int):
            text = f"row {location[1] + 1} {location[2]}: {text}"
        messages.setdefault(field, []).append(text)
    return {field: "; ".join(texts) for field, texts in messages.items()}


def _items(rows: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    items: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, row in enumerate(rows, start=1):
        sku = str(row.get("sku") or "").strip()
        quantity, price = row.get("quantity"), row.get("unit_price")
        if not sku and quantity in (None, "") and price in (None, ""):
            continue  # an empty editor row
        try:
            amount = Decimal(str(price))
            count = int(quantity)  # type: ignore[arg-type]
        except (InvalidOperation, TypeError, ValueError):
            problems.append(f"row {number}: quantity and unit price must be numbers")
            continue
        items.append({"sku": sku, "quantity": count, "unit_price": amount})
    if not items and not problems:
        problems.append("add at least one item")
    return items, problems


def simulation(scenario: Scenario, fail_attempts: int) -> dict[str, Any] | None:
    """The order's ``simulate`` object for a scenario (``None`` for succeed and poison)."""
    if scenario == "fail_then_succeed":
        return {"error": "transient", "fail_attempts": fail_attempts}
    if scenario == "permanent":
        return {"error": "permanent"}
    return None


def build_order(form: OrderForm, created_at: datetime) -> Order:
    """Validate the form into an ``Order`` (total computed from the items).

    Raises ``FormErrors`` with one message per failing field; never anything else.
    """
    errors: dict[str, str] = {}
    items, problems = _items(form.items)
    if problems:
        errors["items"] = "; ".join(problems)
    if form.scenario == "fail_then_succeed" and not 1 <= form.fail_attempts <= 100:
        errors["fail_attempts"] = "must be between 1 and 100"
    data: dict[str, Any] = {
        "order_id": form.order_id.strip() or new_order_id(),
        "customer_id": form.customer_id.strip(),
        "currency": form.currency,
        "items": items,
        "total": sum((item["unit_price"] * item["quantity"] for item in items), Decimal(0)),
        "created_at": created_at,
    }
    simulate = simulation(form.scenario, form.fail_attempts)
    if simulate is not None:
        data["simulate"] = simulate
    try:
        order = Order.model_validate(data)
    except ValidationError as exc:
        for name, message in describe(exc).items():
            errors.setdefault(name, message)
        raise FormErrors(errors) from None
    if errors:
        raise FormErrors(errors)
    return order


def parse_edited_payload(text: str) -> Order:
    """An edited dead-letter payload (JSON text) validated as an ``Order``.

    Raises ``FormErrors`` with a ``payload`` message for bad JSON or a schema violation.
    """
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise FormErrors({"payload": f"not valid JSON: {exc}"}) from None
    if not isinstance(data, dict):
        raise FormErrors({"payload": "must be a JSON object"})
    try:
        return Order.model_validate(data)
    except ValidationError as exc:
        raise FormErrors({"payload": describe_validation_error(exc)}) from None


def without_simulation(payload: str) -> str:
    """The payload with its ``simulate`` object removed, pretty-printed; unchanged if not JSON.

    Offered as the starting point of an edit: the usual fix for a simulated failure.
    """
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return payload
    if isinstance(data, dict):
        data.pop("simulate", None)
    return json.dumps(data, indent=2, ensure_ascii=False)


def scenario_mix(weights: Mapping[str, int]) -> dict[str, int]:
    """Keep positive weights only; raises ``FormErrors`` if none is left."""
    mix = {name: int(weight) for name, weight in weights.items() if int(weight) > 0}
    if not mix:
        raise FormErrors({"mix": "give at least one scenario a weight above 0"})
    return mix


def split_count(count: int, mix: Mapping[str, int]) -> dict[str, int]:
    """Divide ``count`` orders across scenarios by weight (largest remainder; sums to count)."""
    total = sum(mix.values())
    shares = {name: count * weight / total for name, weight in mix.items()}
    result = {name: int(share) for name, share in shares.items()}
    leftover = count - sum(result.values())
    by_remainder = sorted(mix, key=lambda name: shares[name] - result[name], reverse=True)
    for name in by_remainder[:leftover]:
        result[name] += 1
    return {name: n for name, n in result.items() if n > 0}


def poison_payload(order_id: str) -> RawPayload:
    """A record no processor can parse (truncated JSON), keyed by ``order_id`` for tracing."""
    order_id = order_id.strip() or new_order_id()
    value = f'{{"order_id": "{order_id}", "items": [{{"sku": '.encode()
    return RawPayload(key=order_id.encode(), value=value, kind="invalid_json")


def mixed_items(counts: Mapping[str, int], seed: int | None = None) -> list[GeneratedItem]:
    """Generated orders, ``counts[scenario]`` of each, shuffled so the scenarios interleave."""
    items: list[GeneratedItem] = []
    for offset, (scenario, count) in enumerate(sorted(counts.items())):
        sub_seed = None if seed is None else seed + offset
        items.extend(generate_orders(count, scenario, seed=sub_seed))  # type: ignore[arg-type]
    random.Random(seed).shuffle(items)
    return items
