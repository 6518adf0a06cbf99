"""Canned records for the shaping tests: envelopes, as the tail readers return them."""

from __future__ import annotations

from processors.core import headers as h
from processors.core.envelope import Record


def Rec(
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    key: bytes | None = b"ord-1",
    value: bytes | None = b'{"order_id": "ord-1"}',
    headers: list[tuple[str, bytes | None]] | None = None,
) -> Record:
    return Record(topic, partition, offset, timestamp_ms, key, value, tuple(headers or ()))


def dead(reason: str | None, offset: int = 0, ts: int = 1_000, key: bytes = b"ord-1") -> Record:
    headers: list[tuple[str, bytes | None]] = [
        (h.ERROR_CLASS, b"processors.handler.PermanentError"),
        (h.ATTEMPTS, b"1"),
    ]
    if reason is not None:
        headers.append((h.DLQ_REASON, reason.encode()))
    return Rec("orders.dlq", 0, offset, ts, key=key, headers=headers)
