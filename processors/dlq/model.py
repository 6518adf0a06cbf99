"""A dead letter, decoded from a DLQ record's headers into what an operator needs to know.

Built on the header codec (``core.headers.decode``) and the bounded display decoding
(``core.display``), so it never raises: a missing header is ``None``, a malformed one is
``None`` as well and its raw text stays visible in ``headers``. The payload is kept as bytes
and, where it is JSON that is safe to show, also decoded (``payload_json``); a poison
record's original bytes are never altered.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from processors.core import display
from processors.core import headers as h
from processors.core.envelope import Record

# A record already replayed this many times is refused unless forced: it keeps coming back.
REPLAY_LIMIT = 3
# What a replay reads of a dead letter when its filter looks at locations only.
REPLAY_HEADERS = frozenset({h.REPLAY_COUNT, h.ORIGINAL_TOPIC})

_MISSING: Any = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter(Record):
    """One record of the DLQ topic (the envelope, bytes untouched) with its context decoded.
    Times are epoch milliseconds; ``header_text`` is every header as text, for people.

    ``replay_count`` is 0 for a record never replayed and ``None`` when its ``x-replay-count``
    header is garbage (the loop guard then refuses it unless forced).
    """

    header_text: dict[str, str | None]
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
    def from_record(cls, record: Record, only: frozenset[str] | None = None) -> DeadLetter:
        """Decode a DLQ record. Never raises, whatever its bytes (see ``core.display``).

        ``only`` (contract header names, e.g. ``REPLAY_HEADERS``): decode just those, for a
        replay whose filter reads nothing else; every other field, ``header_text`` and
        ``payload_json`` stay empty (the record's bytes are all there, as always)."""
        c = h.decode(record.headers, only)
        known = h.known
        payload = display.parse_json(record.value)[0] if only is None else None
        key_text = h.decode_text(record.key)
        order_id = key_text if isinstance(key_text, str) and key_text else None
        if (
            order_id is None
            and isinstance(payload, dict)
            and isinstance(payload.get("order_id"), str)
        ):
            order_id = payload["order_id"]
        replay_count = 0 if c.replay_count is None else known(c.replay_count)
        if replay_count is not None and replay_count < 0:
            replay_count = None
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp_ms,
            key=record.key,
            value=record.value,
            headers=record.headers,
            header_text=h.decoded_text(record.headers) if only is None else {},
            order_id=order_id,
            event_id=known(c.event_id),
            traceparent=known(c.traceparent),
            reason=known(c.dlq_reason),
            error_class=known(c.error_class),
            error_message=known(c.error_message),
            error_category=known(c.error_category),
            stacktrace=known(c.stacktrace),
            attempts=known(c.attempts),
            max_attempts=known(c.max_attempts),
            first_failure_at=known(c.first_failure_at),
            last_failure_at=known(c.last_failure_at),
            dlq_at=known(c.dlq_at),
            original_topic=known(c.original_topic),
            original_partition=known(c.original_partition),
            original_offset=known(c.original_offset),
            original_timestamp=known(c.original_timestamp),
            processor=known(c.processor),
            consumer_group=known(c.consumer_group),
            replay_count=replay_count,
            replayed_at=known(c.replayed_at),
            replay_of=known(c.replay_of),
            payload_json=payload,
        )

    @property
    def failed_at(self) -> int:
        """When it was dead-lettered: ``x-dlq-at``, else the record's timestamp."""
        return self.dlq_at if self.dlq_at is not None else self.timestamp_ms

    def age_ms(self, now_ms: int) -> int:
        return max(0, now_ms - self.failed_at)

    @property
    def key_text(self) -> str | None:
        return h.display_text(self.key)

    @property
    def value_text(self) -> str | None:
        """The payload as plain text (invalid UTF-8 shown as escapes); see ``payload``."""
        return h.display_text(self.value)

    @property
    def payload(self) -> display.Shown:
        """The payload for people: JSON, text, hex or base64, with a note why (bounded)."""
        return display.show(self.value)

    def replay_refusal(self, force: bool = False) -> str | None:
        """Why the loop guard refuses to replay this record, or ``None`` if it may go."""
        if force:
            return None
        if self.replay_count is None:
            raw = h.last_values(self.headers).get(h.REPLAY_COUNT)
            return f"unreadable {h.REPLAY_COUNT} header {h.display_text(raw)!r}"
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
                {"name": name, **_bytes_field("value", value)} for name, value in self.headers
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
