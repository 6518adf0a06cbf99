"""Realistic generated orders for demos and load, per scenario, reproducible with a seed.

Scenarios (what the built-in handler will do with them):

- ``success``: plain orders, processed on the first attempt;
- ``transient``: fail 1 or 2 attempts with a transient error, then succeed (via orders.retry);
- ``permanent``: fail for good on the first attempt (straight to the DLQ, ``non_retryable``);
- ``poison``: raw payloads no processor can parse — invalid JSON, non-UTF-8 bytes, an empty
  value, JSON that breaks the schema — which end in the DLQ with their original bytes;
- ``mixed``: mostly successes with a share of each of the above, plus a few orders that stay
  transient until their attempts run out (``max_attempts_exhausted``).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal, get_args

from processors.core.order import MINOR_UNITS, Item, Order, Simulation

Scenario = Literal["mixed", "success", "transient", "permanent", "poison"]
SCENARIOS: tuple[str, ...] = get_args(Scenario)
PoisonKind = Literal["invalid_json", "non_utf8", "empty", "schema_invalid"]
POISON_KINDS: tuple[str, ...] = get_args(PoisonKind)


@dataclass(frozen=True)
class RawPayload:
    """A record that is deliberately not a valid order: sent as is, with the usual headers."""

    key: bytes | None
    value: bytes
    kind: PoisonKind


GeneratedItem = Order | RawPayload

# (sku, unit price in EUR)
_CATALOG: tuple[tuple[str, Decimal], ...] = tuple(
    (sku, Decimal(price))
    for sku, price in (
        ("BOOK-PYTHON-101", "39.90"),
        ("BOOK-KAFKA-DEF", "54.00"),
        ("MUG-ORDERFLOW", "12.50"),
        ("TSHIRT-M-BLACK", "19.99"),
        ("TSHIRT-L-WHITE", "19.99"),
        ("HEADPHONES-BT", "89.00"),
        ("USB-C-CABLE-2M", "9.99"),
        ("KEYBOARD-MECH", "129.00"),
        ("STICKER-PACK", "3.50"),
        ("COFFEE-BEANS-1KG", "24.90"),
        ("NOTEBOOK-A5", "6.75"),
        ("BACKPACK-20L", "64.00"),
    )
)
# Currency, weight, approximate rate from EUR.
_CURRENCIES: tuple[tuple[str, int, Decimal], ...] = (
    ("EUR", 40, Decimal("1")),
    ("USD", 30, Decimal("1.08")),
    ("GBP", 15, Decimal("0.85")),
    ("JPY", 5, Decimal("160")),
    ("CHF", 5, Decimal("0.95")),
    ("SEK", 5, Decimal("11.4")),
)
# Shares of the mixed scenario.
_MIX: tuple[tuple[str, int], ...] = (
    ("success", 78),
    ("transient", 12),
    ("exhausted", 2),
    ("permanent", 4),
    ("poison", 4),
)


class _Generator:
    def __init__(self, seed: int | None, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.poison_count = 0

    def order_id(self) -> str:
        return f"ord-{uuid.UUID(int=self.rng.getrandbits(128)).hex[:16]}"

    def order(self, simulate: Simulation | None = None) -> Order:
        rng = self.rng
        currency, _, rate = rng.choices(_CURRENCIES, weights=[w for _, w, _ in _CURRENCIES])[0]
        quantum = Decimal(1).scaleb(-MINOR_UNITS[currency])
        items = []
        for sku, eur in rng.sample(_CATALOG, k=rng.choice((1, 1, 1, 2, 2, 3, 4))):
            price = (eur * rate).quantize(quantum)
            quantity = rng.choice((1, 1, 1, 1, 2, 2, 3, 5))
            items.append(Item(sku=sku, quantity=quantity, unit_price=price))
        total = sum((i.unit_price * i.quantity for i in items), Decimal(0)).quantize(quantum)
        return Order(
            order_id=self.order_id(),
            customer_id=f"cus-{rng.randrange(1, 5000):05d}",
            items=items,
            currency=currency,
            total=total,
            created_at=self.now - timedelta(milliseconds=rng.randrange(0, 2000)),
            simulate=simulate,
        )

    def poison(self) -> RawPayload:
        kind = POISON_KINDS[self.poison_count % len(POISON_KINDS)]
        self.poison_count += 1
        order_id = self.order_id()
        key = order_id.encode()
        if kind == "invalid_json":
            value = f'{{"order_id": "{order_id}", "items": [{{"sku": '.encode()
        elif kind == "non_utf8":
            value = b"\xff\xfe\x00order " + key + b" \xc3\x28"
        elif kind == "empty":
            value = b""
        else:  # schema_invalid: well-formed JSON, wrong total and a zero quantity
            good = json.loads(self.order().to_json_bytes())
            good["order_id"] = order_id
            good["items"][0]["quantity"] = 0
            good["total"] = "-1"
            value = json.dumps(good).encode()
        return RawPayload(key=key, value=value, kind=kind)  # type: ignore[arg-type]

    def item(self, scenario: str) -> GeneratedItem:
        if scenario == "mixed":
            names, weights = zip(*_MIX, strict=True)
            scenario = self.rng.choices(names, weights=weights)[0]
        if scenario == "success":
            return self.order()
        if scenario == "transient":
            return self.order(Simulation(error="transient", fail_attempts=self.rng.choice((1, 2))))
        if scenario == "exhausted":
            return self.order(Simulation(error="transient"))
        if scenario == "permanent":
            return self.order(Simulation(error="permanent"))
        return self.poison()


def generate_orders(
    count: int, scenario: Scenario = "mixed", seed: int | None = None, now: datetime | None = None
) -> Iterator[GeneratedItem]:
    """``count`` generated items of ``scenario``; the same ``seed`` (and ``now``) gives the same
    items. ``now`` (default: the current time) is the orders' creation time, give or take 2 s."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    generator = _Generator(seed, now or datetime.now(UTC))
    for _ in range(count):
        yield generator.item(scenario)
