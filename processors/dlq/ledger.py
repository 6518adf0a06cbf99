"""The redrive ledger: which dead letters were redriven, when, by which run, and where to.

Kafka cannot delete a record, so a redrive *moves* a dead letter by remembering it: one record
per redriven dead letter in a compacted topic (``Settings.topic_redriven``), keyed by the dead
letter's ``topic:partition:offset`` (its ``ref``, the value of ``x-replay-of``). The value is a
small JSON object: the run id, the time, the target topic, where the new record went, and how
many times this dead letter was redriven. In exactly-once mode a replay writes the entry in the
same transaction as the republish, so a dead letter is redriven and recorded, or neither.

Reading never raises on content: an entry that is garbage, or points at a DLQ offset that
retention has removed (or that does not exist), is skipped and counted.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import orjson

from processors.core.envelope import Record
from processors.kafka import tail
from processors.settings import Settings

LEDGER_VERSION = 1


@dataclass(frozen=True, slots=True)
class Redrive:
    """One ledger entry: dead letter ``ref`` was redriven by ``run_id`` at ``at_ms`` (epoch ms)
    to ``target``, where it landed at ``partition``/``offset``; ``count`` redrives so far."""

    ref: str
    run_id: str
    at_ms: int
    target: str
    partition: int
    offset: int
    count: int = 1

    @property
    def landed(self) -> str:
        """``topic:partition:offset`` of the republished record."""
        return f"{self.target}:{self.partition}:{self.offset}"

    def encode(self) -> tuple[bytes, bytes]:
        """The ledger record's key and value."""
        value = {
            "v": LEDGER_VERSION,
            "run": self.run_id,
            "at": self.at_ms,
            "to": self.target,
            "p": self.partition,
            "o": self.offset,
            "n": self.count,
        }
        return self.ref.encode(), orjson.dumps(value)  # compact, as json.loads reads it

    @classmethod
    def decode(cls, key: bytes | None, value: bytes | None) -> Redrive | None:
        """The entry, or ``None`` when the record is not a readable ledger entry."""
        if key is None or value is None or parse_ref(key) is None:
            return None
        try:
            obj = json.loads(value)
            entry = cls(
                ref=key.decode(),
                run_id=sys.intern(obj["run"]),
                at_ms=obj["at"],
                target=sys.intern(obj["to"]),
                partition=obj["p"],
                offset=obj["o"],
                count=obj.get("n", 1),
            )
        except (ValueError, UnicodeDecodeError, KeyError, TypeError):
            return None
        typed = (
            isinstance(entry.run_id, str)
            and isinstance(entry.target, str)
            and all(isinstance(n, int) for n in (entry.at_ms, entry.partition, entry.offset))
            and isinstance(entry.count, int)
            and entry.count >= 1
        )
        return entry if typed else None


def redrive_json(entry: Redrive | None) -> dict[str, object]:
    """A dead letter's redrive state as JSON (``pending`` when ``entry`` is ``None``)."""
    if entry is None:
        return {"state": "pending"}
    return {
        "state": "redriven",
        "run_id": entry.run_id,
        "at_ms": entry.at_ms,
        "target": entry.target,
        "partition": entry.partition,
        "offset": entry.offset,
        "count": entry.count,
    }


def parse_ref(raw: bytes | str) -> tuple[str, int, int] | None:
    """``(topic, partition, offset)`` of ``topic:partition:offset``, or ``None``."""
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        return None
    topic, _, rest = text.rpartition(":")
    topic, _, partition = topic.rpartition(":")
    if not (topic and partition.isdigit() and rest.isdigit()):
        return None
    return topic, int(partition), int(rest)


@dataclass
class Ledger:
    """The redrive ledger as read: ``entries`` by dead-letter ref (the latest entry per key).

    ``garbage``: keys whose latest record is not a readable entry, or names another topic or a
    DLQ offset that never existed, plus records without a key; ``stale``: entries for dead
    letters retention has removed; ``missing``: the ledger topic does not exist (then every
    dead letter is pending). ``records``: ledger records read."""

    entries: dict[str, Redrive] = field(default_factory=dict)
    garbage_keys: set[bytes] = field(default_factory=set)
    stale_refs: set[str] = field(default_factory=set)
    unkeyed: int = 0
    missing: bool = False
    records: int = 0

    def __contains__(self, ref: object) -> bool:
        return ref in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def garbage(self) -> int:
        return len(self.garbage_keys) + self.unkeyed

    @property
    def stale(self) -> int:
        return len(self.stale_refs)

    def get(self, ref: str) -> Redrive | None:
        return self.entries.get(ref)

    def add(self, entry: Redrive) -> None:
        self.entries[entry.ref] = entry

    def apply(
        self,
        key: bytes | None,
        value: bytes | None,
        dlq_topic: str,
        dlq_marks: Mapping[int, tuple[int, int]],
    ) -> None:
        """Take one ledger record (in log order): the latest record of a key wins; a tombstone
        (null value) removes it."""
        self.records += 1
        if key is None:
            self.unkeyed += 1
            return
        self.garbage_keys.discard(key)
        where = parse_ref(key)
        ref = key.decode() if where is not None else ""
        self.entries.pop(ref, None)
        self.stale_refs.discard(ref)
        if value is None:
            return
        entry = Redrive.decode(key, value)
        marks = dlq_marks.get(where[1]) if where is not None and where[0] == dlq_topic else None
        if entry is None or where is None or marks is None or where[2] >= marks[1]:
            self.garbage_keys.add(key)
        elif where[2] < marks[0]:
            self.stale_refs.add(ref)
        else:
            self.entries[ref] = entry

    def expire(self, dlq_marks: Mapping[int, tuple[int, int]]) -> None:
        """Move the entries of dead letters below the DLQ's low watermarks to ``stale``."""
        gone = [
            ref
            for ref, entry in self.entries.items()
            if (where := parse_ref(ref)) is None or where[2] < dlq_marks.get(where[1], (0, 0))[0]
        ]
        for ref in gone:
            del self.entries[ref]
            self.stale_refs.add(ref)


def build(
    records: Iterable[Record], dlq_topic: str, dlq_marks: Mapping[int, tuple[int, int]]
) -> Ledger:
    """Pure: the ledger of ``records`` (in log order per partition), checked against the DLQ's
    watermarks ``{partition: (low, high)}``."""
    ledger = Ledger()
    for record in records:
        ledger.apply(record.key, record.value, dlq_topic, dlq_marks)
    return ledger


def read_ledger(
    settings: Settings,
    dlq_marks: Mapping[int, tuple[int, int]] | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    idle_timeout_s: float = 30.0,
) -> Ledger:
    """Read the whole ledger once (a command does this once; the cost grows with the number of
    redriven dead letters: see ``make bench``). Raises ``KafkaUnavailableError`` when Kafka
    stops answering for ``idle_timeout_s``."""
    topic = settings.topic_redriven
    marks = tail.watermarks(settings, [topic, settings.topic_dlq], timeout_s=idle_timeout_s)
    if dlq_marks is None:
        dlq_marks = marks[settings.topic_dlq]
    if not marks[topic]:
        return Ledger(missing=True)
    records = tail.scan(settings, topic, marks[topic], progress, idle_timeout_s=idle_timeout_s)
    return build(records, settings.topic_dlq, dlq_marks)


class LedgerCache:
    """The ledger kept up to date cheaply, for a page that refreshes every few seconds: each
    ``refresh`` reads only the ledger records written since the previous one, at most
    ``budget`` offsets within ``timeout_s`` (``complete`` says whether it caught up)."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.position: dict[int, int] = {}
        self.dlq_low: dict[int, int] = {}
        self.complete = False

    def refresh(self, settings: Settings, budget: int = 50_000, timeout_s: float = 3.0) -> Ledger:
        topic, dlq = settings.topic_redriven, settings.topic_dlq
        marks = tail.watermarks(settings, [topic, dlq], timeout_s=timeout_s)
        self.ledger.missing = not marks[topic]
        low = {p: lo for p, (lo, _) in marks[dlq].items()}
        if low != self.dlq_low:
            self.ledger.expire(marks[dlq])
            self.dlq_low = low
        ranges: dict[int, tuple[int, int]] = {}
        left = budget
        for partition, (first, high) in sorted(marks[topic].items()):
            start = max(first, self.position.get(partition, first))
            end = min(high, start + max(0, left))
            self.position[partition] = start
            if start < end:
                ranges[partition] = (start, end)
                left -= end - start
        started = time.monotonic()
        for record in tail.read_ranges(settings, topic, ranges, timeout_s):
            self.ledger.apply(record.key, record.value, dlq, marks[dlq])
            self.position[record.partition] = record.offset + 1
        if time.monotonic() - started < timeout_s * 0.9:
            # The read ended before its deadline, so each range was read to its end (the
            # offsets after the last record are transaction markers).
            self.position.update({p: end for p, (_, end) in ranges.items()})
        self.complete = all(self.position.get(p, hi) >= hi for p, (_, hi) in marks[topic].items())
        return self.ledger
