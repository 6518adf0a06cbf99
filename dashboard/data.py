"""Collect: every Kafka read and write the dashboard makes, through the shared library only.

Plain functions of ``Settings`` (no Streamlit), each bounded in time and in records, none of
which creates a consumer group: counts come from watermarks, records from tail reads
(assign + seek from the end). Failures surface as ``OrderflowError`` subclasses, typically
``KafkaUnavailableError``, for the page to show as a banner.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass

from dashboard.shape import RecordCounts
from processors import dlq, producer
from processors.core.envelope import Record
from processors.dlq import DeadLetter, DlqFilter, Ledger, LedgerCache, ReplayReport, ReplayTarget
from processors.kafka import groups, tail
from processors.producer import Delivery, GeneratedItem, ProduceSummary
from processors.settings import Settings

# One refresh waits at most this long per broker round trip: a dead broker shows quickly.
# Read at call time (tests shorten it).
TIMEOUT_S = 3.0


def _timeout(given: float | None, factor: float = 1.0) -> float:
    return given if given is not None else TIMEOUT_S * factor


DLQ_SAMPLE_PER_PARTITION = 100


def stage_topics(settings: Settings) -> dict[str, str]:
    """Label → topic, in flow order; the outcome topic is left out when disabled."""
    stages = {
        "main": settings.topic_main,
        "retry": settings.topic_retry,
        "DLQ": settings.topic_dlq,
        "processed": settings.topic_processed,
    }
    return {label: topic for label, topic in stages.items() if topic}


def topic_stages(settings: Settings) -> dict[str, str]:
    """Topic → label, the inverse of ``stage_topics``."""
    return {topic: label for label, topic in stage_topics(settings).items()}


@dataclass(frozen=True)
class Lag:
    """A consumer group's lag on one topic: per partition and in total."""

    label: str
    group: str
    topic: str
    partitions: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.partitions.values())


@dataclass(frozen=True)
class Overview:
    """One refresh of the overview: records per topic (``exact`` False where estimated from
    offsets), the processors' lag, and a sample of the newest dead letters."""

    totals: dict[str, int]
    exact: dict[str, bool]
    lags: list[Lag]
    dlq_sample: list[Record]


def lags(settings: Settings, timeout_s: float | None = None) -> list[Lag]:
    """Lag of the main group on the main topic and of the retry group on the retry topic.

    The retry group's lag is the number of records in the retry topic not yet handled: those
    waiting for their due time plus any being processed.
    """
    result = []
    for label, group, topic in (
        ("main", settings.group_main, settings.topic_main),
        ("retry", settings.group_retry, settings.topic_retry),
    ):
        per_topic = groups.group_lag(settings, group, [topic], timeout_s=_timeout(timeout_s))
        result.append(Lag(label, group, topic, per_topic.get(topic, {})))
    return result


def record_totals(
    settings: Settings, counts: RecordCounts, timeout_s: float | None = None
) -> dict[str, tuple[int, bool]]:
    """``{topic: (records, exact)}``: watermarks, plus counting only the offsets that are new
    since ``counts`` last saw them, at most ``counts.budget`` records (see ``RecordCounts``)."""
    marks = tail.watermarks(settings, settings.all_topics, timeout_s=_timeout(timeout_s))
    plan = counts.plan(marks)
    counted = {
        topic: tail.count_records(settings, topic, ranges, timeout_s=_timeout(timeout_s))
        for topic, ranges in plan.items()
    }
    return counts.apply(marks, plan, counted)


def overview(
    settings: Settings,
    counts: RecordCounts | None = None,
    dlq_per_partition: int = DLQ_SAMPLE_PER_PARTITION,
    timeout_s: float | None = None,
) -> Overview:
    """Everything the overview shows, at a cost with a fixed ceiling however many records the
    topics hold: watermarks, at most ``counts.budget`` new records counted, two groups'
    committed offsets, and the newest ``dlq_per_partition`` dead letters per partition.
    Without ``counts``, totals are offsets (transaction markers included)."""
    totals = record_totals(settings, counts or RecordCounts(budget=0), timeout_s)
    return Overview(
        totals={topic: records for topic, (records, _) in totals.items()},
        exact={topic: exact for topic, (_, exact) in totals.items()},
        lags=lags(settings, timeout_s),
        dlq_sample=tail.read_tail(
            settings, settings.topic_dlq, dlq_per_partition, timeout_s=_timeout(timeout_s)
        ),
    )


def latest(
    settings: Settings,
    topic: str,
    per_partition: int,
    only_partitions: Iterable[int] | None = None,
    timeout_s: float | None = None,
) -> list[Record]:
    """The newest ``per_partition`` records of each partition of one of our topics.

    Refuses any topic that is not one of orderflow's own, so internal topics never show.
    """
    if topic not in settings.all_topics:
        raise ValueError(f"{topic!r} is not one of orderflow's topics")
    return tail.read_tail(
        settings, topic, per_partition, only_partitions, timeout_s=_timeout(timeout_s)
    )


def trace(
    settings: Settings, order_id: str, per_partition: int, timeout_s: float | None = None
) -> list[Record]:
    """Every record keyed ``order_id`` among the newest ``per_partition`` records of each
    partition of each of our topics. Older hops are not seen: the read is bounded on purpose.
    """
    key = order_id.encode("utf-8")
    found: list[Record] = []
    for topic in settings.all_topics:
        records = tail.read_tail(settings, topic, per_partition, timeout_s=_timeout(timeout_s))
        found.extend(record for record in records if record.key == key)
    return found


# --- dead letters --------------------------------------------------------------------------------
# A refresh looks at most at this many DLQ offsets, however selective the filter.
DLQ_MAX_SCAN = 5_000


def dead_letters(
    settings: Settings,
    flt: DlqFilter | None,
    limit: int,
    max_scan: int | None = None,
    timeout_s: float | None = None,
    redriven: Container[str] = (),
) -> tuple[list[DeadLetter], bool]:
    """The newest ``limit`` dead letters matching ``flt``, newest first, and whether every
    candidate was looked at (``False``: exactly ``max_scan`` offsets, default
    ``DLQ_MAX_SCAN``, were read and older matches may exist beyond them). ``redriven``: the
    ledger, for a state filter."""
    return dlq.search_dead_letters(
        settings,
        flt,
        limit,
        max_scan=DLQ_MAX_SCAN if max_scan is None else max_scan,
        timeout_s=_timeout(timeout_s, 2),
        redriven=redriven,
    )


# A refresh reads at most this many new redrive-ledger records: a large ledger (1,000,000
# entries: see bench/ledger.py) is caught up over a few refreshes, never in one.
LEDGER_BUDGET = 50_000


def redrive_ledger(
    settings: Settings, cache: LedgerCache, timeout_s: float | None = None
) -> Ledger:
    """The redrive ledger, brought up to date by reading only what is new since the last
    refresh (at most ``LEDGER_BUDGET`` records; ``cache.complete`` says if it caught up)."""
    return cache.refresh(settings, budget=LEDGER_BUDGET, timeout_s=_timeout(timeout_s))


@dataclass(frozen=True)
class DlqCounts:
    """What is left to do: dead letters (``exact`` False: estimated from offsets), how many of
    them the ledger lists as redriven, and ``pending`` = the rest. ``ledger_complete`` False:
    the ledger is still being caught up, so ``redriven`` may still grow."""

    dead_letters: int
    exact: bool
    redriven: int
    ledger_complete: bool
    ledger_garbage: int
    ledger_stale: int
    ledger_missing: bool

    @property
    def pending(self) -> int:
        return max(0, self.dead_letters - self.redriven)


def dlq_counts(
    settings: Settings,
    counts: RecordCounts,
    ledger: Ledger,
    ledger_complete: bool,
    timeout_s: float | None = None,
) -> DlqCounts:
    """Dead letters counted exactly where the budget of ``counts`` allows (see
    ``record_totals``), against the ledger's redriven entries."""
    topic = settings.topic_dlq
    marks = tail.watermarks(settings, [topic], timeout_s=_timeout(timeout_s))
    plan = counts.plan(marks)
    counted = {
        name: tail.count_records(settings, name, ranges, timeout_s=_timeout(timeout_s))
        for name, ranges in plan.items()
    }
    total, exact = counts.apply(marks, plan, counted)[topic]
    return DlqCounts(
        dead_letters=total,
        exact=exact,
        redriven=len(ledger),
        ledger_complete=ledger_complete,
        ledger_garbage=ledger.garbage,
        ledger_stale=ledger.stale,
        ledger_missing=ledger.missing,
    )


# --- writes: produce and redrive ------------------------------------------------------------------
def produce_one(settings: Settings, item: GeneratedItem) -> Delivery:
    """Send one order (or a raw poison payload) to the main topic and wait for the ack."""
    return producer.produce_one(settings, item, delivery_timeout_s=_timeout(None, 2))


def produce_many(
    settings: Settings,
    items: Sequence[GeneratedItem],
    rate: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ProduceSummary:
    """Send generated items, every delivery accounted for; ``progress(delivered, failed)``."""
    return producer.produce_orders(settings, items, rate=rate, progress=progress)


def replay_letters(
    settings: Settings, letters: Sequence[DeadLetter], to: ReplayTarget, again: bool = False
) -> ReplayReport:
    """Redrive exactly these dead letters (by DLQ position), as they are: those the ledger
    lists as redriven are skipped unless ``again``. Not resumable: a selection is small, and
    no consumer group is created for it. The DLQ is not changed."""
    positions = frozenset((letter.partition, letter.offset) for letter in letters)
    return dlq.replay(
        settings,
        DlqFilter(positions=positions),
        to=to,
        again=again,
        group=None,
        idle_timeout_s=_timeout(None, 3),
        delivery_timeout_s=_timeout(None, 3),
    )


def replay_edited(
    settings: Settings, letter: DeadLetter, payload: bytes, to: ReplayTarget
) -> ReplayReport:
    """Publish a corrected payload (validated as an order) in place of one dead letter, which
    stays in the DLQ unchanged."""
    return dlq.replay_edited(settings, letter, payload, to=to, delivery_timeout_s=_timeout(None, 3))
