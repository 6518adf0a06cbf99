"""Order handlers: the business step both processors run, and how a custom one is plugged in.

A handler is ``fn(order: Order, ctx: HandlerContext) -> None``. It signals failure by raising:
``TransientError`` to retry later, ``PermanentError`` to dead-letter at once; other exception
types follow the classification settings (unknown ones retry by default). Exactly-once covers
Kafka records only: pass ``ctx.idempotency_key`` to any external side effect. See docs/handlers.md.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from processors.core.classify import PermanentError, TransientError
from processors.core.order import Order
from processors.errors import SettingsError
from processors.settings import Settings


class HandlerContext(NamedTuple):
    """What a handler knows besides the order.

    ``attempt`` starts at 1; ``idempotency_key`` is the same on every attempt of one event (its
    ``ce_id``, else its first Kafka location); ``headers`` are the incoming record's headers
    (last value per name; values are raw bytes, or ``None`` for a null header).
    """

    attempt: int
    max_attempts: int
    idempotency_key: str
    headers: Mapping[str, bytes | None] = MappingProxyType({})
    topic: str = ""
    partition: int = -1
    offset: int = -1

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


Handler = Callable[[Order, HandlerContext], object]


class PaymentTimeout(TransientError):
    """The simulated payment provider did not answer in time."""


class PaymentDeclined(PermanentError):
    """The simulated payment provider refused the payment for good."""


def handle_order(order: Order, ctx: HandlerContext) -> None:
    """The built-in handler: the order arrives validated; this simulates the payment step.

    Honours ``order.simulate``: ``{"fail_attempts": n, "error": "transient"}`` fails attempts
    1..n, then succeeds; without ``fail_attempts`` every attempt fails with that kind of error.
    """
    simulation = order.simulate
    if simulation is None:
        return
    failing = simulation.fail_attempts is None or ctx.attempt <= simulation.fail_attempts
    if not failing:
        return
    if simulation.error == "permanent":
        raise PaymentDeclined(f"payment declined for order {order.order_id} (simulated)")
    raise PaymentTimeout(
        f"payment provider timed out for order {order.order_id} "
        f"on attempt {ctx.attempt} (simulated)"
    )


class RandomFailures:
    """Wraps the built-in handler for load demos: fails a ``rate`` share of attempts with a
    transient error before the real step runs."""

    def __init__(self, inner: Handler, rate: float, rng: random.Random | None = None) -> None:
        self.inner, self.rate, self.rng = inner, rate, rng or random.Random()

    def __call__(self, order: Order, ctx: HandlerContext) -> object:
        if self.rng.random() < self.rate:
            raise PaymentTimeout(f"random transient failure for order {order.order_id} (demo)")
        return self.inner(order, ctx)


def load_handler(spec: str) -> Handler:
    """Import ``package.module:function``; raises ``SettingsError`` when it is not callable."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise SettingsError(f"ORDERFLOW_HANDLER: expected package.module:function, got {spec!r}")
    try:
        target: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except ImportError as exc:
        raise SettingsError(f"ORDERFLOW_HANDLER: cannot import {module_name!r}: {exc}") from None
    except AttributeError:
        raise SettingsError(f"ORDERFLOW_HANDLER: {module_name!r} has no {attribute!r}") from None
    if not callable(target):
        raise SettingsError(f"ORDERFLOW_HANDLER: {spec!r} is not callable")
    return target  # type: ignore[return-value]


def build_handler(settings: Settings) -> Handler:
    """The configured handler; the random failure rate applies to the built-in one only."""
    handler = load_handler(settings.handler)
    if handler is handle_order and settings.random_failure_rate > 0:
        return RandomFailures(handler, settings.random_failure_rate)
    return handler
