"""The order event (schema version 1). JSON on the wire; the Kafka key is ``order_id``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from processors.errors import InvalidOrderError

SCHEMA_VERSION = 1
EVENT_TYPE = "dev.orderflow.order.created.v1"

# ISO 4217 codes we accept. A closed list catches typos such as "EUR " or "usd" early.
CURRENCIES = frozenset(
    {"AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "INR"}
    | {"JPY", "KRW", "MXN", "NOK", "NZD", "PLN", "SEK", "SGD", "USD", "ZAR"}
)

Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]


class Simulation(BaseModel):
    """Deterministic failure injection, honoured only by the built-in handler.

    ``{"fail_attempts": 2, "error": "transient"}`` fails the first two attempts, then succeeds;
    ``{"error": "permanent"}`` fails every attempt with a non-retryable error.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    error: Literal["transient", "permanent"] = "transient"
    fail_attempts: int | None = Field(None, ge=0, le=100)


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, le=10_000)
    unit_price: Money


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    order_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    customer_id: str = Field(min_length=1, max_length=64)
    items: list[Item] = Field(min_length=1, max_length=100)
    currency: str
    total: Money
    created_at: datetime
    simulate: Simulation | None = None

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCIES:
            raise ValueError(f"unknown ISO 4217 currency {value!r}")
        return value

    @field_validator("created_at")
    @classmethod
    def _timezone_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created_at needs a timezone, e.g. 2026-01-31T12:00:00Z")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _total_matches_items(self) -> Order:
        expected = sum((item.unit_price * item.quantity for item in self.items), Decimal(0))
        if self.total != expected:
            raise ValueError(f"total {self.total} does not equal the sum of the items {expected}")
        return self

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode("utf-8")


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming every failing field, e.g. ``items.0.quantity: must be > 0``."""
    parts = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "order"
        parts.append(f"{location}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def parse_order(data: bytes | str | dict) -> Order:
    """Validate an order from JSON or a dict; raise ``InvalidOrderError`` naming each field."""
    try:
        if isinstance(data, dict):
            return Order.model_validate(data)
        return Order.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidOrderError(describe_validation_error(exc)) from None
