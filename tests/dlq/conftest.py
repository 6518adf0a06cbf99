"""Fixtures for DLQ tests: topics per test and dead letters written in the processors' format."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable

import pytest

from processors.core import headers as h
from processors.orders_gen import generate_orders
from processors.producer import order_headers
from processors.settings import Settings
from tests.dlq.support import RawRecord, create_topics, write

STACK = 'Traceback (most recent call last):\n  File "handler.py", line 3\nPaymentDeclined: no'


def dead_letter(
    settings: Settings,
    *,
    order_id: str,
    reason: str = "non_retryable",
    error_class: str = "processors.handler.PaymentDeclined",
    category: str = "permanent",
    attempts: int = 1,
    dlq_at: int = 1_700_000_000_000,
    replay_count: int | None = None,
    value: bytes | None = None,
    original_offset: int = 7,
    extra: list[tuple[str, bytes]] | None = None,
) -> RawRecord:
    """A record as the processors write it to the DLQ: the producer's CloudEvents headers, then
    the full contract, built from the header constants."""
    order = next(iter(generate_orders(1, "permanent", seed=zlib.crc32(order_id.encode()))))
    order = order.model_copy(update={"order_id": order_id})
    headers = order_headers(order, source="urn:test")
    headers += [
        (h.ATTEMPTS, h.encode_int(attempts)),
        (h.MAX_ATTEMPTS, h.encode_int(5)),
        (h.FIRST_FAILURE_AT, h.encode_int(dlq_at - 1000)),
        (h.LAST_FAILURE_AT, h.encode_int(dlq_at)),
        (h.ORIGINAL_TOPIC, settings.topic_main.encode()),
        (h.ORIGINAL_PARTITION, h.encode_int(0)),
        (h.ORIGINAL_OFFSET, h.encode_int(original_offset)),
        (h.ORIGINAL_TIMESTAMP, h.encode_int(dlq_at - 2000)),
        (h.ERROR_CLASS, error_class.encode()),
        (h.ERROR_MESSAGE, f"payment declined for order {order_id}".encode()),
        (h.ERROR_CATEGORY, category.encode()),
        (h.PROCESSOR, b"orderflow-main/0.1.0/test"),
        (h.CONSUMER_GROUP, settings.group_main.encode()),
        (h.DLQ_REASON, reason.encode()),
        (h.DLQ_AT, h.encode_int(dlq_at)),
        (h.ERROR_STACKTRACE, STACK.encode()),
    ]
    if replay_count is not None:
        headers += [
            (h.REPLAY_COUNT, h.encode_int(replay_count)),
            (h.REPLAYED_AT, h.encode_int(dlq_at - 5000)),
            (h.REPLAY_OF, f"{settings.topic_dlq}:0:1".encode()),
        ]
    headers += extra or []
    payload = order.to_json_bytes() if value is None else value
    return (order_id.encode(), payload, headers)


@pytest.fixture
def dlq_topics(kafka_settings: Settings) -> Settings:
    create_topics(kafka_settings, kafka_settings.all_topics, partitions=3)
    return kafka_settings


@pytest.fixture
def write_dlq(dlq_topics: Settings) -> Callable[..., None]:
    def _write(records: list[RawRecord], partition: int | None = None) -> None:
        write(dlq_topics, dlq_topics.topic_dlq, records, partition=partition)

    return _write


def payload_of(record: RawRecord) -> dict:
    return json.loads(record[1])
