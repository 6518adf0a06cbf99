"""Counts over dead letters: by reason, error class, category, age and partition."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from processors.dlq.filters import DlqFilter
from processors.dlq.ledger import Ledger, read_ledger
from processors.dlq.model import REPLAY_LIMIT, DeadLetter
from processors.kafka import tail
from processors.settings import Settings

HOUR_MS = 3_600_000
# (label, upper bound in ms, exclusive); the last bucket is open-ended.
AGE_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("< 1 h", HOUR_MS),
    ("1–24 h", 24 * HOUR_MS),
    ("1–7 d", 7 * 24 * HOUR_MS),
    ("> 7 d", None),
)
NONE_LABEL = "(none)"


def age_bucket(age_ms: int) -> str:
    for label, upper in AGE_BUCKETS:
        if upper is None or age_ms < upper:
            return label
    raise AssertionError("unreachable")


@dataclass
class DlqStats:
    """Counts of the dead letters read. ``by_age`` has every bucket of ``AGE_BUCKETS`` in order
    (zeros included); the other maps are most common first. Missing headers count as
    ``(none)``. ``offsets`` is how many DLQ offsets were covered (transaction markers included).

    Redrive state, from the ledger: ``pending`` (never redriven: what is left to do) and
    ``redriven``; ``failed_again``: redriven ones whose redriven record was dead-lettered again
    (a later dead letter's ``x-replay-of`` names them); ``by_run``: redrive run id → dead
    letters it moved, newest run first; ``ledger_garbage`` / ``ledger_stale``: ledger entries
    skipped (unreadable / pointing at dead letters retention removed); ``ledger_missing``: no
    ledger topic (every dead letter counts as pending)."""

    total: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_error_class: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    by_age: dict[str, int] = field(default_factory=dict)
    by_partition: dict[int, int] = field(default_factory=dict)
    oldest_ms: int | None = None
    newest_ms: int | None = None
    replayed: int = 0
    at_replay_limit: int = 0
    offsets: int = 0
    pending: int = 0
    redriven: int = 0
    failed_again: int = 0
    by_run: dict[str, int] = field(default_factory=dict)
    ledger_garbage: int = 0
    ledger_stale: int = 0
    ledger_missing: bool = False


def summarize(letters: Iterable[DeadLetter], now_ms: int, ledger: Ledger | None = None) -> DlqStats:
    """Pure: the stats of ``letters`` as seen at ``now_ms``, with their redrive state from
    ``ledger`` (none: all pending)."""
    ledger = ledger or Ledger()
    runs: Counter[str] = Counter()
    last_run_at: dict[str, int] = {}
    reasons: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    ages: Counter[str] = Counter()
    partitions: Counter[int] = Counter()
    stats = DlqStats()
    for letter in letters:
        stats.total += 1
        reasons[letter.reason or NONE_LABEL] += 1
        classes[letter.error_class or NONE_LABEL] += 1
        categories[letter.error_category or NONE_LABEL] += 1
        ages[age_bucket(letter.age_ms(now_ms))] += 1
        partitions[letter.partition] += 1
        entry = ledger.get(letter.ref)
        if entry is None:
            stats.pending += 1
        else:
            stats.redriven += 1
            runs[entry.run_id] += 1
            last_run_at[entry.run_id] = max(last_run_at.get(entry.run_id, 0), entry.at_ms)
        at = letter.failed_at
        stats.oldest_ms = at if stats.oldest_ms is None else min(stats.oldest_ms, at)
        stats.newest_ms = at if stats.newest_ms is None else max(stats.newest_ms, at)
        if letter.replay_count is None or letter.replay_count >= 1:
            stats.replayed += 1
        if letter.replay_count is None or letter.replay_count >= REPLAY_LIMIT:
            stats.at_replay_limit += 1
    stats.by_reason = dict(reasons.most_common())
    stats.by_error_class = dict(classes.most_common())
    stats.by_category = dict(categories.most_common())
    stats.by_age = {label: ages[label] for label, _ in AGE_BUCKETS}
    stats.by_partition = dict(sorted(partitions.items()))
    stats.by_run = {run: runs[run] for run in sorted(runs, key=last_run_at.get, reverse=True)}
    stats.ledger_garbage, stats.ledger_stale = ledger.garbage, ledger.stale
    stats.ledger_missing = ledger.missing
    return stats


def dlq_stats(
    settings: Settings,
    flt: DlqFilter | None = None,
    *,
    now_ms: int | None = None,
    progress: Callable[[int], None] | None = None,
    ledger: Ledger | None = None,
) -> DlqStats:
    """Stats of every dead letter matching ``flt``. This reads the whole DLQ topic and the
    redrive ledger once each (cost grows with their size): for live counts use
    ``tail.topic_totals``. ``progress`` receives offsets covered, out of ``sum(high - low)`` of
    the DLQ's watermarks. Ages are measured from ``now_ms`` (default: the current time).
    ``ledger``: one already read (else it is read here)."""
    flt = flt or DlqFilter()
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    marks = tail.watermarks(settings, [settings.topic_dlq])[settings.topic_dlq]
    ledger = read_ledger(settings, marks) if ledger is None else ledger
    ranges = flt.ranges(marks)
    relapsed: set[str] = set()
    redriven_refs: list[str] = []

    def matching() -> Iterable[DeadLetter]:
        for record in tail.scan(settings, settings.topic_dlq, ranges, progress):
            letter = DeadLetter.from_record(record)
            if letter.replay_of:
                relapsed.add(letter.replay_of)
            if flt.matches(letter, ledger):
                if letter.ref in ledger:
                    redriven_refs.append(letter.ref)
                yield letter

    stats = summarize(matching(), now_ms, ledger)
    stats.failed_again = sum(ref in relapsed for ref in redriven_refs)
    stats.offsets = sum(end - start for start, end in ranges.values())
    return stats
