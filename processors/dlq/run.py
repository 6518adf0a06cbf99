"""The state of one replay run: its plan, the ledger it consults, progress marks, pacing and
accounting, and its checkpoints (commit, or abort and rewind).

Used by ``processors.dlq.replay``; see there for how a run works.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from processors.dlq.filters import DlqFilter
from processors.dlq.ledger import Ledger, Redrive, read_ledger
from processors.dlq.model import REPLAY_HEADERS, DeadLetter
from processors.dlq.rewrite import ReplayTarget, RunMark, fingerprint
from processors.dlq.sender import (
    COORDINATOR_SETTLING,
    UNPUBLISHABLE,
    ProducerFencedError,
    ReplayStalledError,
    Sender,
    TransactionAbortedError,
    bounded,
)
from processors.errors import KafkaUnavailableError
from processors.kafka import tail
from processors.settings import Settings

logger = logging.getLogger(__name__)

MAX_LISTED = 100
# Recoveries (abort + rewind, or a new producer) in a row without a commit in between: more
# means something other than a coordinator failover fences the run (a twin with the same group).
MAX_RECOVERIES = 5
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")  # Kafka's rule for topic names

Progress = Callable[[int, int], None]


@dataclass
class ReplayReport:
    """The outcome of a replay run.

    ``selected``: records matching the filter that the run reached; ``replayed``: republished
    and committed (exactly-once) or acknowledged (at-least-once); in a dry run: would be
    republished. ``again``: of those, dead letters redriven before (``again=True``);
    ``skipped_redriven``: already redriven, skipped (would be, in a dry run); ``refused``:
    ``(ref, why)`` of records the loop guard or a missing target refused; ``failed``:
    republishes not acknowledged. ``previously_replayed``: republished by earlier invocations
    of a resumed run. ``recoveries``: aborted or fenced transactions recovered inside the run.
    ``ledger_garbage`` / ``ledger_stale``: ledger entries skipped as unreadable / pointing at
    dead letters retention removed.
    """

    run_id: str
    dry_run: bool
    exactly_once: bool = False
    resumed: bool = False
    selected: int = 0
    replayed: int = 0
    again: int = 0
    skipped_redriven: int = 0
    previously_replayed: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)
    refused_count: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    targets: dict[str, int] = field(default_factory=dict)
    replayed_refs: list[str] = field(default_factory=list)
    offsets_total: int = 0
    offsets_done: int = 0
    recoveries: int = 0
    ledger_garbage: int = 0
    ledger_stale: int = 0
    stopped_by_limit: bool = False
    interrupted: bool = False
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.errors and not self.interrupted

    @property
    def rate(self) -> float:
        return self.replayed / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class Batch:
    """What happened since the last checkpoint; merged into the report when it commits,
    dropped when its transaction is aborted (its records are then read and decided again)."""

    selected: int = 0
    sent: int = 0
    skipped: int = 0
    again: int = 0
    failed: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)
    delivered: list[Redrive] = field(default_factory=list)


class Pacer:
    """Evenly spaced sends: the n-th send is not before ``start + n / rate``."""

    def __init__(self, rate: float | None, serve: Callable[[float], object]) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.serve = serve
        self.start: float | None = None
        self.sent = 0

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self.start is None:
            self.start = now
        due = self.start + self.sent * self.interval
        while (left := due - time.monotonic()) > 0:
            self.serve(left)
        self.sent += 1


class Run:
    """One replay run: the plan, the ledger, the accounting, the checkpoints."""

    def __init__(
        self,
        settings: Settings,
        flt: DlqFilter,
        *,
        to: ReplayTarget,
        rate: float | None,
        limit: int | None,
        dry_run: bool,
        force: bool,
        again: bool,
        progress: Progress | None,
        group: str | None,
        restart: bool,
        idle_timeout_s: float,
        delivery_timeout_s: float,
    ) -> None:
        self.settings = settings
        self.topic = settings.topic_dlq
        self.flt = flt
        self.to = to
        self.limit = limit
        self.dry_run = dry_run
        self.force = force
        self.again = again
        self.progress = progress
        self.resume_group = group
        self.group = None if dry_run else group  # where progress is committed
        self.restart = restart
        self.idle_timeout_s = idle_timeout_s
        self.delivery_timeout_s = delivery_timeout_s
        # A filter on locations only: decode no more of a dead letter than a republish needs.
        self.decode_only = None if flt.reads_content else REPLAY_HEADERS
        self.fp = fingerprint(self.topic, flt.fingerprint(), to, force, limit, again)
        self.report = ReplayReport(run_id=uuid.uuid4().hex[:8], dry_run=dry_run)
        self.rate = rate
        self.targets: Counter[str] = Counter()
        self.known_topics: dict[str, bool] = {}
        # Per partition: plan [start, end), next offset to read, position at the last commit.
        self.plan: dict[int, tuple[int, int]] = {}
        self.position: dict[int, int] = {}
        self.committed_position: dict[int, int] = {}
        self.batch = Batch()
        self.renew_consumer = False
        self.generation = 0  # bumped by every rewind: late delivery reports of aborted work
        self.ledger = Ledger()
        self.ledger_marks: dict[int, tuple[int, int]] = {}
        self.done_refs: set[str] = set()  # redriven and committed by this run
        self.failures: dict[int, int] = {}  # partition -> lowest DLQ offset whose send failed
        self.errors: Counter[str] = Counter()
        self.recoveries_in_a_row = 0
        # ref -> why: records the broker refused for good. In exactly-once mode such a refusal
        # aborts the transaction; the redo then skips the record with this reason.
        self.unpublishable: dict[str, str] = {}

    # --- planning ------------------------------------------------------------------------------
    def make_plan(self, consumer: Consumer) -> None:
        marks = tail.watermarks(self.settings, [self.topic])[self.topic]
        try:
            # Warm this client's metadata: otherwise the first fetch after assign waits ~1 s.
            consumer.list_topics(self.topic, timeout=self.idle_timeout_s)
        except KafkaException as exc:
            raise KafkaUnavailableError(f"cannot read metadata of {self.topic}: {exc}") from exc
        fresh = self.flt.ranges(marks)
        if self.resume_group is not None and not self.restart:
            resumed = self._resume_plan(consumer, marks)
            if resumed is not None:
                self.plan = resumed
                self.report.resumed = True
        if not self.report.resumed:
            self.plan = fresh
        self.position = {p: start for p, (start, _) in self.plan.items()}
        self.committed_position = dict(self.position)
        self.report.offsets_total = sum(end - start for start, end in self.plan.values())
        self.read_ledger(marks)

    def read_ledger(self, dlq_marks: dict[int, tuple[int, int]]) -> None:
        """The ledger, read once for the run."""
        ledger_topic = self.settings.topic_redriven
        self.ledger_marks = tail.watermarks(self.settings, [ledger_topic])[ledger_topic]
        self.ledger = read_ledger(self.settings, dlq_marks, idle_timeout_s=self.idle_timeout_s)
        self.report.ledger_garbage = self.ledger.garbage
        self.report.ledger_stale = self.ledger.stale

    def _resume_plan(
        self, consumer: Consumer, marks: dict[int, tuple[int, int]]
    ) -> dict[int, tuple[int, int]] | None:
        if not marks:
            return None
        asked = [TopicPartition(self.topic, p) for p in marks]
        deadline = time.monotonic() + self.idle_timeout_s
        while True:
            left = max(1.0, deadline - time.monotonic())
            try:
                committed = bounded(
                    "committed",
                    lambda: consumer.committed(asked, timeout=left),  # noqa: B023 (called here)
                    left + 5,
                )
                break
            except KafkaException as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                # A coordinator still loading or moving (a new or restarted broker): ask again.
                settling = error is not None and (
                    error.retriable() or error.code() in COORDINATOR_SETTLING
                )
                if not settling or time.monotonic() >= deadline:
                    raise KafkaUnavailableError(f"cannot read replay progress: {exc}") from exc
                time.sleep(0.2)
        plan: dict[int, tuple[int, int]] = {}
        unfinished = False
        prior = 0
        run_id = self.report.run_id
        for tp in committed:
            mark = RunMark.decode(tp.metadata)
            if mark is None or mark.fingerprint != self.fp or tp.offset < 0:
                continue
            run_id = mark.run_id
            prior = max(prior, mark.replayed)
            unfinished |= not mark.done
            low = marks.get(tp.partition, (0, 0))[0]
            plan[tp.partition] = (max(tp.offset, low), mark.end)
        if not unfinished:
            return None
        self.report.run_id = run_id
        self.report.previously_replayed = prior
        return plan

    # --- deciding ------------------------------------------------------------------------------
    def redrive_count(self, letter: DeadLetter) -> int | None:
        """How often ``letter`` was redriven before (0: pending), or ``None`` to skip it: already
        redriven (unless ``again``), by this very run, or before a crash of this resumed run."""
        ref = letter.ref
        if ref in self.done_refs:
            return None
        entry = self.ledger.get(ref)
        if entry is None:
            return 0
        if entry.run_id == self.report.run_id or not self.again:
            self.batch.skipped += 1
            return None
        return entry.count

    def target_of(self, letter: DeadLetter, client: object) -> tuple[str | None, str]:
        if self.to == "retry":
            target = self.settings.topic_retry
        elif letter.original_topic:
            target = letter.original_topic
        else:
            return None, "no x-original-topic header (use --to retry)"
        if not _TOPIC_NAME.fullmatch(target):
            return None, f"x-original-topic {target[:100]!r} is not a legal topic name"
        if target == self.topic:
            return None, f"target {target} is the DLQ itself"
        if target not in self.known_topics:
            try:
                metadata = client.list_topics(target, timeout=self.idle_timeout_s)  # type: ignore[attr-defined]
            except KafkaException as exc:
                raise KafkaUnavailableError(f"cannot read metadata of {target}: {exc}") from exc
            info = metadata.topics.get(target)
            self.known_topics[target] = info is not None and info.error is None
        if not self.known_topics[target]:
            return None, f"target topic {target} does not exist"
        return target, ""

    def refuse(self, ref: str, why: str) -> None:
        self.batch.refused.append((ref, why))

    # --- sending -------------------------------------------------------------------------------
    def on_delivery(
        self, sender: Sender, letter: DeadLetter, target: str, count: int
    ) -> Callable[[KafkaError | None, Message], None]:
        """The republish's delivery report: on success, the ledger entry follows (in the same
        transaction in exactly-once mode); on failure, the run stops at that offset."""
        generation = self.generation
        ref, partition, offset = letter.ref, letter.partition, letter.offset

        def republished(err: KafkaError | None, msg: Message) -> None:
            if generation != self.generation:
                return  # a report of aborted work
            if err is not None:
                if err.code() in UNPUBLISHABLE:  # this record can never go there: say why
                    why = f"cannot be republished to {target}: {err.str()}"
                    self.unpublishable[ref] = why
                    if not sender.exactly_once:  # nothing to abort: skip it now
                        self.batch.sent -= 1
                        self.refuse(ref, why)
                        return
                self.fail(partition, offset, f"{ref} → {target}: {err.str()}")
                return
            entry = Redrive(
                ref=ref,
                run_id=self.report.run_id,
                at_ms=int(time.time() * 1000),
                target=target,
                partition=msg.partition(),
                offset=msg.offset(),
                count=count + 1,
            )
            key, value = entry.encode()
            try:
                sender.produce(
                    self.settings.topic_redriven,
                    key,
                    value,
                    None,
                    self._recorded(entry, partition, offset),
                )
            except (KafkaUnavailableError, TransactionAbortedError, ProducerFencedError) as exc:
                self.fail(partition, offset, f"ledger entry of {ref}: {exc}")

        return republished

    def _recorded(
        self, entry: Redrive, partition: int, offset: int
    ) -> Callable[[KafkaError | None, Message], None]:
        """The ledger entry's delivery report (``partition``/``offset``: its dead letter's)."""
        generation = self.generation

        def recorded(err: KafkaError | None, _msg: Message) -> None:
            if generation != self.generation:
                return
            if err is not None:
                self.fail(partition, offset, f"ledger entry of {entry.ref}: {err.str()}")
                return
            self.batch.delivered.append(entry)

        return recorded

    def fail(self, partition: int, offset: int, text: str) -> None:
        self.errors[text] += 1
        self.batch.failed += 1
        current = self.failures.get(partition)
        self.failures[partition] = offset if current is None else min(current, offset)

    # --- checkpoints -----------------------------------------------------------------------------
    def checkpoint(self, consumer: Consumer, sender: Sender | None, done: bool) -> bool:
        """Commit what is safe: every republish so far acknowledged, its ledger entry written,
        the position (with the run's mark) committed — atomically in exactly-once mode.
        ``False`` when the work since the last checkpoint was aborted and must be redone (the
        consumer is rewound to the last commit)."""
        if sender is None:
            self._merge()
            self._commit_offsets(consumer, None, done)
            return True
        if not sender.exactly_once:
            unconfirmed = sender.flush()
            if unconfirmed:
                self.batch.failed += unconfirmed
                self.errors[f"{unconfirmed} republishes not acknowledged in time"] += 1
                # Unknown which ones: commit nothing more this round.
                return True
            self._merge()
            self._commit_offsets(consumer, None, done)
            return True
        try:
            unconfirmed = sender.flush()
            if unconfirmed or self.failures:
                raise TransactionAbortedError(
                    f"{unconfirmed or len(self.failures)} deliveries not acknowledged"
                )
            self._commit_offsets(consumer, sender, done)
        except (TransactionAbortedError, ProducerFencedError, ReplayStalledError) as exc:
            self.recover(sender, exc)
            return False
        self._merge()
        return True

    def _offsets(self, done: bool) -> list[TopicPartition]:
        offsets = []
        replayed = self.report.previously_replayed + self.report.replayed
        if self.batch is not None:
            replayed += len(self.batch.delivered)
        for partition, (_, end) in self.plan.items():
            safe = self.failures.get(partition, self.position[partition])
            mark = RunMark(
                run_id=self.report.run_id,
                fingerprint=self.fp,
                end=end,
                replayed=replayed,
                done=done and partition not in self.failures,
            )
            offsets.append(TopicPartition(self.topic, partition, safe, metadata=mark.encode()))
        return offsets

    def _commit_offsets(self, consumer: Consumer, sender: Sender | None, done: bool) -> None:
        offsets = self._offsets(done) if self.group is not None and self.plan else []
        if sender is not None:  # exactly-once: the offsets go into the transaction
            sender.commit(offsets, consumer if offsets else None)
        elif offsets:
            try:
                bounded(
                    "commit",
                    lambda: consumer.commit(offsets=offsets, asynchronous=False),
                    self.idle_timeout_s,
                )
            except KafkaException as exc:
                raise KafkaUnavailableError(f"cannot commit replay progress: {exc}") from exc
        self.committed_position = {tp.partition: tp.offset for tp in offsets} or dict(self.position)

    def _merge(self) -> None:
        batch, self.batch = self.batch, Batch()
        report = self.report
        report.selected += batch.selected
        report.skipped_redriven += batch.skipped
        report.again += batch.again
        report.failed += batch.failed
        report.refused_count += len(batch.refused)
        report.refused.extend(batch.refused[: max(0, MAX_LISTED - len(report.refused))])
        if self.dry_run:
            report.replayed += batch.sent
        for entry in batch.delivered:
            self._count(entry)
        self.recoveries_in_a_row = 0

    def _count(self, entry: Redrive) -> None:
        self.done_refs.add(entry.ref)
        self.ledger.add(entry)
        self.report.replayed += 1
        self.targets[entry.target] += 1
        if len(self.report.replayed_refs) < MAX_LISTED:
            self.report.replayed_refs.append(entry.ref)

    def recover(
        self,
        sender: Sender,
        exc: TransactionAbortedError | ProducerFencedError | ReplayStalledError,
    ) -> None:
        """Abort (or, fenced or stalled, renew the producer), then move the position back to
        the last commit; the caller re-assigns the consumer there, once. A commit whose outcome
        was unknown is settled by reading back what this run wrote to the ledger.

        A stalled transactional call is still running in the old producer (an abort would
        conflict with it): only a new producer with the same transactional id, which fences the
        old one, can go on. If the cluster is still away, the new producer's
        ``init_transactions`` stalls in turn and ends the run with one line."""
        why = str(exc)
        renew = isinstance(exc, (ProducerFencedError, ReplayStalledError))
        self.recoveries_in_a_row += 1
        self.report.recoveries += 1
        logger.warning(
            "event=replay_recover run=%s renew=%s attempt=%d error=%r",
            self.report.run_id,
            renew,
            self.recoveries_in_a_row,
            why,
        )
        if self.recoveries_in_a_row > MAX_RECOVERIES:
            raise KafkaUnavailableError(
                f"replay fenced or aborted {MAX_RECOVERIES + 1} times in a row ({why}); is another"
                f" replay running with group {self.group}? progress up to the last commit is kept"
            )
        self.generation += 1
        self.failures.clear()
        self.errors.clear()  # failed deliveries of the aborted work: it is done again
        self.batch = Batch()
        if renew:
            sender.renew()
            self.renew_consumer = True  # a broker died under the run: see replay._Reader
            self._settle_ledger()
        else:
            sender.abort()
        self.position = dict(self.committed_position)

    def _settle_ledger(self) -> None:
        """Read the ledger records written since the run began: entries of this run that are
        not counted yet were committed by a commit whose answer was lost."""
        topic = self.settings.topic_redriven
        now = tail.watermarks(self.settings, [topic])[topic]
        ranges = {
            p: (self.ledger_marks.get(p, (0, 0))[1], high)
            for p, (_, high) in now.items()
            if high > self.ledger_marks.get(p, (0, 0))[1]
        }
        marks = tail.watermarks(self.settings, [self.topic])[self.topic]
        for record in tail.scan(self.settings, topic, ranges, idle_timeout_s=self.idle_timeout_s):
            self.ledger.apply(record.key, record.value, self.topic, marks)
            entry = self.ledger.get(record.key.decode(errors="replace") if record.key else "")
            mine = entry is not None and entry.run_id == self.report.run_id
            if mine and entry.ref not in self.done_refs:
                self._count(entry)

    def covered(self) -> int:
        return sum(self.position[p] - start for p, (start, _) in self.plan.items())
