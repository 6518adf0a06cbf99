"""The main processor: consumes ``orders.v1`` with a Quix Streams ``StreamingDataFrame``.

One guarded step turns each record into a routed output; one filtered branch per route sets its
headers, timestamp and value and writes it with ``to_topic``. In exactly-once mode the outputs
of a checkpoint and its input offsets are one Kafka transaction. ``on_processing_error`` is
never used to skip a record: the step does not raise, and anything else that fails stops the
application without committing, so a restart reprocesses from the last checkpoint.

Run: ``orderflow main`` or ``python -m processors.main`` (settings from ``ORDERFLOW_*``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from processors.core.routing import Route
from processors.errors import KafkaUnavailableError, ProcessorError, TopicDriftError
from processors.kafka.clients import quix_application
from processors.logs import event
from processors.metrics import Metrics, serve
from processors.pipeline import GuardedStep, InputRecord, StepResult
from processors.runtime import (
    build_step,
    consumer_extra,
    import_quixstreams,
    instance_id,
    producer_extra,
    raise_if_denied,
)
from processors.settings import Settings

if TYPE_CHECKING:
    from quixstreams import Application

logger = logging.getLogger(__name__)

POLL_TIMEOUT_S = 0.1


def build_app(settings: Settings, step: GuardedStep) -> Application:
    """The Quix application: bytes in, guarded step, one branch per route, bytes out."""
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
    )
    try:
        source = app.topic(
            settings.topic_main, key_deserializer="bytes", value_deserializer="bytes"
        )
        sinks = {Route.RETRY: settings.topic_retry, Route.DLQ: settings.topic_dlq}
        if settings.topic_processed:
            sinks[Route.PROCESSED] = settings.topic_processed
        outputs = {
            route: app.topic(name, key_serializer="bytes", value_serializer="bytes")
            for route, name in sinks.items()
        }
    except TopicNotFoundError as exc:
        raise TopicDriftError(f"{exc} (create the topics first: orderflow topics create)") from None
    except Exception as exc:
        raise KafkaUnavailableError(
            f"cannot inspect topics on {settings.bootstrap_servers}: {exc}"
        ) from None

    def guarded(value: Any, key: Any, timestamp: int, headers: Any) -> StepResult:
        context = message_context()
        return step(
            InputRecord(
                topic=context.topic,
                partition=context.partition,
                offset=context.offset,
                timestamp_ms=timestamp,
                key=key,
                value=value,
                headers=list(headers) if headers else None,
            )
        )

    results = app.dataframe(source).apply(guarded, metadata=True)
    for route, topic in outputs.items():
        branch = results.filter(lambda r, route=route: _routed_to(r, route))
        branch = branch.set_headers(lambda r, _k, _t, _h: r.output.headers)
        branch = branch.set_timestamp(lambda r, _k, _t, _h: r.output.timestamp_ms)
        branch = branch.apply(lambda r: r.output.value)
        branch.to_topic(topic)
    return app


def _routed_to(result: StepResult, route: Route) -> bool:
    return result.output is not None and result.output.route is route


def run(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT (exit normally) or a fatal error (``ProcessorError``)."""
    metrics = Metrics("main")
    step = build_step(settings, "main", metrics)
    app = build_app(settings, step)
    serve(metrics, settings.metrics_port, settings.metrics_host)
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
        app.run()
    except Exception as exc:
        event(logger, "crashed", logging.ERROR, processor="main", error=type(exc).__name__)
        raise_if_denied(settings, "main", exc)
        raise ProcessorError(f"main processor stopped: {type(exc).__name__}: {exc}") from exc
    event(logger, "stopped", processor="main")


if __name__ == "__main__":
    from processors.cli.run import standalone

    standalone("main")
