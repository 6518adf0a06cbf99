"""A dead letter, decoded from a DLQ record's headers into what an operator needs to know.

Decoding never raises: a missing header is ``None``, a malformed one is ``None`` as well and
its raw text stays visible in ``headers``. The payload is kept as bytes and, where it is JSON,
also decoded (``payload_json``); a poison record's original bytes are never altered.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from processors.core import headers as h
from processors.kafka.tail import TopicRecord

# A record already replayed this many times is refused unless forced: it keeps coming back.
REPLAY_LIMIT = 3

_MISSING: Any = object()


def _int(values: dict[str, bytes], name: str) -> int | None:
    value = h.decode_int(values.get(name))
    return value if isinstance(value, int) and value is not h.INVALID else None


def _text(values: dict[str, bytes], name: str) -> str | None:
    value = h.decode_text(values.get(name))
    return value if isinstance(value, str) else None


def _json(value: bytes | None) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class DeadLetter:
    """One record of the DLQ topic, decoded. Times are epoch milliseconds.

    ``replay_count`` is 0 for a record never replayed and ``None`` when its ``x-replay-count``
    header is garbage (the loop guard then refuses it unless forced).
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    raw_headers: tuple[tuple[str, bytes], ...]
    headers: dict[str, str]
    order_id: str | None
    event_id: str | None
    traceparent: str | None
    reason: str | None
    error_class: str | None
    error_message: str | None
    error_category: str | None
    stacktrace: str | None
    attempts: int | None
    max_attempts: int | None
    first_failure_at: int | None
    last_failure_at: int | None
    dlq_at: int | None
    original_topic: str | None
    original_partition: int | None
    original_offset: int | None
    original_timestamp: int | None
    processor: str | None
    consumer_group: str | None
    replay_count: int | None
    replayed_at: int | None
    replay_of: str | None
    payload_json: Any

    @classmethod
    def from_record(cls, record: TopicRecord) -> DeadLetter:
        values = h.last_values(record.headers)
        payload = _json(record.value)
        key_text = h.decode_text(record.key)
        order_id = key_text if isinstance(key_text, str) and key_text else None
        if (
            order_id is None
            and isinstance(payload, dict)
            and isinstance(payload.get("order_id"), str)
        ):
            order_id = payload["order_id"]
        replay_raw = values.get(h.REPLAY_COUNT)
        replay_count = 0 if replay_raw is None else _int(values, h.REPLAY_COUNT)
        if replay_count is not None and replay_count < 0:
            replay_count = None
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp_ms,
            key=record.key,
            value=record.value,
            raw_headers=tuple(record.headers),
            headers=h.decoded_text(record.headers),
            order_id=order_id,
            event_id=_text(values, h.CE_ID),
            traceparent=_text(values, h.TRACEPARENT),
            reason=_text(values, h.DLQ_REASON),
            error_class=_text(values, h.ERROR_CLASS),
            error_message=_text(values, h.ERROR_MESSAGE),
            error_category=_text(values, h.ERROR_CATEGORY),
            stacktrace=_text(values, h.ERROR_STACKTRACE),
            attempts=_int(values, h.ATTEMPTS),
            max_attempts=_int(values, h.MAX_ATTEMPTS),
            first_failure_at=_int(values, h.FIRST_FAILURE_AT),
            last_failure_at=_int(values, h.LAST_FAILURE_AT),
            dlq_at=_int(values, h.DLQ_AT),
            original_topic=_text(values, h.ORIGINAL_TOPIC),
            original_partition=_int(values, h.ORIGINAL_PARTITION),
            original_offset=_int(values, h.ORIGINAL_OFFSET),
            original_timestamp=_int(values, h.ORIGINAL_TIMESTAMP),
            processor=_text(values, h.PROCESSOR),
            consumer_group=_text(values, h.CONSUMER_GROUP),
            replay_count=replay_count,
            replayed_at=_int(values, h.REPLAYED_AT),
            replay_of=_text(values, h.REPLAY_OF),
            payload_json=payload,
        )

    @property
    def ref(self) -> str:
        """``topic:partition:offset`` of this dead letter (the value of ``x-replay-of``)."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def failed_at(self) -> int:
        """When it was dead-lettered: ``x-dlq-at``, else the record's timestamp."""
        return self.dlq_at if self.dlq_at is not None else self.timestamp_ms

    def age_ms(self, now_ms: int) -> int:
        return max(0, now_ms - self.failed_at)

    @property
    def key_text(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8", errors="backslashreplace")

    @property
    def value_text(self) -> str | None:
        """The payload as text for people (invalid UTF-8 shown as escapes)."""
        return None if self.value is None else self.value.decode("utf-8", errors="backslashreplace")

    def replay_refusal(self, force: bool = False) -> str | None:
        """Why the loop guard refuses to replay this record, or ``None`` if it may go."""
        if force:
            return None
        if self.replay_count is None:
            return f"unreadable {h.REPLAY_COUNT} header {self.headers.get(h.REPLAY_COUNT)!r}"
        if self.replay_count >= REPLAY_LIMIT:
            return f"already replayed {self.replay_count} times (limit {REPLAY_LIMIT}; --force)"
        return None

    def to_json(self) -> dict[str, Any]:
        """A lossless, readable JSON object: bytes that are not UTF-8 are given in base64."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp_ms": self.timestamp_ms,
            **_bytes_field("key", self.key),
            **_bytes_field("value", self.value),
            "payload_json": self.payload_json,
            "headers": [
                {"name": name, **_bytes_field("value", value)} for name, value in self.raw_headers
            ],
            "dead_letter": {
                "order_id": self.order_id,
                "event_id": self.event_id,
                "reason": self.reason,
                "error_class": self.error_class,
                "error_message": self.error_message,
                "error_category": self.error_category,
                "attempts": self.attempts,
                "first_failure_at": self.first_failure_at,
                "last_failure_at": self.last_failure_at,
                "dlq_at": self.dlq_at,
                "original": {
                    "topic": self.original_topic,
                    "partition": self.original_partition,
                    "offset": self.original_offset,
                    "timestamp_ms": self.original_timestamp,
                },
                "replay_count": self.replay_count,
                "replay_of": self.replay_of,
                "stacktrace": self.stacktrace,
            },
        }


def _bytes_field(name: str, data: bytes | None) -> dict[str, Any]:
    if data is None:
        return {name: None}
    try:
        return {name: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_b64": base64.b64encode(data).decode("ascii")}


def bytes_from_json(obj: dict[str, Any], name: str) -> bytes | None:
    """The inverse of the export's byte fields: ``name`` (UTF-8 text) or ``name_b64``."""
    if obj.get(f"{name}_b64") is not None:
        return base64.b64decode(obj[f"{name}_b64"])
    value = obj.get(name, _MISSING)
    return None if value is _MISSING or value is None else str(value).encode("utf-8")
