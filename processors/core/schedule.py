"""Records waiting for their due time, per partition, in memory (pure: the caller passes now).

Each assigned partition of the retry topic has a heap ordered by (due time, offset) and the
offset progress that says what may be committed. Records that are due leave in due-time order
across all partitions, so a long-delay record never holds back a shorter one behind it.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from processors.core.progress import PartitionProgress

T = TypeVar("T")
TopicPartitionKey = tuple[str, int]


@dataclass(order=True)
class Held(Generic[T]):
    due_ms: int
    offset: int
    partition: TopicPartitionKey = field(compare=False)
    record: T = field(compare=False)
    received_ms: int = field(compare=False, default=0)


class PartitionQueue(Generic[T]):
    """One partition: its waiting records and its offset progress."""

    def __init__(
        self,
        key: TopicPartitionKey,
        committed: int | None,
        metadata: str | None,
        capacity: int,
    ) -> None:
        self.key = key
        self.capacity = capacity
        self.committed = committed if committed is not None and committed >= 0 else None
        self.committed_metadata = metadata or ""
        self.progress = PartitionProgress(self.committed, self.committed_metadata)
        self.heap: list[Held[T]] = []
        self.paused = False
        self.first_offset: int | None = None

    def admit(self, offset: int, due_ms: int, record: T, now_ms: int) -> bool:
        """Hold a delivered record; ``False`` when it was finished before (skip it)."""
        if not self.progress.admit(offset):
            return False
        if self.first_offset is None:
            self.first_offset = offset
        heapq.heappush(self.heap, Held(due_ms, offset, self.key, record, now_ms))
        return True

    def head(self) -> Held[T] | None:
        return self.heap[0] if self.heap else None

    def pop(self) -> Held[T]:
        return heapq.heappop(self.heap)

    def finish(self, offset: int) -> None:
        self.progress.finish(offset)

    @property
    def full(self) -> bool:
        return len(self.heap) >= self.capacity

    @property
    def drained(self) -> bool:
        """Below the resume mark: a paused partition may fetch again."""
        return len(self.heap) <= self.capacity // 2

    def commit_point(self) -> tuple[int, str] | None:
        """``(offset, metadata)`` to commit now, or ``None`` if unchanged since the last commit."""
        position = self.progress.position()
        if position is None:
            return None
        metadata = self.progress.metadata()
        if position == self.committed and metadata == self.committed_metadata:
            return None
        return position, metadata

    def committed_at(self, offset: int, metadata: str) -> None:
        self.committed, self.committed_metadata = offset, metadata

    def rewound(self) -> PartitionQueue[T]:
        """A fresh queue restarting from the last commit (after an aborted transaction)."""
        fresh: PartitionQueue[T] = PartitionQueue(
            self.key, self.committed, self.committed_metadata, self.capacity
        )
        return fresh

    def restart_offset(self) -> int | None:
        """Where to seek for a rewind: the committed offset, else the first offset read."""
        return self.committed if self.committed is not None else self.first_offset


class Schedule(Generic[T]):
    """All assigned partitions' queues."""

    def __init__(self) -> None:
        self.queues: dict[TopicPartitionKey, PartitionQueue[T]] = {}

    def next_due(self) -> int | None:
        heads = [q.heap[0].due_ms for q in self.queues.values() if q.heap]
        return min(heads) if heads else None

    def pop_due(self, now_ms: int) -> Held[T] | None:
        """The earliest record due at ``now_ms`` across all partitions (ties by offset)."""
        best: PartitionQueue[T] | None = None
        for queue in self.queues.values():
            head = queue.head()
            if head is None or head.due_ms > now_ms:
                continue
            if best is None or head < best.heap[0]:
                best = queue
        return best.pop() if best is not None else None

    @property
    def waiting(self) -> int:
        return sum(len(q.heap) for q in self.queues.values())
