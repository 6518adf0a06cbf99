"""The main processor: consumes ``orders.v1`` with a Quix Streams ``StreamingDataFrame``.

One guarded step turns each record into a routed output, which the same Quix step writes
through the application's producer to the topic its route picks (no branches, so no
per-record copies). In exactly-once mode the outputs
of a checkpoint and its input offsets are one Kafka transaction. ``on_processing_error`` is
never used to skip a record: the step does not raise, and anything else that fails stops the
application without committing, so a restart reprocesses from the last checkpoint.

Run: ``orderflow main`` or ``python -m processors.main`` (settings from ``ORDERFLOW_*``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from processors.core.envelope import from_quix
from processors.errors import KafkaUnavailableError, TopicDriftError
from processors.kafka.bounded import beat_on, guard_consumer, guard_producer
from processors.kafka.clients import quix_application
from processors.kafka.fetch_probe import lagging_positions
from processors.liveness import Watchdog
from processors.logs import event
from processors.metrics import Metrics
from processors.pipeline import GuardedStep
from processors.runner import run_processor, standalone
from processors.runtime import (
    build_step,
    consumer_extra,
    import_quixstreams,
    instance_id,
    producer_extra,
)
from processors.settings import Settings

if TYPE_CHECKING:
    from quixstreams import Application

logger = logging.getLogger(__name__)

POLL_TIMEOUT_S = 0.1
# A topic check waits up to TOPIC_CHECK_S for the controller; new checks start for
# CONTROLLER_SETTLING_S: all within the watchdog's connect bound (60 s + 5).
TOPIC_CHECK_S = 15.0
CONTROLLER_SETTLING_S = 45.0


def build_app(settings: Settings, step: GuardedStep) -> Application:
    """The Quix application: bytes in, the guarded step, each output written with its key,
    headers and timestamp to the topic of its route."""
    import_quixstreams()
    from quixstreams import message_context
    from quixstreams.models.topics.exceptions import TopicNotFoundError

    app = quix_application(
        settings,
        settings.group_main,
        loglevel=None,
        producer_extra=producer_extra(settings, "main"),
        consumer_extra=consumer_extra(settings, "main"),
        # Quix commits a due checkpoint only between polls: a short poll keeps an idle input
        # from delaying the commit (and so the visibility of retry records) by a whole second.
        consumer_poll_timeout=min(POLL_TIMEOUT_S, settings.commit_interval_s),
        request_timeout=TOPIC_CHECK_S,
    )

    def inspect() -> Any:
        source = app.topic(
            settings.topic_main, key_deserializer="bytes", value_deserializer="bytes"
        )
        # Each output topic is looked up once here, so a missing one fails the start.
        for name in (settings.topic_retry, settings.topic_dlq, settings.topic_processed):
            if name:
                app.topic(name, key_serializer="bytes", value_serializer="bytes")
        return source

    deadline = time.monotonic() + CONTROLLER_SETTLING_S
    while True:
        try:
            source = inspect()
            break
        except TopicNotFoundError as exc:
            raise TopicDriftError(
                f"{exc} (create the topics first: orderflow topics create)"
            ) from None
        except Exception as exc:
            # A broker answered that its controller is away (one restarting, an election):
            # ask again for a while rather than end a first start, which would exit 1.
            if "controller" in str(exc).lower() and time.monotonic() < deadline:
                event(logger, "topics_settling", logging.WARNING, error=str(exc)[:200])
                time.sleep(1.0)
                continue
            raise KafkaUnavailableError(
                f"cannot inspect topics on {settings.bootstrap_servers}: {exc}"
            ) from None

    # The application's own producer: the transactional one in exactly-once mode, whose
    # delivery reports Quix checks at every checkpoint, as it does for ``to_topic``.
    produce = app._producer.produce

    def process(value: Any, key: Any, timestamp: int, headers: Any) -> None:
        output = step(from_quix(message_context(), value, key, timestamp, headers)).output
        if output is not None:  # None: a success without an outcome topic writes nothing
            produce(
                topic=output.topic,
                value=output.value,
                key=output.key,
                headers=output.headers,
                timestamp=output.timestamp_ms,
            )

    # One terminal step that writes the output itself: ``to_topic`` would wrap each record in
    # a Row and run it through per-topic serializers for bytes that are final already, and
    # ``apply``/``set_headers``/``set_timestamp`` (or a branch per route, which deep-copies
    # each record) would wrap it again. The write and its errors are Quix's, as with to_topic.
    app.dataframe(source).update(process, metadata=True)
    return app


class MainSession:
    """One Quix application (its consumer and producer), with every blocking call bounded."""

    def __init__(self, settings: Settings, step: GuardedStep, watchdog: Watchdog) -> None:
        self.app = build_app(settings, step)
        self.topic = settings.topic_main
        self.stopped = False
        budget = settings.kafka_call_budget_s
        producer, consumer = self.app._producer, self.app._consumer
        guard_producer(producer, watchdog, budget)
        guard_consumer(consumer, watchdog, budget)
        beat_on(producer, "poll", watchdog)  # Quix polls the producer once per loop iteration

    def run(self) -> None:
        if not self.stopped:  # app.run() resets a stop() that came before it
            self.app.run()

    def stop(self) -> None:
        self.stopped = True
        self.app.stop()

    def work_waiting(self) -> bool:
        context = self.app._processing_context
        return not context.checkpoint.empty()  # processed, not yet committed

    def lagging(self) -> dict[tuple[str, int], int]:
        # The raw client, only once Quix has made it (its property would make one here).
        raw = getattr(self.app._consumer, "_inner_consumer", None)
        if raw is None:
            return {}
        return lagging_positions(raw, group_topic=self.topic)


def run(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT (exit normally) or a fatal error (``ProcessorError``)."""
    metrics = Metrics("main")
    step = build_step(settings, "main", metrics)
    event(
        logger,
        "started",
        processor="main",
        instance=instance_id(settings),
        topic=settings.topic_main,
        group=settings.group_main,
        guarantee=settings.processing_guarantee,
    )
    try:
        run_processor("main", settings, metrics, lambda wd: MainSession(settings, step, wd))
    finally:
        step.routed_log.flush()  # the failures counted since the last summary


if __name__ == "__main__":
    standalone(run)
