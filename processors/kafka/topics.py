"""Provision and inspect orderflow's topics with explicit configuration; never rely on defaults.

``ensure_topics`` creates missing topics and checks existing ones against the settings; it never
alters an existing topic: a difference is drift (``TopicDriftError``), for a human to resolve.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    ClusterMetadata,
    ConfigResource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from processors.errors import KafkaUnavailableError, TopicDriftError
from processors.kafka import access
from processors.kafka.clients import FAILURE_RECORD_LIMIT, MAIN_RECORD_LIMIT, admin_client
from processors.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
T = TypeVar("T")
# Leadership moving (a new topic, a broker down): the next attempt usually succeeds.
_RETRIABLE = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
}
MANAGED_CONFIG = ("cleanup.policy", "max.message.bytes", "min.insync.replicas", "retention.ms")


@dataclass(frozen=True)
class TopicSpec:
    """What one topic must look like."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicReport:
    name: str
    status: Literal["created", "ok", "drift"]
    differences: tuple[str, ...] = ()


@dataclass(frozen=True)
class PartitionState:
    partition: int
    leader: int  # -1: no leader
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    low: int  # earliest offset still stored
    high: int  # high watermark


@dataclass(frozen=True)
class TopicState:
    """A topic as the cluster has it (``exists`` False: only ``spec`` is meaningful)."""

    spec: TopicSpec
    exists: bool
    partitions: tuple[PartitionState, ...] = ()
    config: Mapping[str, str] = field(default_factory=dict)
    differences: tuple[str, ...] = ()

    @property
    def replication_factors(self) -> set[int]:
        return {len(p.replicas) for p in self.partitions}

    @property
    def high_watermark_total(self) -> int:
        return sum(p.high for p in self.partitions)

    @property
    def stored_offsets(self) -> int:
        """Offsets still stored (transaction markers included): sum of high - low."""
        return sum(p.high - p.low for p in self.partitions)


def min_insync_replicas(replication_factor: int) -> int:
    """RF-1 from RF 3 up (one broker may be down without blocking acks=all), else 1."""
    return replication_factor - 1 if replication_factor >= 3 else 1


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics ``settings`` describe; every one has the main topic's partition count so a
    record keeps its partition on every hop. ``orders.processed`` only if it has a name.
    Retry and DLQ accept larger records than the main topic: room for the failure headers."""
    rf = settings.replication_factor
    base = {"cleanup.policy": "delete", "min.insync.replicas": str(min_insync_replicas(rf))}
    topics = [
        (settings.topic_main, settings.retention_main_ms, MAIN_RECORD_LIMIT),
        (settings.topic_retry, settings.retention_retry_ms, FAILURE_RECORD_LIMIT),
        (settings.topic_dlq, settings.retention_dlq_ms, FAILURE_RECORD_LIMIT),
    ]
    if settings.topic_processed:
        processed = settings.retention_processed_ms
        topics.append((settings.topic_processed, processed, MAIN_RECORD_LIMIT))
    specs = [
        TopicSpec(
            name,
            settings.partitions,
            rf,
            {**base, "retention.ms": str(ms), "max.message.bytes": str(limit)},
        )
        for name, ms, limit in topics
    ]
    return [*specs, redriven_spec(settings)]


def redriven_spec(settings: Settings) -> TopicSpec:
    """The redrive ledger: compacted (the latest entry per dead letter is kept for as long as
    the dead letter matters), never deleted by time."""
    rf = settings.replication_factor
    config = {
        "cleanup.policy": "compact",
        "min.insync.replicas": str(min_insync_replicas(rf)),
        "retention.ms": "-1",
        "max.message.bytes": str(MAIN_RECORD_LIMIT),
    }
    return TopicSpec(settings.topic_redriven, settings.partitions, rf, config)


def differences(
    spec: TopicSpec, partitions: int, replication_factors: set[int], config: Mapping[str, str]
) -> tuple[str, ...]:
    """How an existing topic differs from ``spec``, one phrase per difference (empty: none)."""
    found = []
    if partitions != spec.partitions:
        found.append(f"partitions {partitions} (want {spec.partitions})")
    if replication_factors != {spec.replication_factor}:
        have = "/".join(str(rf) for rf in sorted(replication_factors)) or "none"
        found.append(f"replication factor {have} (want {spec.replication_factor})")
    for key, want in spec.config.items():
        have = config.get(key)
        if have != want:
            found.append(f"{key}={have} (want {want})")
    return tuple(found)


def ensure_topics(settings: Settings, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[TopicReport]:
    """Create missing topics, check the others; raise ``TopicDriftError`` if any differs."""
    reports = provision(settings, timeout_s=timeout_s)
    raise_on_drift(reports)
    return reports


def provision(
    settings: Settings,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    specs: Sequence[TopicSpec] | None = None,
) -> list[TopicReport]:
    """Create the missing topics (of ``specs``, default: all of orderflow's) and report on
    every one (``created``, ``ok`` or ``drift``).

    Raises ``KafkaUnavailableError`` (one line) if the cluster cannot be reached within about
    ``timeout_s`` or refuses to create a topic (e.g. a replication factor above the broker count).
    Returns once every topic is visible with a leader for each partition, so clients can use them.
    """
    admin = _Admin(settings, timeout_s)
    specs = topic_specs(settings) if specs is None else specs
    metadata = admin.metadata()
    missing = [spec for spec in specs if spec.name not in metadata.topics]
    created = admin.create(missing)
    if missing:
        metadata = admin.wait_visible([spec.name for spec in specs])
    reports = []
    for spec in specs:
        if spec.name in created:
            reports.append(TopicReport(spec.name, "created"))
            continue
        state = admin.observe(spec, metadata, with_offsets=False)
        status: Literal["ok", "drift"] = "drift" if state.differences else "ok"
        reports.append(TopicReport(spec.name, status, state.differences))
    for report in reports:
        log.info(
            "topic=%s status=%s differences=%s",
            report.name, report.status, "; ".join(report.differences) or "-",
        )  # fmt: skip
    return reports


def raise_on_drift(reports: Sequence[TopicReport]) -> None:
    drifted = [r for r in reports if r.status == "drift"]
    if drifted:
        listing = "; ".join(f"{r.name}: {', '.join(r.differences)}" for r in drifted)
        raise TopicDriftError(
            f"topic drift (orderflow never alters an existing topic): {listing}; "
            "fix the topic or the settings"
        )


def describe_topics(
    settings: Settings, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[TopicState]:
    """Partitions, leaders, replicas, ISR, watermarks and config of every orderflow topic."""
    admin = _Admin(settings, timeout_s)
    metadata = admin.metadata()
    return [admin.observe(spec, metadata, with_offsets=True) for spec in topic_specs(settings)]


# --- admin calls ---------------------------------------------------------------------------------


def _has_leaders(metadata: ClusterMetadata, name: str) -> bool:
    topic = metadata.topics.get(name)
    return (
        topic is not None
        and topic.error is None
        and bool(topic.partitions)
        and all(p.leader >= 0 for p in topic.partitions.values())
    )


class _LastLine(logging.Handler):
    """Keeps librdkafka's last log line: it explains a failure better than the error code, and
    captured here it does not spill onto the user's terminal."""

    def __init__(self) -> None:
        super().__init__()
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage()


_LIBRDKAFKA_LINE = re.compile(r"\]: (?:\S+/\S+: )?(?P<text>.*?)(?: \(after \d+ms.*)?$")


class _Admin:
    """One AdminClient and one deadline shared by every request of an operation."""

    def __init__(self, settings: Settings, timeout_s: float) -> None:
        self.settings = settings
        self.deadline = time.monotonic() + timeout_s
        self.diagnostics = _LastLine()
        librdkafka_log = logging.Logger(f"{__name__}.librdkafka")  # unregistered: never propagates
        librdkafka_log.addHandler(self.diagnostics)
        self.client = admin_client(settings, logger=librdkafka_log)

    def remaining(self) -> float:
        return max(1.0, self.deadline - time.monotonic())

    def unavailable(self, what: str, exc: BaseException) -> KafkaUnavailableError:
        error = exc.args[0] if exc.args else None
        reason = error.str() if isinstance(error, KafkaError) else str(exc) or type(exc).__name__
        self.client.poll(0)  # delivers librdkafka's queued log lines to self.diagnostics
        if self.diagnostics.last:
            match = _LIBRDKAFKA_LINE.search(self.diagnostics.last)
            reason += f" ({match.group('text') if match else self.diagnostics.last})"
        reason = (reason.splitlines() or ["no reason given"])[0]
        return KafkaUnavailableError(f"{what} at {self.settings.bootstrap_servers}: {reason}")

    def metadata(self) -> ClusterMetadata:
        try:
            return self.client.list_topics(timeout=self.remaining())
        except KafkaException as exc:
            raise self.unavailable("cannot reach Kafka", exc) from None

    def wait_visible(self, names: list[str]) -> ClusterMetadata:
        """Metadata once every topic in ``names`` has a leader for each partition.

        Each metadata request may reach a different broker; a new topic reaches each one a moment
        after the controller created it.
        """
        while True:
            metadata = self.metadata()
            pending = [name for name in names if not _has_leaders(metadata, name)]
            if not pending:
                return metadata
            if time.monotonic() >= self.deadline:
                raise KafkaUnavailableError(
                    f"topic(s) {', '.join(pending)} created but without leaders after the timeout "
                    f"at {self.settings.bootstrap_servers}"
                )
            time.sleep(0.2)

    def create(self, specs: list[TopicSpec]) -> set[str]:
        """Create ``specs``; return the names this call created (not those created meanwhile)."""
        if not specs:
            return set()
        new = [
            NewTopic(s.name, s.partitions, s.replication_factor, config=dict(s.config))
            for s in specs
        ]
        timeout = self.remaining()
        futures = self.client.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
        created = set()
        for name, future in futures.items():
            try:
                future.result(timeout=self.remaining())
                created.add(name)
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if (
                    isinstance(error, KafkaError)
                    and error.code() == KafkaError.TOPIC_ALREADY_EXISTS
                ):
                    continue
                access.raise_if_denied(self.settings, exc, "CREATE", f"{name}")
                raise self.unavailable(f"Kafka refused to create topic {name}", exc) from None
            except TimeoutError as exc:
                raise self.unavailable(f"creating topic {name} timed out", exc) from None
        return created

    def observe(
        self, spec: TopicSpec, metadata: ClusterMetadata, *, with_offsets: bool
    ) -> TopicState:
        topic = metadata.topics.get(spec.name)
        if topic is None or topic.error is not None:
            return TopicState(spec, exists=False)
        config = self.config(spec.name)
        offsets = self.offsets(spec.name, list(topic.partitions)) if with_offsets else {}
        partitions = tuple(
            PartitionState(
                p.id, p.leader, tuple(p.replicas), tuple(p.isrs), *offsets.get(p.id, (0, 0))
            )
            for p in sorted(topic.partitions.values(), key=lambda p: p.id)
        )
        rfs = {len(p.replicas) for p in partitions}
        found = differences(spec, len(partitions), rfs, config)
        return TopicState(spec, True, partitions, config, found)

    def config(self, name: str) -> dict[str, str]:
        """The topic's managed keys plus every non-default entry."""
        resource = ConfigResource(ResourceType.TOPIC, name)

        def request() -> dict[str, Any]:
            futures = self.client.describe_configs([resource], request_timeout=self.remaining())
            return next(iter(futures.values())).result(timeout=self.remaining())

        entries = self.retrying(f"cannot read the config of topic {name}", request)
        return {
            key: entry.value
            for key, entry in sorted(entries.items())
            if key in MANAGED_CONFIG or not entry.is_default
        }

    def offsets(self, name: str, partitions: list[int]) -> dict[int, tuple[int, int]]:
        """``{partition: (low, high)}`` from ListOffsets (no consumer, no group)."""

        def request(spec: OffsetSpec) -> dict[int, int]:
            requested = {TopicPartition(name, p): spec for p in partitions}
            futures = self.client.list_offsets(requested, request_timeout=self.remaining())
            return {
                tp.partition: future.result(timeout=self.remaining()).offset
                for tp, future in futures.items()
            }

        what = f"cannot read the offsets of topic {name}"
        low = self.retrying(what, lambda: request(OffsetSpec.earliest()))
        high = self.retrying(what, lambda: request(OffsetSpec.latest()))
        return {p: (low.get(p, 0), high.get(p, 0)) for p in partitions}

    def retrying(self, what: str, request: Callable[[], T]) -> T:
        """``request()``, repeated while it fails with a retriable error (a partition whose new
        leader is not ready yet) and the deadline allows."""
        while True:
            try:
                return request()
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                retriable = isinstance(error, KafkaError) and (
                    error.retriable() or error.code() in _RETRIABLE
                )
                if not retriable or time.monotonic() >= self.deadline:
                    raise self.unavailable(what, exc) from None
            except TimeoutError as exc:
                raise self.unavailable(what, exc) from None
            time.sleep(0.2)
