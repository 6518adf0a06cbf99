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

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from processors.core.envelope import from_message
from processors.core.order import parse_order
from processors.dlq.filters import DlqFilter
from processors.dlq.model import DeadLetter
from processors.dlq.rewrite import ReplayTarget, replay_headers
from processors.dlq.run import MAX_LISTED, Pacer, Progress, ReplayReport, Run
from processors.errors import KafkaUnavailableError
from processors.kafka import clients, tail
from processors.settings import Settings

__all__ = ["DEFAULT_REPLAY_GROUP", "ReplayReport", "replay", "replay_edited"]

logger = logging.getLogger(__name__)

DEFAULT_REPLAY_GROUP = "orderflow-dlq-replay"
CHECKPOINT_INTERVAL_S = 1.0
_CHECKPOINT_RECORDS = 1000


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
    run = Run(
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
            # Any dead letter the DLQ holds may go back; the target topic's limit decides.
            **{
                "message.timeout.ms": int(delivery_timeout_s * 1000),
                "message.max.bytes": clients.FAILURE_RECORD_LIMIT,
            },
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


def _loop(run: Run, consumer: Consumer, producer: Producer | None) -> None:
    topic = run.topic
    pending = {p for p, (start, end) in run.plan.items() if start < end}
    if not pending:
        run.checkpoint(consumer, producer, done=True)
        return
    consumer.assign([TopicPartition(topic, p, run.plan[p][0]) for p in pending])
    pacer = Pacer(run.rate, producer.poll if producer is not None else time.sleep)
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
    run: Run, message: Message, consumer: Consumer, producer: Producer | None, pacer: Pacer
) -> bool:
    """Decide and send one record. ``False`` when the run's limit stops it before this one."""
    letter = DeadLetter.from_record(from_message(message))
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
    callback = run.on_delivery(letter.partition, letter.offset, letter.ref, target)
    while True:
        try:
            producer.produce(
                target, key=letter.key, value=letter.value, headers=headers, on_delivery=callback
            )
            break
        except BufferError:
            producer.poll(0.1)
        except KafkaException as exc:  # refused by the client itself, e.g. too large
            run.refuse(letter.ref, f"cannot be republished to {target}: {_error_text(exc)}")
            return True
    run.in_flight += 1
    return True


def _error_text(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else exc
    return error.str() if isinstance(error, KafkaError) else str(error)


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
    run = Run(
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
            dead_letter.headers,
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
