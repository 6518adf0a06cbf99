"""Which dead letters an operation applies to. Pure: no Kafka, no clock."""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass, fields
from typing import Literal

from processors.dlq.model import DeadLetter

State = Literal["pending", "redriven"]
STATES: tuple[State, ...] = ("pending", "redriven")


@dataclass(frozen=True)
class DlqFilter:
    """Every set field must match (AND). An empty filter matches every dead letter.

    - ``reason``, ``error_category``: exact (``x-dlq-reason``, ``x-error-category``);
    - ``error_class``: case-insensitive substring of ``x-error-class`` (``PaymentTimeout``
      matches ``processors.handler.PaymentTimeout``);
    - ``order_id``: exact, against the order id (record key, else the payload's ``order_id``)
      or the raw key text;
    - ``since_ms`` (inclusive) / ``until_ms`` (exclusive): when it was dead-lettered
      (``x-dlq-at``, else the record timestamp);
    - ``partition`` / ``offset`` / ``positions``: the DLQ record's own location; ``positions``
      is a set of ``(partition, offset)`` pairs, e.g. rows selected in the dashboard;
    - ``state``: ``pending`` (never redriven) or ``redriven``, as the redrive ledger says (the
      caller passes the ledger's refs to ``matches``).
    """

    reason: str | None = None
    error_class: str | None = None
    error_category: str | None = None
    order_id: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    partition: int | None = None
    offset: int | None = None
    positions: frozenset[tuple[int, int]] | None = None
    state: State | None = None

    @property
    def names_letters(self) -> bool:
        """Whether it picks dead letters by name (order id, offset, or ``redriven``): an
        explicit choice to redrive them, redriven before or not."""
        return self.order_id is not None or self.offset is not None or self.state == "redriven"

    @property
    def reads_content(self) -> bool:
        """Whether it reads a dead letter's context (headers or payload), not only its location
        and ledger state: a replay decodes only what it needs when it does not."""
        return any(
            value is not None
            for value in (
                self.reason,
                self.error_class,
                self.error_category,
                self.order_id,
                self.since_ms,
                self.until_ms,
            )
        )

    def matches(self, letter: DeadLetter, redriven: Container[str] = ()) -> bool:
        """``redriven``: refs of the dead letters the ledger lists (for ``state``)."""
        if self.state is not None and (letter.ref in redriven) != (self.state == "redriven"):
            return False
        if self.reason is not None and letter.reason != self.reason:
            return False
        if self.error_category is not None and letter.error_category != self.error_category:
            return False
        if self.error_class is not None and (
            letter.error_class is None or self.error_class.lower() not in letter.error_class.lower()
        ):
            return False
        if self.order_id is not None and self.order_id not in (letter.order_id, letter.key_text):
            return False
        if self.since_ms is not None and letter.failed_at < self.since_ms:
            return False
        if self.until_ms is not None and letter.failed_at >= self.until_ms:
            return False
        if self.partition is not None and letter.partition != self.partition:
            return False
        if self.offset is not None and letter.offset != self.offset:
            return False
        return self.positions is None or (letter.partition, letter.offset) in self.positions

    def ranges(self, marks: Mapping[int, tuple[int, int]]) -> dict[int, tuple[int, int]]:
        """The offset ranges ``{partition: (start, end)}`` worth reading, given the DLQ's
        watermarks: location filters narrow them, every other filter needs a full read."""
        result = {}
        for partition, (low, high) in marks.items():
            if self.partition is not None and partition != self.partition:
                continue
            start, end = low, high
            if self.offset is not None:
                start, end = max(low, self.offset), min(high, self.offset + 1)
            if self.positions is not None:
                mine = [o for p, o in self.positions if p == partition]
                if not mine:
                    continue
                start, end = max(start, min(mine)), min(end, max(mine) + 1)
            if start < end:
                result[partition] = (start, end)
        return result

    def describe(self) -> str:
        """``reason=non_retryable order_id=ord-1`` (``all`` when empty), for logs and reports."""
        parts = []
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None:
                continue
            if item.name == "positions":
                value = ",".join(f"{p}:{o}" for p, o in sorted(value))
            parts.append(f"{item.name}={value}")
        return " ".join(parts) or "all"

    def fingerprint(self) -> str:
        """A stable text identity of this filter (used to recognise a resumed replay)."""
        return self.describe()
