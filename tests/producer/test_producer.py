"""Producing against a real broker: every header, every delivery accounted for, bounded failure."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime

import pytest

from deploy.localkafka.net import free_ports
from processors.core import headers as h
from processors.core.order import EVENT_TYPE, parse_order
from processors.errors import InvalidOrderError, KafkaUnavailableError
from processors.orders_gen import RawPayload, generate_orders
from processors.producer import order_headers, produce_one, produce_orders
from processors.settings import load_settings
from tests.dlq.support import create_topics, read_all

pytestmark = pytest.mark.kafka

RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def closed_port() -> int:
    """A loopback port nothing listens on, outside the ephemeral range (a client retrying an
    ephemeral one can be handed it as its own source port and connect to itself)."""
    [port] = free_ports(1)
    return port


def assert_cloudevent(headers: list[tuple[str, bytes]], source: str) -> dict[str, str]:
    names = [name for name, _ in headers]
    assert len(names) == len(set(names)), "no header appears twice"
    values = {name: value.decode() for name, value in headers}
    assert values[h.CE_SPECVERSION] == "1.0"
    assert uuid.UUID(values[h.CE_ID]).version == 4
    assert values[h.CE_SOURCE] == source
    assert values[h.CE_TYPE] == EVENT_TYPE
    assert RFC3339_MS.fullmatch(values[h.CE_TIME])
    assert values[h.CONTENT_TYPE] == "application/json"
    assert h.is_valid_traceparent(values[h.TRACEPARENT])
    return values


def test_order_headers_are_cloudevents_binary_mode() -> None:
    order = next(iter(generate_orders(1, "success", seed=1)))
    given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = order_headers(order, source="urn:test", event_id="e-1", traceparent=given)
    values = dict(headers)
    assert values[h.CE_ID] == b"e-1" and values[h.TRACEPARENT] == given.encode()
    ce_time = datetime.fromisoformat(values[h.CE_TIME].decode())
    assert abs((ce_time - order.created_at).total_seconds()) < 0.001
    fresh = [dict(order_headers(order, source="s"))[h.TRACEPARENT] for _ in range(3)]
    assert len(set(fresh)) == 3
    with pytest.raises(InvalidOrderError, match="traceparent"):
        order_headers(order, source="s", traceparent="00-" + "0" * 32 + "-" + "1" * 16 + "-01")


def test_produce_one_round_trip_with_every_header(kafka_settings) -> None:
    topic = kafka_settings.topic_main
    create_topics(kafka_settings, [topic])
    order = next(iter(generate_orders(1, "transient", seed=2)))
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    delivery = produce_one(kafka_settings, order, traceparent=trace)

    [(partition, offset, key, value, headers)] = read_all(kafka_settings, topic, 1)
    assert (partition, offset) == (delivery.partition, delivery.offset)
    assert key == order.order_id.encode() == delivery.key.encode()
    assert value == order.to_json_bytes() and parse_order(value) == order
    values = assert_cloudevent(headers, kafka_settings.event_source)
    assert values[h.CE_ID] == delivery.event_id
    assert values[h.TRACEPARENT] == trace == delivery.traceparent


def test_produce_orders_delivers_every_item_byte_exact(kafka_settings) -> None:
    topic = kafka_settings.topic_main
    create_topics(kafka_settings, [topic])
    items = list(generate_orders(300, "mixed", seed=9))
    reports: list[tuple[int, int]] = []

    summary = produce_orders(kafka_settings, items, progress=lambda d, f: reports.append((d, f)))

    assert (summary.delivered, summary.failed, summary.ok) == (300, 0, True)
    assert reports[-1] == (300, 0) and len(reports) == 300
    records = read_all(kafka_settings, topic, 300)
    assert len(records) == 300
    expected = {
        (i.key if isinstance(i, RawPayload) else i.order_id.encode()): (
            i.value if isinstance(i, RawPayload) else i.to_json_bytes()
        )
        for i in items
    }
    assert {key: value for _, _, key, value, _ in records} == expected
    event_ids = set()
    for *_, headers in records:
        event_ids.add(assert_cloudevent(headers, kafka_settings.event_source)[h.CE_ID])
    assert len(event_ids) == 300


def test_rate_is_respected(kafka_settings) -> None:
    topic = kafka_settings.topic_main
    create_topics(kafka_settings, [topic])
    started = time.monotonic()
    summary = produce_orders(kafka_settings, generate_orders(60, "success", seed=1), rate=40)
    elapsed = time.monotonic() - started
    assert summary.delivered == 60
    # 60 records at 40/s: the last is sent at 59/40 = 1.475 s; never sooner (the upper bound
    # only catches a stalled limiter).
    assert 1.4 < elapsed < 20, elapsed


def test_broker_down_fails_every_delivery_within_the_timeout(tmp_path) -> None:
    settings = load_settings(bootstrap_servers=f"127.0.0.1:{closed_port()}", state_dir=tmp_path)
    started = time.monotonic()
    summary = produce_orders(settings, generate_orders(25, "success", seed=1), delivery_timeout_s=2)
    assert time.monotonic() - started < 10
    assert (summary.delivered, summary.failed, summary.ok) == (0, 25, False)
    assert summary.errors and "timed out" in summary.errors[0]
    assert len(summary.failed_keys) == 25
    with pytest.raises(KafkaUnavailableError, match="not delivered"):
        produce_one(settings, next(iter(generate_orders(1, seed=1))), delivery_timeout_s=2)
