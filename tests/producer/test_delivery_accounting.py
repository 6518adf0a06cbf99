"""What counts as delivered, without a broker: issue 14's acknowledged-but-lost orders.

In a rolling restart librdkafka (5 requests in flight per broker) saw one batch refused with
NOT_LEADER_OR_FOLLOWER and the next accepted, and reported the refused one delivered with no
offset ("implicitly acked by subsequent batch success"); the new leader, which knew nothing of
that fresh producer, had taken the gap, so 4 acknowledged orders were never written.
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError

from processors.kafka import clients
from processors.producer import UNCONFIRMED, _Tracker
from processors.settings import Settings


class _Message:
    def __init__(self, key: bytes, offset: int | None) -> None:
        self._key, self._offset = key, offset

    def key(self) -> bytes:
        return self._key

    def offset(self) -> int | None:
        return self._offset


def _tracker() -> _Tracker:
    return _Tracker(progress=None, denied=lambda _err: None)


def test_the_factory_keeps_one_request_in_flight_per_broker(monkeypatch) -> None:
    made: list[dict[str, Any]] = []
    monkeypatch.setattr(clients, "Producer", lambda config: made.append(config))
    settings = Settings(bootstrap_servers="127.0.0.1:9")

    clients.producer(settings)
    clients.producer(settings, **{"linger.ms": 50})

    for config in made:
        assert config["enable.idempotence"] is True and config["acks"] == "all"
        assert config["max.in.flight.requests.per.connection"] == 1
    assert made[1]["linger.ms"] == 50


def test_a_delivery_with_an_offset_counts_as_delivered() -> None:
    tracker = _tracker()
    tracker.on_delivery(None, _Message(b"ord-1", 0))
    tracker.on_delivery(None, _Message(b"ord-2", 5590))
    assert (tracker.delivered, tracker.failed) == (2, 0)


@pytest.mark.parametrize("offset", [None, -1, -1001])
def test_a_success_without_an_offset_is_reported_not_delivered(offset) -> None:
    tracker = _tracker()
    tracker.on_delivery(None, _Message(b"ord-46ce8959ac066f49", offset))
    assert (tracker.delivered, tracker.failed) == (0, 1)
    assert tracker.causes == {UNCONFIRMED: 1}
    assert tracker.failed_keys == ["ord-46ce8959ac066f49"]


def test_a_failed_delivery_is_still_counted_with_its_error() -> None:
    tracker = _tracker()
    tracker.on_delivery(KafkaError(KafkaError._MSG_TIMED_OUT), _Message(b"ord-3", None))
    assert (tracker.delivered, tracker.failed) == (0, 1)
    assert UNCONFIRMED not in tracker.causes


def test_the_processors_quix_producers_keep_one_request_in_flight_too() -> None:
    settings = Settings(bootstrap_servers="127.0.0.1:9", processing_guarantee="exactly-once")
    extra = {"transactional.id": "orderflow-main-t"}
    app = clients.quix_application(settings, "g", producer_extra=extra)
    config = app.config.producer_extra_config
    assert config["max.in.flight.requests.per.connection"] == 1
    assert config["transactional.id"] == "orderflow-main-t"
