"""Prometheus metrics of both processors, served on ``--metrics-port`` when given.

Counters count attempts as they happen: under exactly-once, an aborted transaction's records
are processed (and counted) again, so counters can exceed the committed outcomes slightly.
Every series carries a ``processor`` label (``main`` or ``retry``).

Recording is on every record's path, so it is plain arithmetic on ints (no label lookup, no
lock per record); a custom collector turns the tallies into metric families when scraped.
Each processor records from its one processing thread; the scrape thread only reads.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class _Buckets:
    """A histogram's observations: a count per bucket (the last is +Inf) and their sum."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def family(self, name: str, documentation: str, processor: str) -> HistogramMetricFamily:
        counts, total = list(self.counts), self.sum
        cumulative, buckets = 0, []
        for bound, count in zip((*self.bounds, float("inf")), counts, strict=True):
            cumulative += count
            buckets.append((floatToGoString(bound), cumulative))
        family = HistogramMetricFamily(name, documentation, labels=["processor"])
        family.add_metric([processor], buckets, total)
        return family


class Metrics:
    """The instruments of one processor, in their own registry (tests can create many)."""

    def __init__(self, processor: str, registry: CollectorRegistry | None = None) -> None:
        self.processor = processor
        self.registry = registry or CollectorRegistry()
        self._consumed = 0
        self._succeeded = 0
        self._skipped = 0
        self._waiting = 0
        self._last_progress = 0.0
        self._recoveries: defaultdict[str, int] = defaultdict(int)
        self._failed: defaultdict[str, int] = defaultdict(int)
        self._retried: defaultdict[int, int] = defaultdict(int)
        self._dead_lettered: defaultdict[str, int] = defaultdict(int)
        self._lateness = _Buckets(LATENESS_BUCKETS)
        self._latency = _Buckets(LATENCY_BUCKETS)
        self.registry.register(_Exporter(self))

    def succeeded(self, seconds: float) -> None:
        """One record processed successfully in ``seconds`` (counted consumed too)."""
        self._consumed += 1
        self._succeeded += 1
        self._latency.observe(seconds)

    def failed(self, category: str, seconds: float) -> None:
        """One record whose attempt failed (``category``), routed in ``seconds``."""
        self._consumed += 1
        self._failed[category] += 1
        self._latency.observe(seconds)

    def retried(self, attempt: int) -> None:
        self._retried[attempt] += 1

    def dead_lettered(self, reason: str) -> None:
        self._dead_lettered[reason] += 1

    def skipped(self) -> None:
        self._skipped += 1

    def waiting(self, count: int) -> None:
        self._waiting = count

    def last_progress(self, unix_s: float) -> None:
        self._last_progress = unix_s

    def recovered(self, cause: str) -> None:
        self._recoveries[cause] += 1

    def lateness(self, seconds: float) -> None:
        self._lateness.observe(max(seconds, 0.0))


class _Exporter(Collector):
    """Reads a ``Metrics``' tallies at scrape time (dict copies are atomic under the GIL)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m, p = self.metrics, self.metrics.processor
        for name, documentation, value in (
            ("orderflow_records_consumed", "Records read from the input topic", m._consumed),
            ("orderflow_records_succeeded", "Records the handler processed", m._succeeded),
            (
                "orderflow_records_skipped",
                "Re-read records already finished before a restart or rebalance",
                m._skipped,
            ),
        ):
            counter = CounterMetricFamily(name, documentation, labels=["processor"])
            counter.add_metric([p], value)
            yield counter
        for name, documentation, label, tally in (
            (
                "orderflow_records_failed",
                "Failed attempts by error category",
                "category",
                m._failed,
            ),
            (
                "orderflow_records_retried",
                "Records forwarded to the retry topic, by the attempt that failed",
                "attempt",
                m._retried,
            ),
            (
                "orderflow_records_dead_lettered",
                "Records written to the dead-letter topic, by reason",
                "reason",
                m._dead_lettered,
            ),
            (
                "orderflow_recoveries",
                "Kafka clients rebuilt in-process after a fenced or failed transaction, by cause",
                "cause",
                m._recoveries,
            ),
        ):
            counter = CounterMetricFamily(name, documentation, labels=["processor", label])
            for key, value in dict(tally).items():
                counter.add_metric([p, str(key)], value)
            yield counter
        gauge = GaugeMetricFamily(
            "orderflow_records_waiting",
            "Records held in memory until their due time",
            labels=["processor"],
        )
        gauge.add_metric([p], m._waiting)
        yield gauge
        gauge = GaugeMetricFamily(
            "orderflow_last_progress_timestamp_seconds",
            "Unix time the processing loop last processed or committed records (or started)",
            labels=["processor"],
        )
        gauge.add_metric([p], m._last_progress)
        yield gauge
        yield m._lateness.family(
            "orderflow_retry_lateness_seconds",
            "How long after its due time a retry record was processed",
            p,
        )
        yield m._latency.family(
            "orderflow_processing_seconds", "Time to decode, handle and route one record", p
        )


def serve(metrics: Metrics, port: int | None, host: str = "127.0.0.1") -> Any:
    """Start the ``/metrics`` HTTP endpoint in a daemon thread; no-op when ``port`` is None."""
    return serve_registry(metrics.registry, port, host)


def serve_registry(registry: CollectorRegistry, port: int | None, host: str = "127.0.0.1") -> Any:
    """Serve ``registry`` on ``/metrics`` from a daemon thread; no-op when ``port`` is None."""
    if port is None:
        return None
    server, _thread = start_http_server(port, addr=host, registry=registry)
    logger.info("event=metrics_listening host=%s port=%s", host, server.server_port)
    return server
