"""Bounds on every blocking call of Quix Streams' Kafka client wrappers.

Quix Streams 3.28 commits a normal (non-revoke) checkpoint with no timeout
(``InternalProducer.commit_transaction(..., timeout=None)`` becomes librdkafka's -1) and flushes
with ``max.poll.interval.ms`` (300 s); ``init_transactions`` (lazily, on the first
``begin_transaction``) and ``Consumer.close``/``commit`` take none at all. The guard replaces
those methods on the wrapper *instances* (``Producer``/``InternalProducer``,
``Consumer``/``InternalConsumer``), so Quix's own code calls the bounded versions:

- a missing, infinite or longer timeout becomes ``budget_s`` (from ``transaction_timeout_ms``);
- each call runs inside :meth:`Watchdog.call` with ``budget_s + GRACE_S``: should librdkafka not
  honour its own timeout (upstream #5511, #3013), the watchdog ends the process;
- a successful transaction or offset commit counts as progress.

The method names and signatures are those of quixstreams 3.28 (pinned in pyproject.toml).
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from processors.liveness import Watchdog

GRACE_S = 5.0
TIMEOUT_CODES = {
    KafkaError._TIMED_OUT,
    KafkaError._TIMED_OUT_QUEUE,
    KafkaError._MSG_TIMED_OUT,
    KafkaError.REQUEST_TIMED_OUT,
}  # beyond its own timeout, how long a call may take before the watchdog acts

_TIMED = ("commit_transaction", "send_offsets_to_transaction", "abort_transaction", "flush")
_UNTIMED = ("begin_transaction",)
_CONSUMER_TIMED = ("committed", "list_topics")
_CONSUMER_UNTIMED = ("commit", "close")
_COMMITS = ("commit_transaction", "commit")


def guard_producer(producer: Any, watchdog: Watchdog, budget_s: float) -> Any:
    """Bound ``producer``'s blocking calls in place; returns it."""
    for name in _TIMED:
        _patch(producer, name, watchdog, budget_s, timed=True)
    for name in _UNTIMED:
        _patch(producer, name, watchdog, budget_s, timed=False)
    return producer


def guard_consumer(consumer: Any, watchdog: Watchdog, budget_s: float) -> Any:
    """Bound ``consumer``'s blocking calls in place; returns it."""
    for name in _CONSUMER_TIMED:
        _patch(consumer, name, watchdog, budget_s, timed=True)
    for name in _CONSUMER_UNTIMED:
        _patch(consumer, name, watchdog, budget_s, timed=False)
    return consumer


def beat_on(obj: Any, name: str, watchdog: Watchdog) -> None:
    """Make every call of ``obj.name`` a heartbeat of the loop (Quix's loop polls the producer
    once per iteration)."""
    method = getattr(obj, name)
    clock = watchdog.clock

    def beating(*args: Any, **kwargs: Any) -> Any:
        watchdog.last_beat = clock()  # Watchdog.beat, inlined: this runs once per record
        return method(*args, **kwargs)

    setattr(obj, name, beating)


def _patch(obj: Any, name: str, watchdog: Watchdog, budget_s: float, *, timed: bool) -> None:
    method: Callable[..., Any] | None = getattr(obj, name, None)
    if method is None:
        return
    index = _timeout_index(method)
    progress = name in _COMMITS

    @functools.wraps(method)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if timed:
            given = kwargs.pop("timeout", args[index] if len(args) > index else None)
            args = args[:index]
            timeout = budget_s if given is None or given < 0 else min(given, budget_s)
            kwargs["timeout"] = timeout
        else:
            timeout = budget_s
        started = time.monotonic()
        with watchdog.call(name, timeout + GRACE_S):
            try:
                result = method(*args, **kwargs)
            except Exception as exc:
                elapsed = time.monotonic() - started
                if (timed and elapsed >= 0.9 * timeout) or _timed_out(exc):
                    watchdog.timed_out = (name, elapsed)
                raise
        if name == "flush" and result:  # messages still undelivered after the timeout
            watchdog.timed_out = (name, time.monotonic() - started)
        if progress:
            watchdog.progressed()
        return result

    setattr(obj, name, bounded)


def _timed_out(exc: BaseException | None) -> bool:
    """A librdkafka timeout in ``exc`` or anything it was raised from or during."""
    seen = 0
    while exc is not None and seen < 10:
        error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
        if isinstance(error, KafkaError) and error.code() in TIMEOUT_CODES:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _timeout_index(method: Callable[..., Any]) -> int:
    """Position of ``timeout`` among the positional arguments of a bound method."""
    names = list(inspect.signature(method).parameters)
    return names.index("timeout") if "timeout" in names else len(names)
