"""The header contract: every header name orderflow reads or writes, and one codec for each kind
of value. Values are UTF-8 text; numbers are ASCII decimal; times are epoch milliseconds.

Decoding never raises: a missing header decodes to ``None`` and garbage decodes to ``INVALID``,
so callers decide deliberately what a malformed record means. See docs/headers.md.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

# Header lists as confluent-kafka and Quix Streams hand them over: ordered (name, value) pairs.
HeaderList = list[tuple[str, bytes]]

# --- retry state (replaced on each hop) ---------------------------------------------------------
ATTEMPTS: Final = "x-attempts"
MAX_ATTEMPTS: Final = "x-max-attempts"
RETRY_DUE_AT: Final = "x-retry-due-at"
FIRST_FAILURE_AT: Final = "x-first-failure-at"
LAST_FAILURE_AT: Final = "x-last-failure-at"

# --- where the record first came from (set once, never replaced) ---------------------------------
ORIGINAL_TOPIC: Final = "x-original-topic"
ORIGINAL_PARTITION: Final = "x-original-partition"
ORIGINAL_OFFSET: Final = "x-original-offset"
ORIGINAL_TIMESTAMP: Final = "x-original-timestamp"
ORIGINAL_HEADERS: Final = (ORIGINAL_TOPIC, ORIGINAL_PARTITION, ORIGINAL_OFFSET, ORIGINAL_TIMESTAMP)

# --- the last error -------------------------------------------------------------------------------
ERROR_CLASS: Final = "x-error-class"
ERROR_MESSAGE: Final = "x-error-message"
ERROR_CATEGORY: Final = "x-error-category"
PROCESSOR: Final = "x-processor"
CONSUMER_GROUP: Final = "x-consumer-group"

# --- dead-letter only -----------------------------------------------------------------------------
DLQ_REASON: Final = "x-dlq-reason"
DLQ_AT: Final = "x-dlq-at"
ERROR_STACKTRACE: Final = "x-error-stacktrace"

# --- replay (written by `orderflow dlq replay`) ---------------------------------------------------
REPLAY_COUNT: Final = "x-replay-count"
REPLAYED_AT: Final = "x-replayed-at"
REPLAY_OF: Final = "x-replay-of"

# --- CloudEvents Kafka binding (binary mode) and W3C trace context ------------------------------
CE_SPECVERSION: Final = "ce_specversion"
CE_ID: Final = "ce_id"
CE_SOURCE: Final = "ce_source"
CE_TYPE: Final = "ce_type"
CE_TIME: Final = "ce_time"
CONTENT_TYPE: Final = "content-type"
TRACEPARENT: Final = "traceparent"

ERROR_MESSAGE_LIMIT: Final = 1024
STACKTRACE_LIMIT: Final = 8 * 1024

# Every header this contract owns and a hop may replace (original ones excluded).
HOP_HEADERS: Final = (
    ATTEMPTS,
    MAX_ATTEMPTS,
    RETRY_DUE_AT,
    FIRST_FAILURE_AT,
    LAST_FAILURE_AT,
    ERROR_CLASS,
    ERROR_MESSAGE,
    ERROR_CATEGORY,
    PROCESSOR,
    CONSUMER_GROUP,
    DLQ_REASON,
    DLQ_AT,
    ERROR_STACKTRACE,
)


class _Invalid:
    """A header that is present but cannot be decoded. Falsy, and equal only to itself."""

    _instance: _Invalid | None = None

    def __new__(cls) -> _Invalid:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "INVALID"

    def __bool__(self) -> bool:
        return False


INVALID: Final = _Invalid()

_DECIMAL = re.compile(rb"-?[0-9]{1,19}")


# --- primitive codecs -----------------------------------------------------------------------------
def encode_int(value: int) -> bytes:
    return str(int(value)).encode("ascii")


def encode_text(value: str, limit: int | None = None) -> bytes:
    """UTF-8 text, truncated to at most ``limit`` bytes without splitting a character."""
    data = value.encode("utf-8")
    if limit is not None and len(data) > limit:
        data = data[:limit].decode("utf-8", errors="ignore").encode("utf-8")
    return data


def encode_text_tail(value: str, limit: int) -> bytes:
    """UTF-8 text keeping the LAST ``limit`` bytes (a stack trace ends with what matters),
    marked with a leading ``…`` when cut."""
    data = value.encode("utf-8")
    if len(data) <= limit:
        return data
    marker = "…\n".encode()
    tail = data[len(data) - (limit - len(marker)) :].decode("utf-8", errors="ignore")
    return marker + tail.encode("utf-8")


def encode_processor(name: str, version: str, instance: str) -> bytes:
    """``x-processor``: ``name/version/instance``, e.g. ``orderflow-retry/0.1.0/host-4711``."""
    return encode_text(f"{name}/{version}/{instance}", ERROR_MESSAGE_LIMIT)


def decode_int(raw: bytes | None) -> int | _Invalid | None:
    if raw is None:
        return None
    stripped = raw.strip()
    if not _DECIMAL.fullmatch(stripped):
        return INVALID
    return int(stripped)


def decode_text(raw: bytes | None) -> str | _Invalid | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return INVALID


# --- header lists ---------------------------------------------------------------------------------
def normalize(headers: Iterable[tuple[str, bytes | str | None]] | None) -> HeaderList:
    """Headers as a list of ``(str, bytes)``; ``None`` values become empty bytes."""
    result: HeaderList = []
    for name, value in headers or ():
        if value is None:
            value = b""
        elif isinstance(value, str):
            value = value.encode("utf-8")
        result.append((name, value))
    return result


def last_values(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, bytes]:
    """Name → value, the last occurrence winning (Kafka allows repeated names)."""
    return {name: value for name, value in normalize(headers)}


def replace(
    headers: Sequence[tuple[str, bytes]] | None, updates: Mapping[str, bytes | None]
) -> HeaderList:
    """Drop every occurrence of each updated name, then append the new values in order.

    A ``None`` value removes the header. Other headers keep their order and bytes, so a hop
    never grows the header list: each contract header appears at most once.
    """
    kept = [(name, value) for name, value in normalize(headers) if name not in updates]
    return kept + [(name, value) for name, value in updates.items() if value is not None]


def set_once(
    headers: Sequence[tuple[str, bytes]] | None, values: Mapping[str, bytes]
) -> HeaderList:
    """Add each header only where it is absent: ``x-original-*`` keeps the first value forever."""
    current = normalize(headers)
    present = {name for name, _ in current}
    return current + [(name, value) for name, value in values.items() if name not in present]


def decoded_text(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    """Every header as readable text, for people: invalid UTF-8 is shown with escapes."""
    return {
        name: value.decode("utf-8", errors="backslashreplace")
        for name, value in last_values(headers).items()
    }


# --- trace context and event identity -------------------------------------------------------------
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def new_event_id() -> str:
    return str(uuid.uuid4())


def new_traceparent() -> str:
    """A W3C ``traceparent`` for a new, sampled trace."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def is_valid_traceparent(value: str) -> bool:
    match = _TRACEPARENT.fullmatch(value)
    return bool(match) and set(match.group(1)) != {"0"} and set(match.group(2)) != {"0"}


# --- structured readers and the hop rewrite (processors) ------------------------------------------
RawHeaders = Sequence[tuple[str, bytes | None]]


@dataclass(frozen=True)
class RetryState:
    """The contract headers of an incoming record, decoded. Each field is a value, ``None``
    (header absent) or ``INVALID`` (present but garbage); nothing here raises."""

    attempts: int | _Invalid | None = None
    max_attempts: int | _Invalid | None = None
    due_at: int | _Invalid | None = None
    first_failure_at: int | _Invalid | None = None
    last_failure_at: int | _Invalid | None = None
    original_topic: str | _Invalid | None = None
    original_partition: int | _Invalid | None = None
    original_offset: int | _Invalid | None = None
    original_timestamp: int | _Invalid | None = None
    event_id: str | _Invalid | None = None


def read_retry_state(headers: RawHeaders | None) -> RetryState:
    """Decode the retry-state, original-location and ``ce_id`` headers (last occurrence wins)."""
    values: dict[str, bytes | None] = {name: value for name, value in headers or ()}

    def integer(name: str) -> int | _Invalid | None:
        return decode_int(values[name] or b"") if name in values else None

    def text(name: str) -> str | _Invalid | None:
        return decode_text(values[name] or b"") if name in values else None

    return RetryState(
        attempts=integer(ATTEMPTS),
        max_attempts=integer(MAX_ATTEMPTS),
        due_at=integer(RETRY_DUE_AT),
        first_failure_at=integer(FIRST_FAILURE_AT),
        last_failure_at=integer(LAST_FAILURE_AT),
        original_topic=text(ORIGINAL_TOPIC),
        original_partition=integer(ORIGINAL_PARTITION),
        original_offset=integer(ORIGINAL_OFFSET),
        original_timestamp=integer(ORIGINAL_TIMESTAMP),
        event_id=text(CE_ID),
    )


def rewrite(
    headers: RawHeaders | None,
    updates: Mapping[str, bytes | None],
    once: Mapping[str, bytes] | None = None,
) -> list[tuple[str, bytes | None]]:
    """The headers of a forwarded record: every header not named in ``updates`` keeps its
    position and exact value (a null value stays null); each updated name appears once, at the
    end, or not at all when its value is ``None``; each ``once`` header is added only if absent.
    """
    kept = [(name, value) for name, value in headers or () if name not in updates]
    result = kept + [(name, value) for name, value in updates.items() if value is not None]
    present = {name for name, _ in result}
    return result + [(n, v) for n, v in (once or {}).items() if n not in present]
