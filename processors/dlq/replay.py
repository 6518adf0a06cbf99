"""Redrive dead letters: republish matching DLQ records to their original topic (or the retry
topic), at a bounded rate, resumable after a crash, never touching the DLQ itself.

How a run works (see docs/dlq-operations.md):

1. The run's *plan* is fixed at start: for each DLQ partition, from its low watermark (or the
   filter's first location) to its high watermark *at start*, so the run ends even while new
   dead letters arrive, including its own replays that fail again.
2. Records are read with the replay consumer group (assign + seek, no subscription), filtered,
   checked by the loop guard, and republished by an idempotent ``acks=all`` producer.
3. About every second, the producer is flushed and, once every republish is acknowledged, the
   position is committed with a ``RunMark`` in the commit metadata. A record is therefore
   committed past only after its republish was acknowledged: kill -9 loses nothing and, on the
   next run with the same selection, the run resumes from the last commit (so at most about a
   second of records is republished twice) and stops at the same end.
4. A run that finished (or hit its ``limit``) is marked done; the same command later starts a
   new run over the whole selection.

Records the filter skips are committed past too. Dry runs read and decide, but write and commit
nothing. One run per consumer group at a time.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from processors.core.order import parse_order
from processors.dlq.filters import DlqFilter
from processors.dlq.model import DeadLetter
from processors.dlq.rewrite import ReplayTarget, RunMark, fingerprint, replay_headers
from processors.errors import KafkaUnavailableError
from processors.kafka import clients, tail
from processors.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_REPLAY_GROUP = "orderflow-dlq-replay"
CHECKPOINT_INTERVAL_S = 1.0
_CHECKPOINT_RECORDS = 1000
_MAX_LISTED = 100

Progress = Callable[[int, int], None]


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


class _Pacer:
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


class _Run:
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
                if len(self.report.replayed_refs) < _MAX_LISTED:
                    self.report.replayed_refs.append(ref)
                return
            self.report.failed += 1
            self.errors[f"{ref} → {target}: {err.str()}"] += 1
            current = self.failures.get(partition)
            self.failures[partition] = offset if current is None else min(current, offset)

        return report

    def refuse(self, ref: str, why: str) -> None:
        self.report.refused_count += 1
        if len(self.report.refused) < _MAX_LISTED:
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


def replay(
    settings: Settings,
    flt: DlqFilter | None = None,
    *,
    to: ReplayTarget = "original",
    rate: float | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    group: str | None = DEFAULT_REPLAY_GROUP,
    restart: bool = False,
    idle_timeout_s: float = 30.0,
    delivery_timeout_s: float = 30.0,
) -> ReplayReport:
    """Republish the dead letters matching ``flt`` and return what happened.

    ``to``: ``"original"`` (each record's ``x-original-topic``) or ``"retry"``. ``rate``: max
    records per second; ``limit``: max records republished by this run. ``force`` lifts the
    loop guard (records already replayed ``REPLAY_LIMIT`` times). ``progress(done, total)`` gets
    offsets of the plan covered. ``group``: the consumer group that makes runs resumable
    (``None``: not resumable, nothing committed — fine for a handful of selected records);
    ``restart`` ignores an unfinished run of the same selection. Ctrl-C stops after committing
    what was acknowledged (``interrupted``). Raises ``KafkaUnavailableError`` when Kafka stops
    answering for ``idle_timeout_s``.
    """
    run = _Run(
        settings,
        flt or DlqFilter(),
        to=to,
        rate=rate,
        limit=limit,
        dry_run=dry_run,
        force=force,
        progress=progress,
        group=group,
        restart=restart,
        idle_timeout_s=idle_timeout_s,
        delivery_timeout_s=delivery_timeout_s,
    )
    started = time.monotonic()
    consumer = clients.consumer(
        settings,
        group or tail.TAIL_GROUP_ID,
        logger=tail.RDKAFKA_LOGGER,
        **{"enable.partition.eof": True, "allow.auto.create.topics": False},
    )
    producer = None
    if not dry_run:
        producer = clients.producer(
            settings,
            logger=tail.RDKAFKA_LOGGER,
            **{"message.timeout.ms": int(delivery_timeout_s * 1000)},
        )
    try:
        run.make_plan(consumer)
        logger.info(
            "replay=start run=%s resumed=%s filter=%r to=%s dry_run=%s offsets=%d group=%s",
            run.report.run_id,
            run.report.resumed,
            run.flt.describe(),
            to,
            dry_run,
            run.report.offsets_total,
            run.group,
        )
        _loop(run, consumer, producer)
    finally:
        if producer is not None:
            producer.flush(min(5.0, delivery_timeout_s))
        consumer.close()
    report = run.report
    report.targets = dict(run.targets)
    report.errors = [f"{text} (×{n})" if n > 1 else text for text, n in run.errors.most_common(20)]
    report.offsets_done = run.covered()
    report.elapsed_s = time.monotonic() - started
    logger.info(
        "replay=end run=%s replayed=%d refused=%d failed=%d selected=%d interrupted=%s",
        report.run_id,
        report.replayed,
        report.refused_count,
        report.failed,
        report.selected,
        report.interrupted,
    )
    return report


def _loop(run: _Run, consumer: Consumer, producer: Producer | None) -> None:
    topic = run.topic
    pending = {p for p, (start, end) in run.plan.items() if start < end}
    if not pending:
        run.checkpoint(consumer, producer, done=True)
        return
    consumer.assign([TopicPartition(topic, p, run.plan[p][0]) for p in pending])
    pacer = _Pacer(run.rate, producer.poll if producer is not None else time.sleep)
    next_checkpoint = time.monotonic() + CHECKPOINT_INTERVAL_S
    since_checkpoint = 0
    idle_deadline = time.monotonic() + run.idle_timeout_s
    try:
        while pending and not run.report.stopped_by_limit and not run.failures:
            messages = tail.next_batch(consumer, 0.2)
            if messages:
                idle_deadline = time.monotonic() + run.idle_timeout_s
            elif time.monotonic() > idle_deadline:
                run.checkpoint(consumer, producer, done=False)
                raise KafkaUnavailableError(
                    f"no record from {topic} for {run.idle_timeout_s:g} s; progress committed"
                )
            for message in messages:
                partition = message.partition()
                if partition not in pending:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        run.position[partition] = run.plan[partition][1]
                        pending.discard(partition)
                    elif error.fatal() or not error.retriable():
                        raise KafkaUnavailableError(f"cannot read {topic}: {error.str()}")
                    continue
                end = run.plan[partition][1]
                offset = message.offset()
                if offset >= end:
                    run.position[partition] = end
                    pending.discard(partition)
                    continue
                if not _handle(run, message, consumer, producer, pacer):
                    break  # limit reached: this record stays unreplayed and uncommitted
                run.position[partition] = offset + 1
                since_checkpoint += 1
                if offset + 1 >= end:
                    pending.discard(partition)
                if run.progress is not None:
                    run.progress(run.covered(), run.report.offsets_total)
                # Checked per record: with a low --rate one batch can take many seconds.
                if since_checkpoint >= _CHECKPOINT_RECORDS or time.monotonic() >= next_checkpoint:
                    run.checkpoint(consumer, producer, done=False)
                    next_checkpoint = time.monotonic() + CHECKPOINT_INTERVAL_S
                    since_checkpoint = 0
                    if run.failures:
                        break
            if producer is not None:
                producer.poll(0)
    except KeyboardInterrupt:
        run.report.interrupted = True
        run.checkpoint(consumer, producer, done=False)
        return
    finished = not pending or run.report.stopped_by_limit
    run.checkpoint(consumer, producer, done=finished and not run.failures)
    if run.progress is not None:
        run.progress(run.covered(), run.report.offsets_total)


def _handle(
    run: _Run, message: Message, consumer: Consumer, producer: Producer | None, pacer: _Pacer
) -> bool:
    """Decide and send one record. ``False`` when the run's limit stops it before this one."""
    letter = DeadLetter.from_record(tail.to_record(message))
    if not run.flt.matches(letter):
        return True
    done = run.report.previously_replayed + run.report.replayed + run.in_flight
    if run.limit is not None and done >= run.limit:
        run.report.stopped_by_limit = True
        return False
    run.report.selected += 1
    refusal = letter.replay_refusal(run.force)
    target, why = run.target_of(letter, producer or consumer)
    if refusal or target is None:
        run.refuse(letter.ref, refusal or why)
        return True
    if producer is None:  # dry run
        run.report.replayed += 1
        run.targets[target] += 1
        if len(run.report.replayed_refs) < _MAX_LISTED:
            run.report.replayed_refs.append(letter.ref)
        return True
    pacer.wait()
    headers = replay_headers(
        letter.raw_headers,
        replay_of=letter.ref,
        replay_count=letter.replay_count,
        now_ms=int(time.time() * 1000),
        target=run.to,
    )
    callback = run.on_delivery(letter.partition, letter.offset, letter.ref, target)
    while True:
        try:
            producer.produce(
                target, key=letter.key, value=letter.value, headers=headers, on_delivery=callback
            )
            break
        except BufferError:
            producer.poll(0.1)
    run.in_flight += 1
    return True


def replay_edited(
    settings: Settings,
    dead_letter: DeadLetter,
    new_value: bytes,
    *,
    to: ReplayTarget = "original",
    force: bool = False,
    delivery_timeout_s: float = 10.0,
) -> ReplayReport:
    """Republish one dead letter with a corrected payload; the dead letter stays as it was.

    The new payload must be a valid order (``InvalidOrderError`` otherwise, nothing sent); the
    key becomes its ``order_id``. Headers as for any replay. The loop guard applies unless
    ``force``.
    """
    order = parse_order(new_value)
    run = _Run(
        settings,
        DlqFilter(),
        to=to,
        rate=None,
        limit=None,
        dry_run=False,
        force=force,
        progress=None,
        group=None,
        restart=False,
        idle_timeout_s=delivery_timeout_s,
        delivery_timeout_s=delivery_timeout_s,
    )
    started = time.monotonic()
    report = run.report
    report.selected = 1
    producer = clients.producer(
        settings,
        logger=tail.RDKAFKA_LOGGER,
        **{"message.timeout.ms": int(delivery_timeout_s * 1000)},
    )
    refusal = dead_letter.replay_refusal(force)
    target, why = run.target_of(dead_letter, producer)
    if refusal or target is None:
        run.refuse(dead_letter.ref, refusal or why)
    else:
        headers = replay_headers(
            dead_letter.raw_headers,
            replay_of=dead_letter.ref,
            replay_count=dead_letter.replay_count,
            now_ms=int(time.time() * 1000),
            target=to,
        )
        producer.produce(
            target,
            key=order.order_id.encode(),
            value=new_value,
            headers=headers,
            on_delivery=run.on_delivery(
                dead_letter.partition, dead_letter.offset, dead_letter.ref, target
            ),
        )
        run.in_flight += 1
        if producer.flush(delivery_timeout_s + 5):
            report.failed += 1
            run.errors["not acknowledged in time"] += 1
    report.targets = dict(run.targets)
    report.errors = list(run.errors)
    report.elapsed_s = time.monotonic() - started
    logger.info(
        "replay=edited ref=%s target=%s replayed=%d refused=%d failed=%d",
        dead_letter.ref,
        target,
        report.replayed,
        report.refused_count,
        report.failed,
    )
    return report
