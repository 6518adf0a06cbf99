"""How long a replay's transactional call keeps asking, per error, on a fake clock.

No broker: the producer is never asked to connect, and the call under test is a stand-in
that raises what librdkafka raises.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, KafkaException

from processors.dlq import sender as sender_module
from processors.dlq.sender import (
    SETTLING_S,
    ReplayStalledError,
    Sender,
    TransactionAbortedError,
)
from processors.errors import KafkaUnavailableError
from processors.settings import load_settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(sender_module, "time", fake)
    return fake


@pytest.fixture
def sender(clock: FakeClock) -> Sender:
    settings = load_settings(bootstrap_servers="127.0.0.1:1", transaction_timeout_ms=10_000)
    return Sender(settings, transactional_id=None, delivery_timeout_s=5)


def failing(
    clock: FakeClock, code: int, *, until_s: float, each_s: float = 1.0, retriable: bool = False
) -> tuple[Callable[[float], None], list[float]]:
    """A call that fails with ``code`` (taking ``each_s``) until ``until_s`` have passed."""
    started = clock.now
    calls: list[float] = []

    def call(timeout: float) -> None:
        calls.append(timeout)
        clock.now += each_s
        if clock.now - started < until_s:
            raise KafkaException(KafkaError(code, retriable=retriable))

    return call, calls


def test_a_coordinator_still_finishing_an_earlier_transaction_gets_the_settling_time(
    sender: Sender, clock: FakeClock
) -> None:
    # A rerun right after a frozen cluster: the coordinator answers "concurrent transactions"
    # for longer than the transaction budget while it writes the earlier run's abort markers.
    assert sender.budget_s < 40 < SETTLING_S
    call, calls = failing(clock, KafkaError.CONCURRENT_TRANSACTIONS, until_s=40)
    sender._retrying("init_transactions", call, sender.producer)
    assert clock.now - 1000 >= 40
    assert len(calls) > 1


def test_the_settling_time_is_bounded_too(sender: Sender, clock: FakeClock) -> None:
    call, _ = failing(clock, KafkaError.CONCURRENT_TRANSACTIONS, until_s=10 * SETTLING_S)
    with pytest.raises(KafkaUnavailableError, match="init_transactions failed"):
        sender._retrying("init_transactions", call, sender.producer)
    assert SETTLING_S <= clock.now - 1000 <= SETTLING_S + 2


def test_a_call_that_times_out_stops_at_the_transaction_budget(
    sender: Sender, clock: FakeClock
) -> None:
    call, _ = failing(clock, KafkaError._TIMED_OUT, until_s=10 * SETTLING_S, retriable=True)
    with pytest.raises(ReplayStalledError, match="did not finish within 15 s"):
        sender._retrying("commit_transaction", call, sender.producer)
    assert sender.budget_s <= clock.now - 1000 <= sender.budget_s + 2


def test_an_abortable_error_is_not_retried(sender: Sender, clock: FakeClock) -> None:
    def call(timeout: float) -> None:
        raise KafkaException(KafkaError(KafkaError._STATE, "aborted", txn_requires_abort=True))

    with pytest.raises(TransactionAbortedError):
        sender._retrying("commit_transaction", call, sender.producer)
    assert clock.now == 1000
