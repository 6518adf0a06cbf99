"""Reading dead letters: the newest matching ones, one by location, or all of them as JSONL."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Container, Iterator
from typing import TextIO

from processors.dlq.filters import DlqFilter
from processors.dlq.ledger import Ledger, redrive_json
from processors.dlq.model import DeadLetter
from processors.kafka import tail
from processors.settings import Settings

logger = logging.getLogger(__name__)

# How many DLQ offsets one list call reads at most, so a filter that matches little stays cheap.
DEFAULT_MAX_SCAN = 20_000


def search_dead_letters(
    settings: Settings,
    flt: DlqFilter | None = None,
    limit: int = 50,
    *,
    max_scan: int | None = DEFAULT_MAX_SCAN,
    timeout_s: float = 10.0,
    progress: Callable[[int], None] | None = None,
    redriven: Container[str] = (),
    seen: Callable[[DeadLetter], None] | None = None,
) -> tuple[list[DeadLetter], bool]:
    """The newest ``limit`` matching dead letters, and whether the search covered every
    candidate offset (``False`` when it stopped at ``max_scan`` offsets).

    Reads backwards from the end of each partition in growing pages, never the whole topic
    unless the filter matches that little and ``max_scan`` is ``None``. At most ``max_scan``
    offsets are read in all (markers included): the last page is cut to what is left of it, so
    an incomplete search covered exactly ``max_scan``. ``progress`` receives the offsets each
    page covers. A page cut short by ``timeout_s`` still counts as covered. ``redriven``: the
    ledger's refs, for a ``state`` filter; ``seen`` is shown every dead letter read (matching
    or not), e.g. to find which ones were dead-lettered again after a redrive.
    """
    flt = flt or DlqFilter()
    if limit <= 0:
        return [], True
    marks = tail.watermarks(settings, [settings.topic_dlq], timeout_s)[settings.topic_dlq]
    bounds = flt.ranges(marks)
    cursor = {p: end for p, (_, end) in bounds.items()}
    found: dict[int, list[DeadLetter]] = {p: [] for p in bounds}
    page = max(limit, 100)
    scanned = 0
    while True:
        wanted = {
            p: min(page, cursor[p] - bounds[p][0])
            for p in bounds
            if cursor[p] > bounds[p][0] and len(found[p]) < limit
        }
        if not wanted:
            complete = True
            break
        if max_scan is not None and scanned >= max_scan:
            complete = False
            break
        sizes = wanted if max_scan is None else _share(wanted, max_scan - scanned)
        window = {p: (cursor[p] - n, cursor[p]) for p, n in sizes.items() if n > 0}
        for record in tail.read_ranges(settings, settings.topic_dlq, window, timeout_s):
            letter = DeadLetter.from_record(record)
            if seen is not None:
                seen(letter)
            if flt.matches(letter, redriven):
                found[record.partition].append(letter)
        covered = sum(sizes.values())
        scanned += covered
        if progress is not None:
            progress(covered)
        cursor.update({p: start for p, (start, _) in window.items()})
        page *= 2
    letters = [letter for group in found.values() for letter in group]
    letters.sort(key=lambda d: (d.failed_at, d.timestamp_ms, d.offset, d.partition), reverse=True)
    if not complete:
        logger.info("dlq_list=partial scanned=%d filter=%r", scanned, flt.describe())
    return letters[:limit], complete


def _share(wanted: dict[int, int], budget: int) -> dict[int, int]:
    """``wanted`` offsets per partition, cut so they add up to at most ``budget``: each
    partition gets an even share of what is left, smallest wants first, so none is wasted."""
    if sum(wanted.values()) <= budget:
        return wanted
    sizes = {}
    for i, (partition, want) in enumerate(sorted(wanted.items(), key=lambda item: item[::-1])):
        sizes[partition] = min(want, budget // (len(wanted) - i))
        budget -= sizes[partition]
    return sizes


def list_dead_letters(
    settings: Settings,
    flt: DlqFilter | None = None,
    limit: int = 50,
    redriven: Container[str] = (),
) -> list[DeadLetter]:
    """The newest ``limit`` dead letters matching ``flt``, newest first (bounded read; see
    ``search_dead_letters``)."""
    return search_dead_letters(settings, flt, limit, redriven=redriven)[0]


def get_dead_letter(
    settings: Settings, partition: int, offset: int, timeout_s: float = 10.0
) -> DeadLetter | None:
    """The dead letter at ``partition``/``offset`` of the DLQ topic, or ``None``."""
    records = tail.read_range(
        settings, settings.topic_dlq, partition, offset, offset + 1, timeout_s
    )
    return DeadLetter.from_record(records[0]) if records else None


def iter_dead_letters(
    settings: Settings,
    flt: DlqFilter | None = None,
    progress: Callable[[int], None] | None = None,
    redriven: Container[str] = (),
    seen: Callable[[DeadLetter], None] | None = None,
) -> Iterator[DeadLetter]:
    """Every matching dead letter, oldest first per partition. Reads the whole DLQ (within
    the filter's location bounds); ``progress`` receives offsets covered; ``redriven`` and
    ``seen`` as for ``search_dead_letters``."""
    flt = flt or DlqFilter()
    marks = tail.watermarks(settings, [settings.topic_dlq])[settings.topic_dlq]
    for record in tail.scan(settings, settings.topic_dlq, flt.ranges(marks), progress):
        letter = DeadLetter.from_record(record)
        if seen is not None:
            seen(letter)
        if flt.matches(letter, redriven):
            yield letter


def dlq_size(settings: Settings, flt: DlqFilter | None = None) -> int:
    """Offsets a full read under ``flt`` covers (markers included): the size of a progress bar."""
    flt = flt or DlqFilter()
    marks = tail.watermarks(settings, [settings.topic_dlq])[settings.topic_dlq]
    return sum(end - start for start, end in flt.ranges(marks).values())


def export_jsonl(
    settings: Settings,
    flt: DlqFilter | None,
    out: TextIO,
    progress: Callable[[int], None] | None = None,
    ledger: Ledger | None = None,
) -> int:
    """Write every matching dead letter to ``out`` as one JSON object per line (see
    ``DeadLetter.to_json``: key, value and headers lossless, context decoded). Returns the
    number written. Reads the whole DLQ. With ``ledger``, each object also carries its
    ``redrive`` state."""
    count = 0
    for letter in iter_dead_letters(settings, flt, progress, ledger or ()):
        obj = letter.to_json()
        if ledger is not None:
            obj["redrive"] = redrive_json(ledger.get(letter.ref))
        out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        count += 1
    return count
