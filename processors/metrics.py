"""Prometheus metrics of both processors, served on ``--metrics-port`` when given.

Counters count attempts as they happen: under exactly-once, an aborted transaction's records
are processed (and counted) again, so counters can exceed the committed outcomes slightly.
Every series carries a ``processor`` label (``main`` or ``retry``).
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    """The instruments of one processor, in their own registry (tests can create many)."""

    def __init__(self, processor: str, registry: CollectorRegistry | None = None) -> None:
        self.processor = processor
        self.registry = registry or CollectorRegistry()
        labels = ["processor"]
        reg = self.registry
        self._consumed = Counter(
            "orderflow_records_consumed", "Records read from the input topic", labels, registry=reg
        )
        self._succeeded = Counter(
            "orderflow_records_succeeded", "Records the handler processed", labels, registry=reg
        )
        self._failed = Counter(
            "orderflow_records_failed",
            "Failed attempts by error category",
            [*labels, "category"],
            registry=reg,
        )
        self._retried = Counter(
            "orderflow_records_retried",
            "Records forwarded to the retry topic, by the attempt that failed",
            [*labels, "attempt"],
            registry=reg,
        )
        self._dead_lettered = Counter(
            "orderflow_records_dead_lettered",
            "Records written to the dead-letter topic, by reason",
            [*labels, "reason"],
            registry=reg,
        )
        self._skipped = Counter(
            "orderflow_records_skipped",
            "Re-read records already finished before a restart or rebalance",
            labels,
            registry=reg,
        )
        self._waiting = Gauge(
            "orderflow_records_waiting",
            "Records held in memory until their due time",
            labels,
            registry=reg,
        )
        self._last_progress = Gauge(
            "orderflow_last_progress_timestamp_seconds",
            "Unix time the processing loop last processed or committed records (or started)",
            labels,
            registry=reg,
        )
        self._recoveries = Counter(
            "orderflow_recoveries",
            "Kafka clients rebuilt in-process after a fenced or failed transaction, by cause",
            [*labels, "cause"],
            registry=reg,
        )
        self._lateness = Histogram(
            "orderflow_retry_lateness_seconds",
            "How long after its due time a retry record was processed",
            labels,
            buckets=LATENESS_BUCKETS,
            registry=reg,
        )
        self._latency = Histogram(
            "orderflow_processing_seconds",
            "Time to decode, handle and route one record",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )

    def consumed(self) -> None:
        self._consumed.labels(self.processor).inc()

    def succeeded(self) -> None:
        self._succeeded.labels(self.processor).inc()

    def failed(self, category: str) -> None:
        self._failed.labels(self.processor, category).inc()

    def retried(self, attempt: int) -> None:
        self._retried.labels(self.processor, str(attempt)).inc()

    def dead_lettered(self, reason: str) -> None:
        self._dead_lettered.labels(self.processor, reason).inc()

    def skipped(self) -> None:
        self._skipped.labels(self.processor).inc()

    def waiting(self, count: int) -> None:
        self._waiting.labels(self.processor).set(count)

    def last_progress(self, unix_s: float) -> None:
        self._last_progress.labels(self.processor).set(unix_s)

    def recovered(self, cause: str) -> None:
        self._recoveries.labels(self.processor, cause).inc()

    def lateness(self, seconds: float) -> None:
        self._lateness.labels(self.processor).observe(max(seconds, 0.0))

    def processing(self, seconds: float) -> None:
        self._latency.labels(self.processor).observe(seconds)


def serve(metrics: Metrics, port: int | None, host: str = "127.0.0.1") -> Any:
    """Start the ``/metrics`` HTTP endpoint in a daemon thread; no-op when ``port`` is None."""
    if port is None:
        return None
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    logger.info("event=metrics_listening host=%s port=%s", host, server.server_port)
    return server
