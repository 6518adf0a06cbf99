"""The state of one replay run: its plan, progress marks, pacing and accounting.

Used by ``processors.dlq.replay``; see there for how a run works.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from processors.dlq.filters import DlqFilter
from processors.dlq.model import DeadLetter
from processors.dlq.rewrite import ReplayTarget, RunMark, fingerprint
from processors.errors import KafkaUnavailableError
from processors.kafka import tail
from processors.settings import Settings

MAX_LISTED = 100
# Delivery errors that no retry of the same record can fix (it is too large for the target, or
# the broker refuses its contents): the record is skipped and listed as refused, with the error.
UNPUBLISHABLE = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_MSG_SIZE,
    }
)

Progress = Callable[[int, int], None]
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")  # Kafka's rule for topic names


@dataclass
class ReplayReport:
    """The outcome of a replay run.

    ``selected``: records matching the filter that the run reached; ``replayed``: republished and
    acknowledged (in a dry run: would be republished); ``refused``: ``(ref, why)`` of records the
    loop guard or a missing target refused; ``failed``: republishes not acknowledged.
    ``previously_replayed``: republished by earlier invocations of a resumed run.
    """

    run_id: str
    dry_run: bool
    resumed: bool = False
    selected: int = 0
    replayed: int = 0
    previously_replayed: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)
    refused_count: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    targets: dict[str, int] = field(default_factory=dict)
    replayed_refs: list[str] = field(default_factory=list)
    offsets_total: int = 0
    offsets_done: int = 0
    stopped_by_limit: bool = False
    interrupted: bool = False
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.errors and not self.interrupted

    @property
    def rate(self) -> float:
        return self.replayed / self.elapsed_s if self.elapsed_s > 0 else 0.0


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
    """One replay run: the plan, the clients, the accounting."""

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
        self.progress = progress
        self.resume_group = group
        self.group = None if dry_run else group  # where progress is committed
        self.restart = restart
        self.idle_timeout_s = idle_timeout_s
        self.delivery_timeout_s = delivery_timeout_s
        self.fp = fingerprint(self.topic, flt.fingerprint(), to, force, limit)
        self.report = ReplayReport(run_id=uuid.uuid4().hex[:8], dry_run=dry_run)
        self.rate = rate
        self.targets: Counter[str] = Counter()
        self.known_topics: dict[str, bool] = {}
        # Per partition: plan [start, end), next offset to read, acknowledged-safe position.
        self.plan: dict[int, tuple[int, int]] = {}
        self.position: dict[int, int] = {}
        self.in_flight = 0
        self.failures: dict[int, int] = {}  # partition -> lowest DLQ offset whose republish failed
        self.errors: Counter[str] = Counter()

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
        self.report.offsets_total = sum(end - start for start, end in self.plan.values())

    def _resume_plan(
        self, consumer: Consumer, marks: dict[int, tuple[int, int]]
    ) -> dict[int, tuple[int, int]] | None:
        if not marks:
            return None
        try:
            committed = consumer.committed(
                [TopicPartition(self.topic, p) for p in marks], timeout=self.idle_timeout_s
            )
        except KafkaException as exc:
            raise KafkaUnavailableError(f"cannot read replay progress: {exc}") from exc
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

    # --- sending -------------------------------------------------------------------------------
    def target_of(self, letter: DeadLetter, client: Producer | Consumer) -> tuple[str | None, str]:
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
                metadata = client.list_topics(target, timeout=self.idle_timeout_s)
            except KafkaException as exc:
                raise KafkaUnavailableError(f"cannot read metadata of {target}: {exc}") from exc
            info = metadata.topics.get(target)
            self.known_topics[target] = info is not None and info.error is None
        if not self.known_topics[target]:
            return None, f"target topic {target} does not exist"
        return target, ""

    def on_delivery(self, partition: int, offset: int, ref: str, target: str):
        def report(err: KafkaError | None, _msg: Message) -> None:
            self.in_flight -= 1
            if err is None:
                self.report.replayed += 1
                self.targets[target] += 1
                if len(self.report.replayed_refs) < MAX_LISTED:
                    self.report.replayed_refs.append(ref)
                return
            if err.code() in UNPUBLISHABLE:  # this record can never go there: skip, say why
                self.refuse(ref, f"cannot be republished to {target}: {err.str()}")
                return
            self.report.failed += 1
            self.errors[f"{ref} → {target}: {err.str()}"] += 1
            current = self.failures.get(partition)
            self.failures[partition] = offset if current is None else min(current, offset)

        return report

    def refuse(self, ref: str, why: str) -> None:
        self.report.refused_count += 1
        if len(self.report.refused) < MAX_LISTED:
            self.report.refused.append((ref, why))

    # --- checkpoints -----------------------------------------------------------------------------
    def checkpoint(self, consumer: Consumer, producer: Producer | None, done: bool) -> None:
        """Wait for every republish to be acknowledged, then commit what is safe."""
        if producer is not None:
            unconfirmed = producer.flush(self.delivery_timeout_s + 5)
            if unconfirmed:
                self.report.failed += unconfirmed
                self.errors[f"{unconfirmed} republishes not acknowledged in time"] += 1
                # Unknown which ones: commit nothing more this round.
                return
        if self.group is None or not self.plan:
            return
        offsets = []
        for partition, (_, end) in self.plan.items():
            safe = self.failures.get(partition, self.position[partition])
            mark = RunMark(
                run_id=self.report.run_id,
                fingerprint=self.fp,
                end=end,
                replayed=self.report.previously_replayed + self.report.replayed,
                done=done and partition not in self.failures,
            )
            offsets.append(TopicPartition(self.topic, partition, safe, metadata=mark.encode()))
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise KafkaUnavailableError(f"cannot commit replay progress: {exc}") from exc

    def covered(self) -> int:
        return sum(self.position[p] - start for p, (start, _) in self.plan.items())
