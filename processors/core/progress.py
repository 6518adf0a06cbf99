"""Out-of-order offset progress of one partition, and its compact commit-metadata encoding.

The retry processor finishes records in due-time order, not offset order. Kafka stores one
committed offset per partition, so we commit the lowest offset not yet finished and describe
the finished offsets above it in the commit's metadata string. Encoded as the complement:
``read_upto`` (every offset below it was read) and the offsets still pending, so transaction
markers and aborted records between finished ones cost nothing, and the size is bounded by the
number of pending records, not by how far the reader ran ahead.

Format ``o1:<n>:<ranges>``, numbers in base 36 relative to the committed offset ``c``:
``n = read_upto - c``; ``ranges`` is a comma list of ``a`` or ``a-b`` (inclusive) pending
offsets. Example: committed 1000, read up to 1500, pending {1000, 1003, 1004, 1200}:
``o1:dw:0,3-4,5k``. An empty string means "nothing finished above the committed offset".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PREFIX = "o1"
# Kafka's default offset.metadata.max.bytes is 4096; stay well below it.
METADATA_BUDGET = 3500
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(number: int) -> str:
    if number == 0:
        return "0"
    out = []
    while number:
        number, rest = divmod(number, 36)
        out.append(_DIGITS[rest])
    return "".join(reversed(out))


def _ranges(sorted_values: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in sorted_values:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def encode(committed: int, read_upto: int, pending: Iterable[int]) -> str:
    """The metadata for ``committed``; ``""`` when nothing above it is finished."""
    if read_upto <= committed:
        return ""
    relative = sorted(offset - committed for offset in pending)
    runs = ",".join(_b36(a) if a == b else f"{_b36(a)}-{_b36(b)}" for a, b in _ranges(relative))
    return f"{PREFIX}:{_b36(read_upto - committed)}:{runs}"


@dataclass(frozen=True)
class Snapshot:
    """Decoded metadata: every offset in ``[committed, read_upto)`` is finished unless pending."""

    read_upto: int
    pending: frozenset[int]


def decode(committed: int, metadata: str | None) -> Snapshot | None:
    """The snapshot encoded for ``committed``; ``None`` for an empty, foreign or corrupt string
    (the caller then treats every offset from ``committed`` on as not finished)."""
    if not metadata:
        return None
    try:
        prefix, span, runs = metadata.split(":")
        if prefix != PREFIX:
            return None
        read_upto = committed + int(span, 36)
        pending: set[int] = set()
        for run in filter(None, runs.split(",")):
            first, _, last = run.partition("-")
            a, b = int(first, 36), int(last or first, 36)
            if not 0 <= a <= b or committed + b >= read_upto or b - a > 1_000_000:
                return None
            pending.update(range(committed + a, committed + b + 1))
    except ValueError:
        return None
    if read_upto <= committed:
        return None
    return Snapshot(read_upto=read_upto, pending=frozenset(pending))


class PartitionProgress:
    """Which offsets of one partition are finished.

    ``admit`` each delivered offset (``False``: finished before, skip it), ``finish`` it once
    its output is written, and commit ``position()`` with ``metadata()`` in the same transaction
    as those outputs.
    """

    def __init__(self, committed: int | None = None, metadata: str | None = None) -> None:
        # Offsets below ``floor`` are finished (committed). None: nothing committed yet.
        self.floor: int | None = committed if committed is not None and committed >= 0 else None
        self.read_upto: int | None = self.floor
        self.pending: set[int] = set()
        self.restored_pending = 0
        if self.floor is not None:
            snapshot = decode(self.floor, metadata)
            if snapshot is not None:
                self.read_upto = snapshot.read_upto
                self.pending = set(snapshot.pending)
                self.restored_pending = len(snapshot.pending)

    def finished(self, offset: int) -> bool:
        """Whether ``offset`` was finished before (a re-read after a restart or rebalance)."""
        if self.floor is not None and offset < self.floor:
            return True
        return self.read_upto is not None and offset < self.read_upto and offset not in self.pending

    def admit(self, offset: int) -> bool:
        """Record that ``offset`` was delivered; ``False`` if it was finished already."""
        if self.finished(offset):
            return False
        self.pending.add(offset)
        self.read_upto = max(self.read_upto or 0, offset + 1)
        return True

    def finish(self, offset: int) -> None:
        self.pending.discard(offset)

    def position(self) -> int | None:
        """The offset to commit: the lowest one not finished (``None``: nothing read yet)."""
        if self.pending:
            return min(self.pending)
        return self.read_upto

    def metadata(self) -> str:
        position = self.position()
        if position is None or self.read_upto is None:
            return ""
        return encode(position, self.read_upto, self.pending)
