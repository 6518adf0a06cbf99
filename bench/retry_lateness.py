"""``retry-lateness``: how late after its ``x-retry-due-at`` each retry actually ran.

Steady case (per main-processor commit interval): M orders that fail their first attempt with a
transient error, produced at a steady rate through both processors with a 1 s ±10 % backoff.
Lateness = the outcome's ``processed_at`` minus the due time on the retry record, so an early
retry would show as a negative figure. The retry record's own visibility (when a read_committed
reader first saw it) separates the main processor's commit delay from the retry processor's.
The retry processor's Prometheus lateness histogram is scraped as a cross-check.

Mixed case: one record due in 30 s written ahead of 1 s records in the same retry partition:
the short ones must not wait for the long one (no head-of-line blocking).
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.collect import Collector, Seen
from bench.report import Result, fmt
from bench.support import (
    RDKAFKA_LOGGER,
    BenchError,
    Context,
    Processor,
    free_port,
    fresh_settings,
    load_1m,
    own_topics,
    running,
    summary,
    wall_ms,
)
from processors.core import headers as h
from processors.core.order import Simulation
from processors.kafka import clients
from processors.producer import generate_orders, order_headers, produce_orders
from processors.settings import Settings

NAME = "retry-lateness"
LATENESS_METRIC = "orderflow_retry_lateness_seconds"
RETRY_SETTINGS: dict[str, Any] = {
    "backoff_initial_ms": 1000,
    "backoff_multiplier": 3.0,
    "backoff_jitter": 0.1,
    "max_attempts": 5,
}


@dataclass(frozen=True)
class Params:
    orders: int = 2_000
    rate_per_s: float = 200.0
    # Commit interval of both processors: the settings default, and a short one.
    commit_intervals: tuple[float, ...] = (1.0, 0.2)
    long_delay_s: float = 30.0
    short_delay_s: float = 1.0
    short_records: int = 20


FULL = Params()
QUICK = Params(orders=300, rate_per_s=100.0, long_delay_s=10.0)


def run(ctx: Context, params: Params) -> Result:
    result = Result(
        NAME,
        "retry-lateness: processed_at − x-retry-due-at (ms); early = processed before due",
        ["case", "records", "p50", "p95", "p99", "max", "early", "visible late", "p99 vis."],
    )
    cases: list[dict[str, Any]] = []
    for interval in params.commit_intervals:
        case = steady(ctx, params, interval)
        cases.append(case)
        late = case["lateness_ms"]
        result.rows.append(
            [
                f"1 s backoff, commit {interval:g} s, {params.rate_per_s:g}/s",
                f"{case['records']:,}",
                fmt(late["p50"]),
                fmt(late["p95"]),
                fmt(late["p99"]),
                fmt(late["max"]),
                str(case["early"]),
                f"{case['visible_after_due']:,}",
                fmt(case["after_visible_ms"]["p99"]),
            ]
        )
        hist = case["histogram"]
        result.notes.append(
            f"commit {interval:g} s: Prometheus histogram count {hist['count']:,}, mean "
            f"{fmt(hist['mean_ms'])} ms, ≤100 ms {fmt(hist['share_le_0.1'], 1)} %, ≤250 ms "
            f"{fmt(hist['share_le_0.25'], 1)} %, ≤1 s {fmt(hist['share_le_1'], 1)} %"
        )
    mixed = _mixed(ctx, params)
    cases.append(mixed)
    shorts, long_ = mixed["short_lateness_ms"], mixed["long_lateness_ms"]
    result.rows.append(
        [
            f"mixed: {params.short_delay_s:g} s records behind a {params.long_delay_s:g} s one",
            str(params.short_records),
            fmt(shorts["p50"]),
            fmt(shorts["p95"]),
            fmt(shorts["p99"]),
            fmt(shorts["max"]),
            str(mixed["early"]),
            "-",
            "-",
        ]
    )
    result.rows.append(
        [
            f"mixed: the {params.long_delay_s:g} s record itself",
            "1",
            fmt(long_),
            "",
            "",
            fmt(long_),
            str(int(long_ < 0)),
            "-",
            "-",
        ]
    )
    early = sum(c["early"] for c in cases)
    held = shorts["max"] >= (params.long_delay_s - params.short_delay_s) * 1000 / 2
    if early or held:
        result.ok = False
    result.notes.append(
        "visible late: retry records a read_committed reader first saw after their due time "
        "(the main processor's commit interval, not the retry processor); p99 vis.: lateness "
        "counted from max(due, visible)."
    )
    result.notes.append(
        f"early retries: {early}; short records held behind the long one: {'yes' if held else 'no'}"
    )
    result.data = {"params": _params(params), "cases": cases}
    return result


def _params(params: Params) -> dict[str, Any]:
    return {
        "orders": params.orders,
        "rate_per_s": params.rate_per_s,
        "backoff": RETRY_SETTINGS,
        "long_delay_s": params.long_delay_s,
        "short_delay_s": params.short_delay_s,
        "short_records": params.short_records,
    }


def _transient(count: int, seed: int) -> list[Any]:
    once = Simulation(error="transient", fail_attempts=1)
    orders = generate_orders(count, "success", seed)
    return [o.model_copy(update={"simulate": once}) for o in orders]


def steady(ctx: Context, params: Params, interval: float) -> dict[str, Any]:
    settings = fresh_settings(ctx, "rl", commit_interval_s=interval, **RETRY_SETTINGS)
    warmup = _transient(1, seed=10)
    orders = _transient(params.orders, seed=11)
    warm_key = warmup[0].order_id.encode()
    port = free_port()
    main = Processor("main", settings, ctx.workdir, instance_id=f"bench-rl-{interval:g}")
    retry = Processor(
        "retry", settings, ctx.workdir, instance_id=f"bench-rl-{interval:g}", metrics_port=port
    )
    processed = settings.topic_processed
    load_before = load_1m()

    def alive() -> None:
        main.check_alive()
        retry.check_alive()

    with (
        own_topics(settings),
        running(main, retry),
        Collector(settings, [settings.topic_retry, processed]) as seen,
    ):
        main.wait_started()
        retry.wait_started()
        if not produce_orders(settings, warmup).ok:
            raise BenchError("warm-up order was not delivered")
        seen.wait_for(lambda: seen.count(processed) >= 1, 120, "the warm-up retry", alive)
        produced = produce_orders(settings, orders, rate=params.rate_per_s)
        if not produced.ok:
            raise BenchError(f"producer failed: {'; '.join(produced.errors)}")
        seen.wait_for(
            lambda: seen.count(processed) >= 1 + params.orders,
            120 + params.orders / params.rate_per_s,
            f"{params.orders:,} retried outcomes",
            alive,
        )
        metrics = _scrape(port)
        records = seen.snapshot()
    due_by_key, visible_by_key = {}, {}
    for record in records:
        if record.topic == settings.topic_retry and record.key not in due_by_key:
            due_by_key[record.key] = _int_header(record, h.RETRY_DUE_AT)
            visible_by_key[record.key] = record.arrived_ms
    lateness, after_visible = [], []
    for outcome in records:
        if outcome.topic != processed or outcome.key == warm_key:
            continue
        body = json.loads(outcome.value or b"{}")
        if body.get("attempts") != 2:
            raise BenchError(f"outcome of {outcome.key!r} after {body.get('attempts')} attempts")
        due = due_by_key[outcome.key]
        lateness.append(body["processed_at"] - due)
        after_visible.append(body["processed_at"] - max(due, visible_by_key[outcome.key]))
    visible_late = sum(1 for key, due in due_by_key.items() if visible_by_key[key] > due)
    return {
        "case": "steady",
        "commit_interval_s": interval,
        "records": len(lateness),
        "lateness_ms": summary(lateness),
        "early": sum(1 for x in lateness if x < 0),
        "visible_after_due": visible_late,
        "after_visible_ms": summary(after_visible),
        "histogram": _histogram(metrics),
        "load_1m": [load_before, load_1m()],
    }


def _mixed(ctx: Context, params: Params) -> dict[str, Any]:
    settings = fresh_settings(ctx, "rlmix", commit_interval_s=0.2, **RETRY_SETTINGS)
    retry = Processor("retry", settings, ctx.workdir, instance_id="bench-rl-mixed")
    processed = settings.topic_processed
    total = params.short_records + 2  # + the long one and a warm-up
    with own_topics(settings), running(retry), Collector(settings, [processed]) as seen:
        retry.wait_started()
        _produce_retry_records(settings, [("mix-warmup", 0)], partition=1)
        seen.wait_for(
            lambda: seen.count(processed) >= 1, 120, "the warm-up retry", retry.check_alive
        )
        long_ms, short_ms = int(params.long_delay_s * 1000), int(params.short_delay_s * 1000)
        batch = [("mix-long", long_ms)]
        batch += [(f"mix-short-{i}", short_ms) for i in range(params.short_records)]
        dues = _produce_retry_records(settings, batch, partition=0)
        seen.wait_for(
            lambda: seen.count(processed) >= total,
            params.long_delay_s + 120,
            "the mixed-delay outcomes",
            retry.check_alive,
        )
        outcomes = seen.snapshot(processed)
    late = {}
    for outcome in outcomes:
        key = (outcome.key or b"").decode()
        if key in dues:
            late[key] = json.loads(outcome.value or b"{}")["processed_at"] - dues[key]
    shorts = [v for k, v in late.items() if k.startswith("mix-short-")]
    return {
        "case": "mixed",
        "short_lateness_ms": summary(shorts),
        "long_lateness_ms": late["mix-long"],
        "early": sum(1 for v in late.values() if v < 0),
    }


def _produce_retry_records(
    settings: Settings, batch: list[tuple[str, int]], partition: int
) -> dict[str, int]:
    """Write retry records as the main processor would after a first failed attempt, in
    order, to one partition: ``(order id, delay ms)``. Returns each one's due time."""
    producer = clients.producer(settings, logger=RDKAFKA_LOGGER)
    now = wall_ms()
    dues = {}
    errors: list[str] = []
    for order in generate_orders(len(batch), "success", seed=12):
        order_id, delay = batch[len(dues)]
        order = order.model_copy(update={"order_id": order_id})  # type: ignore[union-attr]
        dues[order_id] = now + delay
        headers = [
            *order_headers(order, source="urn:orderflow:bench", event_id=str(uuid.uuid4())),
            (h.ATTEMPTS, h.encode_int(1)),
            (h.MAX_ATTEMPTS, h.encode_int(RETRY_SETTINGS["max_attempts"])),
            (h.RETRY_DUE_AT, h.encode_int(now + delay)),
            (h.FIRST_FAILURE_AT, h.encode_int(now)),
            (h.LAST_FAILURE_AT, h.encode_int(now)),
        ]
        producer.produce(
            settings.topic_retry,
            key=order_id.encode(),
            value=order.to_json_bytes(),
            headers=headers,
            partition=partition,
            on_delivery=lambda err, _msg: err and errors.append(err.str()),
        )
    if producer.flush(30) or errors:
        raise BenchError(f"retry records not delivered: {errors[:3]}")
    return dues


def _int_header(record: Seen, name: str) -> int:
    raw = record.header(name)
    value = h.decode_int(raw)
    if not isinstance(value, int) or value is h.INVALID:
        raise BenchError(f"retry record {record.key!r} has no readable {name}: {raw!r}")
    return value


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def _histogram(text: str) -> dict[str, Any]:
    """Count, mean and cumulative shares of the retry processor's lateness histogram."""
    buckets: dict[float, float] = {}
    count = total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != LATENESS_METRIC:
            continue
        for sample in family.samples:
            if sample.labels.get("processor") != "retry":
                continue
            if sample.name.endswith("_bucket"):
                buckets[float(sample.labels["le"])] = sample.value
            elif sample.name.endswith("_count"):
                count = sample.value
            elif sample.name.endswith("_sum"):
                total = sample.value
    result: dict[str, Any] = {
        "count": int(count),
        "mean_ms": total / count * 1000 if count else None,
        "buckets": {("+Inf" if b == float("inf") else f"{b:g}"): v for b, v in buckets.items()},
    }
    for bound in (0.1, 0.25, 1.0):
        result[f"share_le_{bound:g}"] = buckets.get(bound, 0) / count * 100 if count else None
    return result
