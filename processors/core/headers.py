"""The header contract: every header name orderflow reads or writes, and one codec for each kind
of value. Values are UTF-8 text; numbers are ASCII decimal; times are epoch milliseconds.

``encode`` is the one writer and ``decode`` the one reader of the contract: every processor,
replay, DLQ tool and dashboard page goes through them. Decoding never raises: a missing header
decodes to ``None`` and garbage decodes to ``INVALID``, so callers decide deliberately what a
malformed record means. See docs/headers.md.
"""

from __future__ import annotations

import functools
import re
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, Final, NamedTuple

# Header lists as confluent-kafka hands them over: ordered (name, value) pairs, where a name may
# repeat and a value may be null. Kept exactly like that (see processors/core/envelope.py).
HeaderList = list[tuple[str, bytes | None]]
RawHeaders = Sequence[tuple[str, bytes | None]]

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
_SMALL_INTS_END: Final = 1024
_SMALL_INTS: Final = tuple(str(n).encode("ascii") for n in range(_SMALL_INTS_END))


# --- primitive codecs -----------------------------------------------------------------------------
def encode_int(value: int) -> bytes:
    number = int(value)  # whatever a caller hands ``encode`` for a number header
    if 0 <= number < _SMALL_INTS_END:  # attempts and partitions: on every outcome record
        return _SMALL_INTS[number]
    return str(number).encode("ascii")


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
def last_values(headers: RawHeaders | None) -> dict[str, bytes | None]:
    """Name → value, the last occurrence winning (Kafka allows repeated names)."""
    return {name: value for name, value in headers or ()}


def display_text(raw: bytes | None) -> str | None:
    """A header value as text for people: invalid UTF-8 shown as ``\\x..`` escapes."""
    return None if raw is None else raw.decode("utf-8", errors="backslashreplace")


def decoded_text(headers: RawHeaders | None) -> dict[str, str | None]:
    """Every header as readable text (last occurrence wins; a null value stays ``None``)."""
    return {name: display_text(value) for name, value in last_values(headers).items()}


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


# --- the codec: one kind per contract header ------------------------------------------------------
INT, TEXT, TAIL = "int", "text", "tail"  # TAIL: text cut from the front (stack traces)
KINDS: Final[dict[str, str]] = {
    ATTEMPTS: INT,
    MAX_ATTEMPTS: INT,
    RETRY_DUE_AT: INT,
    FIRST_FAILURE_AT: INT,
    LAST_FAILURE_AT: INT,
    ORIGINAL_TOPIC: TEXT,
    ORIGINAL_PARTITION: INT,
    ORIGINAL_OFFSET: INT,
    ORIGINAL_TIMESTAMP: INT,
    ERROR_CLASS: TEXT,
    ERROR_MESSAGE: TEXT,
    ERROR_CATEGORY: TEXT,
    PROCESSOR: TEXT,
    CONSUMER_GROUP: TEXT,
    DLQ_REASON: TEXT,
    DLQ_AT: INT,
    ERROR_STACKTRACE: TAIL,
    REPLAY_COUNT: INT,
    REPLAYED_AT: INT,
    REPLAY_OF: TEXT,
    CE_ID: TEXT,
    CE_SOURCE: TEXT,
    CE_TYPE: TEXT,
    CE_TIME: TEXT,
    CE_SPECVERSION: TEXT,
    CONTENT_TYPE: TEXT,
    TRACEPARENT: TEXT,
}


def encode(values: Mapping[str, object]) -> dict[str, bytes | None]:
    """Contract header values as bytes, the one place any writer encodes them: numbers as ASCII
    decimal, text as UTF-8 cut to ``ERROR_MESSAGE_LIMIT`` bytes (stack traces keep their end,
    within ``STACKTRACE_LIMIT``). ``None`` stays ``None`` (for ``rewrite``: remove the header)."""
    encoders = _ENCODERS
    return {
        name: None if value is None else encoders[name](value) for name, value in values.items()
    }


def _encode_message(value: object) -> bytes:
    return encode_text(str(value), ERROR_MESSAGE_LIMIT)


def _encode_trace(value: object) -> bytes:
    return encode_text_tail(str(value), STACKTRACE_LIMIT)


# Each header's encoder, looked up once per value (writers encode a dozen headers per failure).
_ENCODERS: Final[dict[str, Callable[[object], bytes]]] = {
    name: {INT: encode_int, TEXT: _encode_message, TAIL: _encode_trace}[kind]
    for name, kind in KINDS.items()
}


Decoded = int | str | _Invalid | None


def decode_value(name: str, raw: bytes | None) -> Decoded:
    """One present contract header's value, decoded by its kind; a null value is garbage."""
    if raw is None:
        return INVALID
    return decode_int(raw) if KINDS[name] == INT else decode_text(raw)


class Contract(NamedTuple):
    """The contract headers of a record, decoded. Each field is a value, ``None`` (header
    absent) or ``INVALID`` (present but garbage); nothing here raises. Last occurrence wins.
    A named tuple, not a frozen dataclass: as immutable, and built 4× faster (every record)."""

    attempts: int | _Invalid | None = None
    max_attempts: int | _Invalid | None = None
    due_at: int | _Invalid | None = None
    first_failure_at: int | _Invalid | None = None
    last_failure_at: int | _Invalid | None = None
    original_topic: str | _Invalid | None = None
    original_partition: int | _Invalid | None = None
    original_offset: int | _Invalid | None = None
    original_timestamp: int | _Invalid | None = None
    error_class: str | _Invalid | None = None
    error_message: str | _Invalid | None = None
    error_category: str | _Invalid | None = None
    processor: str | _Invalid | None = None
    consumer_group: str | _Invalid | None = None
    dlq_reason: str | _Invalid | None = None
    dlq_at: int | _Invalid | None = None
    stacktrace: str | _Invalid | None = None
    replay_count: int | _Invalid | None = None
    replayed_at: int | _Invalid | None = None
    replay_of: str | _Invalid | None = None
    event_id: str | _Invalid | None = None
    traceparent: str | _Invalid | None = None


_CONTRACT_FIELDS: Final = {
    "attempts": ATTEMPTS,
    "max_attempts": MAX_ATTEMPTS,
    "due_at": RETRY_DUE_AT,
    "first_failure_at": FIRST_FAILURE_AT,
    "last_failure_at": LAST_FAILURE_AT,
    "original_topic": ORIGINAL_TOPIC,
    "original_partition": ORIGINAL_PARTITION,
    "original_offset": ORIGINAL_OFFSET,
    "original_timestamp": ORIGINAL_TIMESTAMP,
    "error_class": ERROR_CLASS,
    "error_message": ERROR_MESSAGE,
    "error_category": ERROR_CATEGORY,
    "processor": PROCESSOR,
    "consumer_group": CONSUMER_GROUP,
    "dlq_reason": DLQ_REASON,
    "dlq_at": DLQ_AT,
    "stacktrace": ERROR_STACKTRACE,
    "replay_count": REPLAY_COUNT,
    "replayed_at": REPLAYED_AT,
    "replay_of": REPLAY_OF,
    "event_id": CE_ID,
    "traceparent": TRACEPARENT,
}


# What a first attempt (a record on the main topic) reads: its identity and where it was first
# read. Its retry state is ignored by definition (docs/headers.md), so it is not decoded.
FIRST_ATTEMPT: Final = frozenset({CE_ID, ORIGINAL_TOPIC, ORIGINAL_PARTITION, ORIGINAL_OFFSET})


def decode(headers: RawHeaders | None, only: frozenset[str] | None = None) -> Contract:
    """Decode the contract headers of a header list: the one reader of the contract. ``only``
    (header names, e.g. ``FIRST_ATTEMPT``) decodes just those; every other field stays ``None``.
    """
    wanted = _POSITION if only is None else _positions(only)
    raw: dict[str, bytes | None] = {}
    for name, value in headers or ():  # the last occurrence wins
        if name in wanted:
            raw[name] = value
    if not raw:
        return _NOTHING
    fields: list[Decoded] = [None] * len(_POSITION)
    for name, value in raw.items():
        fields[wanted[name]] = decode_value(name, value)
    return tuple.__new__(Contract, fields)  # positional: every record comes here


_POSITION: Final = {name: Contract._fields.index(field) for field, name in _CONTRACT_FIELDS.items()}
_NOTHING: Final = Contract()


@functools.cache
def _positions(only: frozenset[str]) -> dict[str, int]:
    """The positions of the contract headers among ``only`` (a handful of sets, each once)."""
    return {name: index for name, index in _POSITION.items() if name in only}


def known(value: Decoded) -> Any:
    """The decoded value, or ``None`` where the header is absent or garbage (for display)."""
    return None if value is INVALID else value


# --- the hop rewrite (processors and replay) ------------------------------------------------------
def rewrite(
    headers: RawHeaders | None,
    updates: Mapping[str, bytes | None],
    once: Mapping[str, bytes | None] | None = None,
) -> HeaderList:
    """The headers of a forwarded record: every header not named in ``updates`` keeps its
    position and exact value (a null value stays null); each updated name appears once, at the
    end, or not at all when its value is ``None``; each ``once`` header is added only if absent.
    """
    # The kept pairs are the same tuples: nothing is re-packed per header.
    result = [pair for pair in headers or () if pair[0] not in updates]
    result += [(name, value) for name, value in updates.items() if value is not None]
    if once:
        present = set(map(itemgetter(0), result))
        result += [(n, v) for n, v in once.items() if n not in present and v is not None]
    return result
