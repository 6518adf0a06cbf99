"""What a chaos run sends, when it injects which fault, and how it accounts for every order.
Pure: a seed in, plans and verdicts out (no Kafka, no clock)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from processors.core.order import Item, Order, Simulation

PROCESSED = "processed"
# kind -> (share of the orders, expected end: "processed" or the DLQ reason)
MIX: dict[str, tuple[float, str]] = {
    "success": (0.62, PROCESSED),
    "transient_once": (0.10, PROCESSED),
    "transient_twice": (0.06, PROCESSED),
    "permanent": (0.06, "non_retryable"),
    "transient_always": (0.04, "max_attempts_exhausted"),
    "invalid": (0.06, "validation_failed"),
    "poison": (0.06, "deserialization_failed"),
}


@dataclass(frozen=True)
class Planned:
    key: bytes
    value: bytes
    kind: str
    expected: str  # PROCESSED or a DLQ reason


def orders(run_id: str, count: int, seed: int) -> list[Planned]:
    """``count`` orders with the mix above, in a seeded random order."""
    rng = random.Random(seed)
    kinds = [kind for kind, (share, _) in MIX.items() for _ in range(round(share * count))]
    kinds = (kinds + ["success"] * count)[:count]
    rng.shuffle(kinds)
    return [_planned(f"{run_id}-{i}", kind) for i, kind in enumerate(kinds)]


def _planned(order_id: str, kind: str) -> Planned:
    simulate = {
        "transient_once": Simulation(fail_attempts=1),
        "transient_twice": Simulation(fail_attempts=2),
        "permanent": Simulation(error="permanent"),
        "transient_always": Simulation(error="transient"),
    }.get(kind)
    body = Order(
        order_id=order_id,
        customer_id="c-chaos",
        items=[Item(sku="SKU-1", quantity=2, unit_price=Decimal("4.50"))],
        currency="EUR",
        total=Decimal("9.00"),
        created_at=datetime(2026, 1, 31, 12, 0, tzinfo=UTC),
        simulate=simulate,
    ).to_json_bytes()
    if kind == "invalid":
        body = body.replace(b'"9.00"', b'"9.01"')  # total does not match the items
    elif kind == "poison":
        body = b'{"order_id": "' + order_id.encode() + b'", '  # truncated JSON
    return Planned(order_id.encode(), body, kind, MIX[kind][1])


@dataclass(frozen=True)
class Fault:
    at_s: float  # seconds after production starts
    kind: str  # "processor_kill" | "broker_kill" | "broker_pause"
    duration_s: float = 0.0  # how long a broker stays dead or paused


def plan_faults(
    seed: int,
    window_s: float,
    processor_kills: int,
    broker_kills: int,
    broker_pauses: int,
    down_s: tuple[float, float] = (5.0, 15.0),
    pause_s: tuple[float, float] = (10.0, 30.0),
) -> list[Fault]:
    """Fault times inside ``[0, window_s]``. Broker faults never overlap (one broker of three
    away at a time: min ISR 2 still holds); processor kills land anywhere."""
    rng = random.Random(seed * 7919 + 1)
    broker = [("broker_kill", down_s)] * broker_kills + [("broker_pause", pause_s)] * broker_pauses
    rng.shuffle(broker)
    durations = [rng.uniform(*span) for _, span in broker]
    slack = max(window_s - sum(durations) - 5.0 * len(broker), 0.0)
    gaps = sorted(rng.uniform(0, slack) for _ in broker)
    faults, used, previous_gap = [], 0.0, 0.0
    for (kind, _), duration, gap in zip(broker, durations, gaps, strict=True):
        used += gap - previous_gap
        previous_gap = gap
        faults.append(Fault(round(used, 2), kind, round(duration, 2)))
        used += duration + 5.0
    faults += [
        Fault(round(rng.uniform(0, window_s), 2), "processor_kill") for _ in range(processor_kills)
    ]
    return sorted(faults, key=lambda f: f.at_s)


@dataclass(frozen=True)
class Outcome:
    key: bytes | None
    topic: str  # "processed" or "dlq"
    reason: str | None  # DLQ reason


@dataclass
class Accounting:
    orders: int
    lost: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)
    misrouted: list[str] = field(default_factory=list)
    wrong_reason: list[str] = field(default_factory=list)
    unexpected: int = 0
    by_end: Counter[str] = field(default_factory=Counter)

    @property
    def clean(self) -> bool:
        return not (
            self.lost or self.duplicated or self.misrouted or self.wrong_reason or self.unexpected
        )

    def summary(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "duplicates": sum(n - 1 for n in self.duplicated.values()),
            "misrouted": len(self.misrouted),
            "wrong_reason": len(self.wrong_reason),
            "unexpected": self.unexpected,
            "by_end": dict(sorted(self.by_end.items())),
            "examples": {
                "lost": self.lost[:5],
                "duplicated": list(self.duplicated)[:5],
                "misrouted": self.misrouted[:5],
                "wrong_reason": self.wrong_reason[:5],
            },
        }


def account(sent: list[Planned], outcomes: list[Outcome]) -> Accounting:
    """Every sent order must end exactly once, in the right topic, with the right reason."""
    expected = {p.key: p.expected for p in sent}
    seen: dict[bytes, list[Outcome]] = {}
    result = Accounting(len(sent))
    for outcome in outcomes:
        if outcome.key not in expected:
            result.unexpected += 1
            continue
        seen.setdefault(outcome.key, []).append(outcome)
    for key, want in expected.items():
        name = key.decode()
        ends = seen.get(key, [])
        if not ends:
            result.lost.append(name)
            continue
        if len(ends) > 1:
            result.duplicated[name] = len(ends)
        end = ends[0]
        got = PROCESSED if end.topic == PROCESSED else (end.reason or "?")
        result.by_end[got] += 1
        if (end.topic == PROCESSED) != (want == PROCESSED):
            result.misrouted.append(name)
        elif got != want:
            result.wrong_reason.append(name)
    return result
