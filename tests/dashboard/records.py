"""Canned records for the shaping tests: the same attributes as ``TopicRecord``."""

from __future__ import annotations

from dataclasses import dataclass, field

from processors.core import headers as h


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None = b"ord-1"
    value: bytes | None = b'{"order_id": "ord-1"}'
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def dead(reason: str | None, offset: int = 0, ts: int = 1_000, key: bytes = b"ord-1") -> Rec:
    headers = [(h.ERROR_CLASS, b"processors.handler.PermanentError"), (h.ATTEMPTS, b"1")]
    if reason is not None:
        headers.append((h.DLQ_REASON, reason.encode()))
    return Rec("orders.dlq", 0, offset, ts, key=key, headers=headers)
