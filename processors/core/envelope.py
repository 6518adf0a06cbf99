"""The one record envelope: a Kafka record as consumed, position, time, key, value and headers.

Built here and only here (``from_message`` for a confluent-kafka ``Message``, ``from_quix`` for
what a Quix Streams callback receives) and losslessly: a null header value stays ``None``, a
repeated header name stays repeated and in order, bytes stay bytes. The processors, the tail
readers, the DLQ tools (replay too) and the dashboard all hold records in this one type.
No Kafka import: anything with the ``Message`` accessors will do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

Headers = tuple[tuple[str, bytes | None], ...]


class MessageLike(Protocol):
    """The accessors of ``confluent_kafka.Message`` the envelope reads."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def key(self) -> str | bytes | None: ...
    def value(self) -> str | bytes | None: ...
    def headers(self) -> list[tuple[str, bytes | None]] | None: ...


_set = object.__setattr__


@dataclass(frozen=True, slots=True, init=False)
class Record:
    """One consumed record. ``timestamp_ms`` is epoch milliseconds (``-1`` when unknown)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()

    # Written out (each field set once) because every record of every processor is built here.
    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, Any]] | None = (),
    ) -> None:
        _set(self, "topic", topic)
        _set(self, "partition", partition)
        _set(self, "offset", offset)
        _set(self, "timestamp_ms", timestamp_ms)
        _set(self, "key", key)
        _set(self, "value", value)
        # A list given by a caller becomes a tuple: the record stays immutable.
        _set(self, "headers", _headers(headers))

    @property
    def ref(self) -> str:
        """``topic:partition:offset``, the record's address (used by ``x-replay-of``)."""
        return f"{self.topic}:{self.partition}:{self.offset}"


def _bytes(data: str | bytes | None) -> bytes | None:
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    return bytes(data)


def _headers(headers: Iterable[tuple[str, Any]] | None) -> Headers:
    if not headers:
        return ()
    items = tuple(headers)
    for item in items:  # the common case: (str, bytes | None) pairs already, kept as they are
        if (
            type(item) is not tuple
            or len(item) != 2
            or type(item[0]) is not str
            or (item[1] is not None and type(item[1]) is not bytes)
        ):
            return tuple((str(name), _bytes(value)) for name, value in items)
    return items


def from_message(message: MessageLike) -> Record:
    """The envelope of a consumed confluent-kafka ``Message`` (one without an error)."""
    return Record(  # positional, here and below: every record of every reader comes here
        message.topic() or "",
        _int(message.partition()),
        _int(message.offset()),
        message.timestamp()[1],
        _bytes(message.key()),
        _bytes(message.value()),
        message.headers() or (),  # normalized once, by Record itself
    )


def from_quix(context: Any, value: Any, key: Any, timestamp_ms: int, headers: Any) -> Record:
    """The envelope of a record in a Quix Streams callback (``metadata=True``): Quix hands over
    value, key, timestamp and headers, and ``message_context()`` the position."""
    return Record(
        context.topic,
        context.partition,
        context.offset,
        timestamp_ms,
        # Quix hands over bytes already (the bytes deserializers): no call for those.
        key if key is None or type(key) is bytes else _bytes(key),
        value if value is None or type(value) is bytes else _bytes(value),
        headers or (),
    )


def _int(value: int | None) -> int:
    return -1 if value is None else value
