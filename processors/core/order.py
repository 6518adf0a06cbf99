"""The order event (schema version 1). JSON on the wire; the Kafka key is ``order_id``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from processors.errors import InvalidOrderError

SCHEMA_VERSION = 1
EVENT_TYPE = "dev.orderflow.order.created.v1"


def _codes(text: str) -> list[str]:
    return text.split()


# Active ISO 4217 currency codes (2025) and their minor units: the number of decimal places an
# amount in that currency may have. Funds, precious metals and test codes are not accepted.
_MINOR_UNITS_EXCEPTIONS = {
    **dict.fromkeys(
        _codes("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"), 0
    ),
    **dict.fromkeys(_codes("BHD IQD JOD KWD LYD OMR TND"), 3),
    **dict.fromkeys(_codes("CLF UYW"), 4),
}
_TWO_DECIMALS = _codes("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL
MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK
PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS
TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG
""")
MINOR_UNITS: dict[str, int] = {**dict.fromkeys(_TWO_DECIMALS, 2), **_MINOR_UNITS_EXCEPTIONS}
CURRENCIES = frozenset(MINOR_UNITS)

# At most 4 decimal places (CLF); each currency's own limit is checked against MINOR_UNITS.
Money = Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=4)]


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
            raise ValueError(f"unknown ISO 4217 currency code {value!r} (e.g. EUR, USD, JPY)")
        return value

    @field_validator("created_at")
    @classmethod
    def _timezone_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created_at needs a timezone, e.g. 2026-01-31T12:00:00Z")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _total_matches_items(self) -> Order:
        places = MINOR_UNITS[self.currency]
        amounts = [("total", self.total)] + [
            (f"items.{i}.unit_price", item.unit_price) for i, item in enumerate(self.items)
        ]
        too_precise = [
            f"{where} {amount}" for where, amount in amounts if -_exponent(amount) > places
        ]
        if too_precise:
            raise ValueError(
                f"{', '.join(too_precise)}: more than {places} decimal places for {self.currency}"
            )
        expected = sum((item.unit_price * item.quantity for item in self.items), Decimal(0))
        if self.total != expected:
            raise ValueError(f"total {self.total} does not equal the sum of the items {expected}")
        return self

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode("utf-8")


def _exponent(amount: Decimal) -> int:
    exponent = amount.normalize().as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming every failing field, e.g. ``items.0.quantity: must be > 0``."""
    parts = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        # Whole-order checks name their fields in the message itself.
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def parse_order(data: bytes | str | dict) -> Order:
    """Validate an order from JSON or a dict; raise ``InvalidOrderError`` naming each field."""
    try:
        if isinstance(data, dict):
            return Order.model_validate(data)
        return Order.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidOrderError(describe_validation_error(exc)) from None
