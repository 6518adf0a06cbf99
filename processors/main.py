"""The main processor: consumes ``orders.v1`` with a Quix Streams ``StreamingDataFrame``.

One guarded step turns each record into a routed output, and one Quix transform (no branches,
so no per-record copies) hands it on with its key, headers and timestamp to ``to_topic``, which
writes it to the topic its route picks. In exactly-once mode the outputs
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
from processors.core.routing import Route
from processors.errors import KafkaUnavailableError, TopicDriftError
from processors.kafka.bounded import beat_on, guard_consumer, guard_producer
from processors.kafka.clients import quix_application
from processors.kafka.fetch_probe import lagging_positions
from processors.liveness import Watchdog
from processors.logs import event
from processors.metrics import Metrics
from processors.pipeline import GuardedStep, Output
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
    """The Quix application: bytes in, guarded step, headers and timestamp set once, each
    output written to the topic of its route."""
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

    def inspect() -> tuple[Any, dict[Route, Any]]:
        source = app.topic(
            settings.topic_main, key_deserializer="bytes", value_deserializer="bytes"
        )
        sinks = {Route.RETRY: settings.topic_retry, Route.DLQ: settings.topic_dlq}
        if settings.topic_processed:
            sinks[Route.PROCESSED] = settings.topic_processed
        value_bytes = _output_value()
        outputs = {
            route: app.topic(name, key_serializer="bytes", value_serializer=value_bytes)
            for route, name in sinks.items()
        }
        return source, outputs

    deadline = time.monotonic() + CONTROLLER_SETTLING_S
    while True:
        try:
            source, outputs = inspect()
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

    def guarded(value: Any, key: Any, timestamp: int, headers: Any) -> tuple[Any, ...]:
        output = step(from_quix(message_context(), value, key, timestamp, headers)).output
        if output is None:  # a success without an outcome topic writes nothing
            return ()
        return ((output, output.key, output.timestamp_ms, output.headers),)

    # One transform sets the value, key, timestamp and headers at once: Quix's ``apply``,
    # ``set_headers`` and ``set_timestamp`` would wrap every record three times (and a fork
    # into branches would deep-copy it per branch). Expanded, so that "nothing" is no record.
    sdf = app.dataframe(source)
    sdf = sdf.__dataframe_clone__(stream=sdf.stream.add_transform(guarded, expand=True))
    sdf.to_topic(lambda output, _k, _t, _h: outputs[output.route])
    return app


def _output_value() -> Any:
    """The value serializer of the output topics: the routed output's value, byte for byte
    (the dataframe carries the whole ``Output`` so that ``to_topic`` can pick its topic).
    Built after ``import_quixstreams``."""
    from quixstreams.models.serializers import Serializer

    class OutputValue(Serializer):
        def __call__(self, output: Output, ctx: Any) -> bytes | None:
            return output.value

    return OutputValue()


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
