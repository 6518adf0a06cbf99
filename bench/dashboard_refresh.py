"""``dashboard-refresh``: what one dashboard refresh costs with small topics and with huge ones.

A refresh is what the pages' collect step calls (dashboard/data.py): the Overview
(``data.overview``: watermarks of the four topics, both groups' lag, the newest DLQ records per
partition) and the DLQ page (``data.dead_letters``: the newest 50 dead letters; and with a
filter that matches nothing, which reads back as far as the page's scan limit allows).

Each phase gets its own topics, filled with a plain batching producer (small values; the point
is the topics' size, not realism), and both consumer groups are given committed offsets a few
records behind the end, as running processors would have. One untimed refresh of each kind
opens the connections first, as the dashboard's long-lived process has them open.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from bench.report import Result, fmt
from bench.support import (
    RDKAFKA_LOGGER,
    BenchError,
    Context,
    fresh_settings,
    own_topics,
    percentile,
    wall_ms,
)
from dashboard import data
from dashboard.shape import RecordCounts
from processors.core import headers as h
from processors.dlq.filters import DlqFilter
from processors.kafka import clients, tail
from processors.settings import Settings

NAME = "dashboard-refresh"
MAIN_GROUP_BEHIND = 5
RETRY_GROUP_BEHIND = 10
DLQ_PAGE_LIMIT = 50


@dataclass(frozen=True)
class Params:
    small: int = 100
    large: int = 1_000_000  # records in each of the four topics
    refreshes: int = 20


FULL = Params()
QUICK = Params(large=100_000)

REFRESHES = ("Overview", "DLQ page (newest 50)", "DLQ page, filter matching nothing")


def _refreshes(settings: Settings) -> dict[str, Callable[[], object]]:
    """One refresh of each kind, called as the pages call them. The Overview keeps one
    ``RecordCounts`` across refreshes, as the page keeps it in its session."""
    counts = RecordCounts()
    return dict(
        zip(
            REFRESHES,
            (
                lambda: data.overview(settings, counts),
                lambda: data.dead_letters(settings, DlqFilter(), DLQ_PAGE_LIMIT),
                lambda: data.dead_letters(
                    settings, DlqFilter(order_id="no-such-order"), DLQ_PAGE_LIMIT
                ),
            ),
            strict=True,
        )
    )


def run(ctx: Context, params: Params) -> Result:
    phases = {size: _phase(ctx, size, params.refreshes) for size in (params.small, params.large)}
    small, large = phases[params.small], phases[params.large]
    result = Result(
        NAME,
        f"dashboard-refresh: ms per refresh, {params.refreshes} refreshes each, "
        f"{params.small:,} vs {params.large:,} records per topic",
        [
            "refresh",
            f"{params.small:,}: median",
            "p95",
            f"{params.large:,}: median",
            "p95",
            "ratio (median)",
        ],
    )
    for kind in REFRESHES:
        a, b = small["refresh_ms"][kind], large["refresh_ms"][kind]
        ratio = b["median"] / a["median"] if a["median"] else float("nan")
        result.rows.append(
            [kind, fmt(a["median"], 1), fmt(a["p95"], 1), fmt(b["median"], 1), fmt(b["p95"], 1),
             fmt(ratio, 2, "×")]
        )  # fmt: skip
        b["ratio_to_small"] = ratio
    fill = large["fill"]
    result.notes.append(
        f"filled {fill['records']:,} records ({params.large:,} in each topic) in "
        f"{fill['seconds']:.1f} s ({fill['per_s']:,.0f}/s, batching producer, lz4)"
    )
    result.notes.append(
        "first (cold) refresh in ms, small → large: "
        + ", ".join(
            f"{kind} {small['cold_ms'][kind]:.0f} → {large['cold_ms'][kind]:.0f}"
            for kind in REFRESHES
        )
    )
    result.data = {"small": small, "large": large, "refreshes": params.refreshes}
    return result


def _phase(ctx: Context, per_topic: int, refreshes: int) -> dict[str, Any]:
    settings = fresh_settings(ctx, "dash")
    with own_topics(settings):
        fill = _fill(settings, per_topic)
        _commit_group_offsets(settings)
        calls = _refreshes(settings)
        cold = {kind: _timed(fn) for kind, fn in calls.items()}
        timings: dict[str, list[float]] = {kind: [] for kind in calls}
        for _ in range(refreshes):
            for kind, fn in calls.items():
                timings[kind].append(_timed(fn))
        sizes = tail.topic_totals(settings, settings.all_topics)
    return {
        "records_per_topic": per_topic,
        "topic_totals": sizes,
        "fill": fill,
        "cold_ms": cold,
        "refresh_ms": {
            kind: {
                "median": percentile(values, 50),
                "p95": percentile(values, 95),
                "max": max(values),
                "all": [round(v, 2) for v in values],
            }
            for kind, values in timings.items()
        },
    }


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def _fill(settings: Settings, per_topic: int) -> dict[str, Any]:
    """``per_topic`` small records in each topic, as fast as a batching producer goes."""
    failures: list[str] = []

    def on_error(err: KafkaError | None, _msg: Message) -> None:
        if err is not None and len(failures) < 5:
            failures.append(err.str())

    producer = clients.producer(
        settings,
        logger=RDKAFKA_LOGGER,
        **{
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
            "queue.buffering.max.kbytes": 524_288,
            "delivery.report.only.error": True,
            "on_delivery": on_error,
        },
    )
    now = wall_ms()
    headers = _headers(settings, now)
    started = time.monotonic()
    for topic in settings.all_topics:
        topic_headers = headers.get(topic)
        for i in range(per_topic):
            key = b"bench-%08d" % i
            value = b'{"order_id":"bench-%08d","n":%d}' % (i, i)
            while True:
                try:
                    producer.produce(topic, value, key, headers=topic_headers)
                    break
                except BufferError:
                    producer.poll(0.05)
            if i % 20_000 == 0:
                producer.poll(0)
    if producer.flush(120) or failures:
        raise BenchError(f"bulk fill failed: {failures or 'records left unsent'}")
    seconds = time.monotonic() - started
    records = per_topic * len(settings.all_topics)
    return {"records": records, "seconds": seconds, "per_s": records / seconds}


def _headers(settings: Settings, now: int) -> dict[str, list[tuple[str, bytes]]]:
    """Retry records are due in an hour; dead letters carry the usual context headers."""
    return {
        settings.topic_retry: [
            (h.ATTEMPTS, h.encode_int(1)),
            (h.MAX_ATTEMPTS, h.encode_int(5)),
            (h.RETRY_DUE_AT, h.encode_int(now + 3_600_000)),
        ],
        settings.topic_dlq: [
            (h.ATTEMPTS, h.encode_int(1)),
            (h.MAX_ATTEMPTS, h.encode_int(5)),
            (h.FIRST_FAILURE_AT, h.encode_int(now)),
            (h.LAST_FAILURE_AT, h.encode_int(now)),
            (h.ORIGINAL_TOPIC, h.encode_text(settings.topic_main)),
            (h.ORIGINAL_PARTITION, h.encode_int(0)),
            (h.ORIGINAL_OFFSET, h.encode_int(0)),
            (h.ERROR_CLASS, b"processors.handler.PaymentDeclined"),
            (h.ERROR_MESSAGE, b"payment declined (bench)"),
            (h.ERROR_CATEGORY, b"permanent"),
            (h.PROCESSOR, b"orderflow-main/bench/bench"),
            (h.CONSUMER_GROUP, h.encode_text(settings.group_main)),
            (h.DLQ_REASON, b"non_retryable"),
            (h.DLQ_AT, h.encode_int(now)),
        ],
    }


def _commit_group_offsets(settings: Settings) -> None:
    """Both groups a few records behind the end of their topic, as live processors are."""
    marks = tail.watermarks(settings, [settings.topic_main, settings.topic_retry], timeout_s=15)
    for group, topic, behind in (
        (settings.group_main, settings.topic_main, MAIN_GROUP_BEHIND),
        (settings.group_retry, settings.topic_retry, RETRY_GROUP_BEHIND),
    ):
        offsets = [
            TopicPartition(topic, p, max(low, high - behind))
            for p, (low, high) in marks[topic].items()
        ]
        consumer = clients.consumer(settings, group, logger=RDKAFKA_LOGGER)
        try:
            _commit(consumer, offsets)
        finally:
            consumer.close()


def _commit(consumer: Consumer, offsets: list[TopicPartition], timeout_s: float = 60) -> None:
    # On a fresh broker the offsets topic is created by the first group that asks for it.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
            return
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            retriable = isinstance(error, KafkaError) and (
                error.retriable() or error.code() == KafkaError.NOT_COORDINATOR
            )
            if not retriable or time.monotonic() >= deadline:
                raise BenchError(f"cannot commit group offsets: {exc}") from exc
            time.sleep(0.5)
