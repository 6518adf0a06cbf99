"""The reference workers the side-by-side benchmark runs next to orderflow, each in its own
process: ``python -m bench.workers bare-loop|bare-quix|naive|replay`` (settings from
``ORDERFLOW_*``, as the processors take them).

- ``bare-loop``: the ceiling. confluent-kafka consumer and producer from the project's client
  factory, ``parse_order`` per record, one produce per record, producer flushed and offsets
  committed every ``commit_interval_s``.
- ``bare-quix``: a Quix Streams app doing the same validation: one ``apply`` and one
  ``to_topic``, from the project's Quix factory (same client configuration and guarantee as the
  main processor), so the difference to ``orderflow main`` is only what orderflow adds.
- ``naive``: what the usual implementations of this pattern do: per record produce, flush and a
  synchronous commit.
- ``replay``: ``processors.dlq.replay.replay`` over the whole DLQ, unlimited; prints its own
  figures (records, wall seconds and CPU seconds of the call, from ``getrusage``).

Every worker logs ``event=started`` once its clients exist and stops on SIGTERM.
"""

from __future__ import annotations

import json
import logging
import resource
import signal
import sys
import threading
import time

from confluent_kafka import KafkaException, TopicPartition

from bench.support import STARTED
from processors.core.order import parse_order
from processors.kafka import clients
from processors.logs import configure
from processors.settings import Settings, load_settings

logger = logging.getLogger("bench.workers")
RDKAFKA_LOGGER = logging.getLogger("processors.kafka.rdkafka")
RESULT_PREFIX = "bench-result="
CONSUME_BATCH = 500
TIMEOUT_S = 30.0


def outcome(value: bytes) -> bytes:
    """The validation every reference worker does, and a small outcome record."""
    order = parse_order(value)
    return json.dumps({"status": "processed", "order_id": order.order_id}).encode()


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def consume_loop(settings: Settings, *, naive: bool) -> None:
    """The bare loop (``naive=False``) or the per-record flush-and-commit loop."""
    stop = _stop_event()
    consumer = clients.consumer(
        settings,
        settings.group_main,
        logger=RDKAFKA_LOGGER,
        **{"session.timeout.ms": settings.session_timeout_ms},
    )
    producer = clients.producer(settings, logger=RDKAFKA_LOGGER)
    failures: list[str] = []

    def delivered(err, _msg) -> None:  # type: ignore[no-untyped-def]
        if err is not None:
            failures.append(err.str())

    out = settings.topic_processed
    consumer.subscribe([settings.topic_main])
    logger.info(STARTED)
    last_commit = time.monotonic()
    positions: dict[tuple[str, int], int] = {}  # next offset to commit, per partition
    try:
        while not stop.is_set():
            batch = consumer.consume(1 if naive else CONSUME_BATCH, timeout=0.1)
            for message in batch:
                error = message.error()
                if error is not None:
                    if error.fatal():
                        raise KafkaException(error)
                    continue
                value = outcome(message.value())
                producer.produce(out, key=message.key(), value=value, on_delivery=delivered)
                if naive:
                    if producer.flush(TIMEOUT_S):
                        raise RuntimeError("a produce was not acknowledged")
                    consumer.commit(message=message, asynchronous=False)
                else:
                    positions[(message.topic(), message.partition())] = message.offset() + 1
            producer.poll(0)
            if failures:
                raise RuntimeError(f"produce failed: {failures[0]}")
            if not naive and time.monotonic() - last_commit >= settings.commit_interval_s:
                if producer.flush(TIMEOUT_S):
                    raise RuntimeError("produces were not acknowledged")
                if positions:
                    offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
                    consumer.commit(offsets=offsets, asynchronous=False)
                    positions.clear()
                last_commit = time.monotonic()
    finally:
        producer.flush(TIMEOUT_S)
        consumer.close()


def bare_quix(settings: Settings) -> None:
    from processors.runtime import import_quixstreams

    import_quixstreams()
    app = clients.quix_application(
        settings,
        settings.group_main,
        loglevel=None,
        consumer_poll_timeout=min(0.1, settings.commit_interval_s),
    )
    source = app.topic(settings.topic_main, key_deserializer="bytes", value_deserializer="bytes")
    sink = app.topic(settings.topic_processed, key_serializer="bytes", value_serializer="bytes")
    app.dataframe(source).apply(outcome).to_topic(sink)
    logger.info(STARTED)
    app.run()


def dlq_replay(settings: Settings) -> None:
    from processors.dlq.replay import replay

    logger.info(STARTED)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    report = replay(settings, group=f"{settings.group_main}-replay")
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    figures = {
        "replayed": report.replayed,
        "failed": report.failed,
        "refused": report.refused_count,
        "seconds": elapsed,
        "cpu_s": cpu,
    }
    print(RESULT_PREFIX + json.dumps(figures), flush=True)
    if not report.ok:
        sys.exit(1)


WORKERS = {
    "bare-loop": lambda s: consume_loop(s, naive=False),
    "naive": lambda s: consume_loop(s, naive=True),
    "bare-quix": bare_quix,
    "replay": dlq_replay,
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in WORKERS:
        print(f"usage: python -m bench.workers {{{'|'.join(WORKERS)}}}", file=sys.stderr)
        return 2
    configure(level="INFO")
    WORKERS[argv[0]](load_settings())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
