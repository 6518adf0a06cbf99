"""Redrive dead letters: move matching DLQ records back to their original topic (or the retry
topic), at a bounded rate, resumable after a crash, never touching the DLQ itself.

How a run works (see docs/dlq-operations.md):

1. The run's *plan* is fixed at start: for each DLQ partition, from its low watermark (or the
   filter's first location) to its high watermark *at start*, so the run ends even while new
   dead letters arrive, including its own replays that fail again.
2. The redrive ledger (``processors.dlq.ledger``) is read once. A dead letter it lists was
   redriven already and is skipped (counted), unless ``again``: Kafka cannot delete a record,
   so a redrive is a move by remembering.
3. Records are read with the replay consumer group (assign + seek, no subscription), filtered,
   checked by the loop guard, and republished; each acknowledged republish gets its ledger
   entry. About every second a checkpoint commits the position with a ``RunMark``.
4. Exactly-once (``processing_guarantee``): republishes, ledger entries and the position are
   one transaction per checkpoint, with a transactional id derived from the group, so a killed
   run's open transaction is aborted when the run starts again, and each dead letter is
   republished exactly once. A transaction aborted under the run or a producer fenced by a
   coordinator failover is recovered inside the run: abort or a new producer with the same
   transactional id, rewind to the last commit, go on.
   At-least-once: an idempotent ``acks=all`` producer; the position is committed once every
   republish and its ledger entry are acknowledged, so kill -9 loses nothing and repeats at
   most the records republished but not yet in the ledger.
5. Every blocking Kafka call is bounded (``processors.dlq.sender``). Exactly-once, a
   transactional call that runs out of its budget (a broker killed under it, whose partitions
   or coordinator take longer to move) is recovered like a fence: a new producer, rewind, go
   on. Any other call that runs out of its budget, or the new producer's ``init_transactions``
   while the cluster is still away, ends the run with one line (``ReplayStalledError``),
   progress kept.
6. A run that finished (or hit its ``limit``) is marked done; the same command later starts a
   new run over the whole selection (which then skips what the ledger lists).

Records the filter skips are committed past too. Dry runs read and decide, but write and commit
nothing. One run per consumer group at a time.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from processors.core.envelope import from_message
from processors.core.order import parse_order
from processors.dlq.filters import DlqFilter
from processors.dlq.model import DeadLetter
from processors.dlq.rewrite import ReplayTarget, replay_headers
from processors.dlq.run import MAX_LISTED, Pacer, Progress, ReplayReport, Run
from processors.dlq.sender import (
    ProducerFencedError,
    ReplayStalledError,
    Sender,
    TransactionAbortedError,
    UnpublishableError,
    bounded,
)
from processors.errors import KafkaUnavailableError
from processors.kafka import clients, tail
from processors.kafka.topics import provision, redriven_spec
from processors.settings import Settings

__all__ = [
    "DEFAULT_REPLAY_GROUP",
    "ReplayReport",
    "ReplayStalledError",
    "replay",
    "replay_edited",
]

logger = logging.getLogger(__name__)

DEFAULT_REPLAY_GROUP = "orderflow-dlq-replay"
CHECKPOINT_INTERVAL_S = 1.0
_CHECKPOINT_RECORDS = 1000
_CLOSE_BUDGET_S = 10.0


def transactional_id(group: str | None, run_id: str) -> str:
    """Stable per group, so a restarted run fences its killed predecessor at once; unique per
    call without a group (the dashboard's small selections)."""
    if group is not None:
        return f"orderflow-dlq-replay.{group}"
    return f"orderflow-dlq-redrive.{run_id}"


def ensure_ledger(settings: Settings) -> None:
    """Create the ledger topic with its explicit config if it is missing (as ``orderflow topics
    create`` does); an existing one is left alone."""
    marks = tail.watermarks(settings, [settings.topic_redriven])
    if not marks[settings.topic_redriven]:
        provision(settings, specs=[redriven_spec(settings)])


def replay(
    settings: Settings,
    flt: DlqFilter | None = None,
    *,
    to: ReplayTarget = "original",
    rate: float | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    force: bool = False,
    again: bool = False,
    progress: Progress | None = None,
    group: str | None = DEFAULT_REPLAY_GROUP,
    restart: bool = False,
    idle_timeout_s: float = 30.0,
    delivery_timeout_s: float = 30.0,
) -> ReplayReport:
    """Redrive the dead letters matching ``flt`` and return what happened.

    ``to``: ``"original"`` (each record's ``x-original-topic``) or ``"retry"``. ``rate``: max
    records per second; ``limit``: max records republished by this run. ``force`` lifts the
    loop guard (records already replayed ``REPLAY_LIMIT`` times). ``again`` redrives dead
    letters the ledger lists as redriven (counted in ``again``); without it they are skipped
    (``skipped_redriven``). ``progress(done, total)`` gets offsets of the plan covered.
    ``group``: the consumer group that makes runs resumable (``None``: not resumable, nothing
    committed — fine for a handful of selected records); ``restart`` ignores an unfinished run
    of the same selection. Exactly-once or at-least-once per ``settings.processing_guarantee``.
    Ctrl-C stops after committing what was acknowledged (``interrupted``). Raises
    ``KafkaUnavailableError`` when no record comes for ``idle_timeout_s``, twice (a new
    consumer in between), and
    ``ReplayStalledError`` when a Kafka call outlives its budget.
    """
    run = Run(
        settings,
        flt or DlqFilter(),
        to=to,
        rate=rate,
        limit=limit,
        dry_run=dry_run,
        force=force,
        again=again,
        progress=progress,
        group=group,
        restart=restart,
        idle_timeout_s=idle_timeout_s,
        delivery_timeout_s=delivery_timeout_s,
    )
    started = time.monotonic()
    reader = _Reader(settings, group or tail.TAIL_GROUP_ID)
    sender = None
    clean = False
    try:
        if not dry_run:
            ensure_ledger(settings)
            exactly_once = settings.processing_guarantee == "exactly-once"
            sender = Sender(
                settings,
                transactional_id=transactional_id(group, run.report.run_id)
                if exactly_once
                else None,
                delivery_timeout_s=delivery_timeout_s,
            )
            run.report.exactly_once = exactly_once
        run.make_plan(reader.consumer)
        logger.info(
            "replay=start run=%s resumed=%s filter=%r to=%s dry_run=%s exactly_once=%s"
            " offsets=%d redriven_before=%d group=%s",
            run.report.run_id,
            run.report.resumed,
            run.flt.describe(),
            to,
            dry_run,
            run.report.exactly_once,
            run.report.offsets_total,
            len(run.ledger),
            run.group,
        )
        _loop(run, reader, sender)
        clean = True
    finally:
        if sender is not None:
            sender.close(abort=not clean)
        reader.close()
    report = run.report
    report.targets = dict(run.targets)
    report.errors = [f"{text} (×{n})" if n > 1 else text for text, n in run.errors.most_common(20)]
    report.offsets_done = run.covered()
    report.elapsed_s = time.monotonic() - started
    logger.info(
        "replay=end run=%s replayed=%d again=%d skipped_redriven=%d refused=%d failed=%d"
        " selected=%d recoveries=%d interrupted=%s",
        report.run_id,
        report.replayed,
        report.again,
        report.skipped_redriven,
        report.refused_count,
        report.failed,
        report.selected,
        report.recoveries,
        report.interrupted,
    )
    return report


class _Reader:
    """The run's consumer, replaced by a new one after a broker died under the run: a
    librdkafka consumer on ``assign()`` can stop fetching a partition whose leader's broker died
    and never resume (upstream #5153); a new consumer starts from fresh metadata."""

    def __init__(self, settings: Settings, group: str) -> None:
        self.settings = settings
        self.group = group
        self.consumer = self._new()
        self.renewals = 0

    def _new(self) -> Consumer:
        return clients.consumer(
            self.settings,
            self.group,
            logger=tail.RDKAFKA_LOGGER,
            **{"enable.partition.eof": True, "allow.auto.create.topics": False},
        )

    def renew(self, why: str) -> None:
        old, self.consumer = self.consumer, self._new()
        self.renewals += 1
        logger.warning("event=replay_consumer_renewed why=%s renewals=%d", why, self.renewals)
        self._close(old)

    def close(self) -> None:
        self._close(self.consumer)

    @staticmethod
    def _close(consumer: Consumer) -> None:
        try:
            bounded("close", consumer.close, _CLOSE_BUDGET_S)
        except ReplayStalledError as exc:
            logger.warning("event=close_incomplete error=%r", str(exc))


def _assign(run: Run, reader: _Reader) -> set[int]:
    """Assign the partitions left to do at the run's position (a new consumer first, when a
    recovery asked for one)."""
    if run.renew_consumer:
        run.renew_consumer = False
        reader.renew("producer_renewed")
    pending = {p for p, (_, end) in run.plan.items() if run.position[p] < end}
    reader.consumer.assign([TopicPartition(run.topic, p, run.position[p]) for p in pending])
    return pending


def _loop(run: Run, reader: _Reader, sender: Sender | None) -> None:
    topic = run.topic
    pending = _assign(run, reader)
    if not pending:
        run.checkpoint(reader.consumer, sender, done=True)
        return
    pacer = Pacer(run.rate, sender.poll if sender is not None else time.sleep)
    next_checkpoint = time.monotonic() + CHECKPOINT_INTERVAL_S
    since_checkpoint = 0
    idle_deadline = time.monotonic() + run.idle_timeout_s
    renewed_while_idle = False
    try:
        while True:
            if not pending or run.report.stopped_by_limit or run.failures:
                # The run's end: commit it, or redo what an aborted transaction lost.
                finished = not pending or run.report.stopped_by_limit
                if run.checkpoint(reader.consumer, sender, done=finished and not run.failures):
                    break
                pending = _assign(run, reader)
                run.report.stopped_by_limit = False
                idle_deadline = time.monotonic() + run.idle_timeout_s
                continue
            messages = tail.next_batch(reader.consumer, 0.2)
            if messages:
                idle_deadline = time.monotonic() + run.idle_timeout_s
                renewed_while_idle = False
            elif time.monotonic() > idle_deadline and not renewed_while_idle:
                # Records are due but none came: a new consumer once, before giving up.
                renewed_while_idle = True
                reader.renew(f"no_record_for_{run.idle_timeout_s:g}s")
                pending = _assign(run, reader)
                idle_deadline = time.monotonic() + run.idle_timeout_s
                continue
            elif time.monotonic() > idle_deadline:
                run.checkpoint(reader.consumer, sender, done=False)
                raise KafkaUnavailableError(
                    f"no record from {topic} for {run.idle_timeout_s:g} s, twice (a new consumer"
                    " in between); progress committed"
                )
            rewound = False
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
                if offset < run.position[partition]:
                    continue  # fetched before a rewind moved the position
                if offset >= end:
                    run.position[partition] = end
                    pending.discard(partition)
                    continue
                try:
                    handled = _handle(run, message, reader.consumer, sender, pacer)
                except (TransactionAbortedError, ProducerFencedError) as exc:
                    run.recover(sender, exc)  # type: ignore[arg-type]
                    pending = _assign(run, reader)
                    rewound = True
                    break
                if not handled:
                    break  # limit reached: this record stays unreplayed and uncommitted
                run.position[partition] = offset + 1
                since_checkpoint += 1
                if offset + 1 >= end:
                    pending.discard(partition)
                if run.progress is not None:
                    run.progress(run.covered(), run.report.offsets_total)
                # Checked per record: with a low --rate one batch can take many seconds.
                if since_checkpoint >= _CHECKPOINT_RECORDS or time.monotonic() >= next_checkpoint:
                    committed = run.checkpoint(reader.consumer, sender, done=False)
                    next_checkpoint = time.monotonic() + CHECKPOINT_INTERVAL_S
                    since_checkpoint = 0
                    if not committed:
                        pending = _assign(run, reader)
                        rewound = True
                        break
                    if run.failures:
                        break
            if sender is not None and not rewound:
                sender.poll(0)
    except KeyboardInterrupt:
        run.report.interrupted = True
        run.checkpoint(reader.consumer, sender, done=False)
        return
    if run.progress is not None:
        run.progress(run.covered(), run.report.offsets_total)


def _handle(
    run: Run, message: Message, consumer: Consumer, sender: Sender | None, pacer: Pacer
) -> bool:
    """Decide and send one record. ``False`` when the run's limit stops it before this one."""
    letter = DeadLetter.from_record(from_message(message), run.decode_only)
    if not run.flt.matches(letter, run.ledger):
        return True
    batch = run.batch
    done = run.report.previously_replayed + run.report.replayed + batch.sent
    if run.limit is not None and done >= run.limit:
        run.report.stopped_by_limit = True
        return False
    batch.selected += 1
    count = run.redrive_count(letter)
    if count is None:
        return True
    if count and letter.replay_count is not None:
        # Redriven before: those sends count for the loop guard and the new x-replay-count.
        letter = dataclasses.replace(letter, replay_count=letter.replay_count + count)
    refusal = letter.replay_refusal(run.force) or run.unpublishable.get(letter.ref)
    target, why = run.target_of(letter, sender.producer if sender is not None else consumer)
    if refusal or target is None:
        run.refuse(letter.ref, refusal or why)
        return True
    batch.sent += 1
    batch.again += count > 0
    if sender is None:  # dry run
        run.targets[target] += 1
        if len(run.report.replayed_refs) < MAX_LISTED:
            run.report.replayed_refs.append(letter.ref)
        return True
    pacer.wait()
    headers = replay_headers(
        letter.headers,
        replay_of=letter.ref,
        replay_count=letter.replay_count,
        now_ms=int(time.time() * 1000),
        target=run.to,
    )
    try:
        sender.produce(
            target,
            letter.key,
            letter.value,
            headers,
            run.on_delivery(sender, letter, target, count),
        )
    except UnpublishableError as exc:  # refused by the client itself, e.g. too large
        batch.sent -= 1
        batch.again -= count > 0
        run.refuse(letter.ref, f"cannot be republished to {target}: {exc}")
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
    """Republish one dead letter with a corrected payload; the dead letter stays as it was, and
    the ledger records it as redriven (an explicit choice: redriven before or not).

    The new payload must be a valid order (``InvalidOrderError`` otherwise, nothing sent); the
    key becomes its ``order_id``. Headers as for any replay. The loop guard applies unless
    ``force``.
    """
    order = parse_order(new_value)
    run = Run(
        settings,
        DlqFilter(),
        to=to,
        rate=None,
        limit=None,
        dry_run=False,
        force=force,
        again=True,
        progress=None,
        group=None,
        restart=False,
        idle_timeout_s=delivery_timeout_s,
        delivery_timeout_s=delivery_timeout_s,
    )
    started = time.monotonic()
    report = run.report
    run.batch.selected = 1
    ensure_ledger(settings)
    exactly_once = settings.processing_guarantee == "exactly-once"
    sender = Sender(
        settings,
        transactional_id=transactional_id(None, report.run_id) if exactly_once else None,
        delivery_timeout_s=delivery_timeout_s,
    )
    report.exactly_once = exactly_once
    refusal = dead_letter.replay_refusal(force)
    target, why = run.target_of(dead_letter, sender.producer)
    committed = False
    try:
        if refusal or target is None:
            run.refuse(dead_letter.ref, refusal or why)
        else:
            headers = replay_headers(
                dead_letter.headers,
                replay_of=dead_letter.ref,
                replay_count=dead_letter.replay_count,
                now_ms=int(time.time() * 1000),
                target=to,
            )
            sender.produce(
                target,
                order.order_id.encode(),
                new_value,
                headers,
                run.on_delivery(sender, dead_letter, target, 0),
            )
        committed = run.checkpoint(None, sender, done=True)  # type: ignore[arg-type]
        if not committed:
            report.failed += 1
            run.errors["not committed: the transaction was aborted"] += 1
    finally:
        sender.close(abort=not committed)
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
