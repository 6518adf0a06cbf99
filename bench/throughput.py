"""``throughput``: N all-success orders through the main processor, per delivery guarantee and
commit interval.

For each case: fresh topics, one ``python -m processors main`` subprocess, a few warm-up orders
(so start-up and the first group join are not timed), then N orders produced as fast as the
producer goes. End to end is from the first produce to the moment the N-th distinct outcome is
visible to a read_committed reader of ``orders.processed``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.collect import Collector, Seen
from bench.report import Result, fmt
from bench.support import (
    BenchError,
    Context,
    Processor,
    fresh_settings,
    load_1m,
    own_topics,
    running,
)
from processors.producer import generate_orders, produce_orders

NAME = "throughput"
WARMUP_ORDERS = 3


@dataclass(frozen=True)
class Params:
    orders: int = 20_000
    # (processing guarantee, commit interval in seconds); 1.0 s is the settings default.
    cases: tuple[tuple[str, float], ...] = (
        ("exactly-once", 1.0),
        ("at-least-once", 1.0),
        ("exactly-once", 0.2),
        ("at-least-once", 0.2),
    )
    timeout_s: float = 600.0


FULL = Params()
QUICK = Params(orders=2_000)


def run(ctx: Context, params: Params) -> Result:
    result = Result(
        NAME,
        f"throughput: {params.orders:,} all-success orders through the main processor",
        [
            "guarantee",
            "commit",
            "end to end",
            "producer",
            "elapsed",
            "main CPU",
            "orders/CPU-s",
            "peak RSS",
            "dupes",
            "load",
        ],
    )
    cases = []
    for guarantee, interval in params.cases:
        case = _case(ctx, params, guarantee, interval)
        cases.append(case)
        result.rows.append(
            [
                guarantee,
                f"{interval:g} s",
                fmt(case["end_to_end_per_s"], 0, "/s"),
                fmt(case["producer_per_s"], 0, "/s"),
                fmt(case["end_to_end_s"], 2, " s"),
                fmt(case["main_cpu_s"], 1, " s"),
                fmt(case["orders_per_cpu_s"], 0),
                fmt(case["main_peak_rss_mib"], 0, " MiB"),
                str(case["duplicates"]),
                fmt(case["load_1m"][1], 1),
            ]
        )
        if guarantee == "exactly-once" and case["duplicates"]:
            result.ok = False
            result.notes.append(f"exactly-once with commit {interval:g} s showed duplicates")
    result.data = {"orders": params.orders, "cases": cases}
    result.notes.append(
        "end to end: first produce → N-th distinct outcome visible (read_committed) on "
        "orders.processed; producer: idempotent acks=all producer alone; main CPU: user+system "
        "CPU of the processor over that window; peak RSS: VmHWM of the processor; load: 1-minute "
        "load average at the end of the case."
    )
    return result


def _case(ctx: Context, params: Params, guarantee: str, interval: float) -> dict[str, Any]:
    settings = fresh_settings(ctx, "tp", processing_guarantee=guarantee, commit_interval_s=interval)
    warmup = list(generate_orders(WARMUP_ORDERS, "success", seed=1))
    orders = list(generate_orders(params.orders, "success", seed=2))
    warm_keys = {order.order_id.encode() for order in warmup}  # type: ignore[union-attr]
    processed = settings.topic_processed
    instance = f"bench-tp-{guarantee}-{interval:g}"
    main = Processor("main", settings, ctx.workdir, instance_id=instance)
    load_before = load_1m()
    with (
        own_topics(settings),
        running(main),
        Collector(settings, [processed], keep_values=False) as seen,
    ):
        main.wait_started()
        if not produce_orders(settings, warmup).ok:
            raise BenchError("warm-up orders were not delivered")
        seen.wait_for(
            lambda: seen.count(processed) >= WARMUP_ORDERS,
            120,
            "the warm-up outcomes",
            main.check_alive,
        )
        cpu_before = main.cpu_seconds()
        started = time.monotonic()
        produced = produce_orders(settings, orders)
        if not produced.ok:
            raise BenchError(f"producer failed: {'; '.join(produced.errors)}")
        target = WARMUP_ORDERS + params.orders
        finished: list[float] = []

        def all_visible() -> bool:
            if seen.count(processed) < target:
                return False
            last = _nth_distinct(seen.snapshot(processed), warm_keys, params.orders)
            if last is None:
                return False
            finished.append(last.arrived_mono)
            return True

        what = f"{params.orders:,} outcomes"
        seen.wait_for(all_visible, params.timeout_s, what, main.check_alive)
        cpu = main.cpu_seconds() - cpu_before
        peak_rss = main.peak_rss_mib()
        outcomes = [s for s in seen.snapshot(processed) if s.key not in warm_keys]
    elapsed = finished[0] - started
    duplicates = len(outcomes) - len({s.key for s in outcomes})
    return {
        "guarantee": guarantee,
        "commit_interval_s": interval,
        "orders": params.orders,
        "end_to_end_s": elapsed,
        "end_to_end_per_s": params.orders / elapsed,
        "producer_s": produced.elapsed_s,
        "producer_per_s": produced.rate,
        "main_cpu_s": cpu,
        "orders_per_cpu_s": params.orders / cpu if cpu > 0 else None,
        "main_peak_rss_mib": peak_rss,
        "duplicates": duplicates,
        "load_1m": [load_before, load_1m()],
    }


def _nth_distinct(records: list[Seen], exclude: set[bytes], n: int) -> Seen | None:
    """The record whose arrival made ``n`` distinct keys (outside ``exclude``) visible."""
    keys: set[bytes | None] = set()
    for record in records:
        if record.key in exclude or record.key in keys:
            continue
        keys.add(record.key)
        if len(keys) == n:
            return record
    return None
