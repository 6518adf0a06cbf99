"""``kill-recovery``: kill -9 the main processor mid-run and time how long until it resumes.

Exactly-once. N orders are queued, the processor is killed once about half the outcomes are
visible, and a new process starts right away. "Resumed" is the moment the first outcome
processed after the kill is visible to a read_committed reader; then every order must have
exactly one visible outcome. Two cases:

- stable instance id (``--instance-id``): the new process is the same static group member and
  its transactional id fences the dead one's open transaction at once;
- no instance id (the default, ``hostname-pid``): the dead member keeps its partitions until
  its session times out, and its open transaction blocks read_committed readers until the
  broker aborts it (``transaction_timeout_ms``).
"""

from __future__ import annotations

import json
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
    wall_ms,
)
from processors.producer import generate_orders, produce_orders

NAME = "kill-recovery"
WARMUP_ORDERS = 3
STABLE_ID = "bench-kill"
CASES = {"stable": "stable instance id", "default": "no instance id (hostname-pid)"}


@dataclass(frozen=True)
class Params:
    # Enough that the processor is still busy when half are visible: on a quiet 2-vCPU VM main
    # does ≈ 13,000 orders/s, and 20,000 were all processed (and committed) before the kill.
    orders: int = 60_000
    kill_after: float = 0.5  # share of the outcomes visible when the processor is killed
    commit_interval_s: float = 1.0  # the settings default
    cases: tuple[str, ...] = ("stable", "default")
    timeout_s: float = 600.0


FULL = Params()
QUICK = Params(orders=12_000, cases=("stable",))


def run(ctx: Context, params: Params) -> Result:
    result = Result(
        NAME,
        f"kill-recovery: kill -9 of the main processor (exactly-once) about halfway through "
        f"{params.orders:,} orders, restarted at once",
        [
            "case",
            "killed after",
            "restart → started",
            "kill → processing",
            "kill → visible",
            "rate before",
            "rate after",
            "dupes",
            "lost",
        ],
    )
    cases = []
    for name in params.cases:
        case = _case(ctx, params, stable=name == "stable")
        cases.append(case)
        result.rows.append(
            [
                CASES[name],
                f"{case['visible_at_kill']:,}",
                fmt(case["restart_to_started_s"], 1, " s"),
                fmt(case["kill_to_processing_s"], 1, " s"),
                fmt(case["kill_to_visible_s"], 1, " s"),
                fmt(case["rate_before_per_s"], 0, "/s"),
                fmt(case["rate_after_per_s"], 0, "/s"),
                str(case["duplicates"]),
                str(case["lost"]),
            ]
        )
        if case["duplicates"] or case["lost"]:
            result.ok = False
    result.notes.append(
        "killed after: outcomes visible at the kill; started: the new process (started right "
        "after the kill) logged event=started; processing: processed_at of the first outcome "
        "processed after the kill; visible: that outcome reached a read_committed reader; "
        "rate before: outcomes visible at the kill / time since the first produce; rate after: "
        "outcomes processed after the kill / span of their processed_at."
    )
    result.data = {"orders": params.orders, "cases": cases}
    return result


def _case(ctx: Context, params: Params, stable: bool) -> dict[str, Any]:
    settings = fresh_settings(
        ctx,
        "kill",
        processing_guarantee="exactly-once",
        commit_interval_s=params.commit_interval_s,
    )
    warmup = list(generate_orders(WARMUP_ORDERS, "success", seed=20))
    orders = list(generate_orders(params.orders, "success", seed=21))
    warm_keys = {o.order_id.encode() for o in warmup}  # type: ignore[union-attr]
    processed = settings.topic_processed
    instance = STABLE_ID if stable else None
    first = Processor("main", settings, ctx.workdir, instance_id=instance)
    second = Processor("main", settings, ctx.workdir, instance_id=instance)
    kill_at = WARMUP_ORDERS + int(params.orders * params.kill_after)
    load_before = load_1m()
    with own_topics(settings), Collector(settings, [processed]) as seen:
        try:
            first.start()
            first.wait_started()
            if not produce_orders(settings, warmup).ok:
                raise BenchError("warm-up orders were not delivered")
            seen.wait_for(
                lambda: seen.count(processed) >= WARMUP_ORDERS, 120, "warm-up", first.check_alive
            )
            started = time.monotonic()
            if not produce_orders(settings, orders).ok:
                raise BenchError("orders were not delivered")
            seen.wait_for(
                lambda: seen.count(processed) >= kill_at,
                params.timeout_s,
                "half of the outcomes",
                first.check_alive,
            )
            killed_ms, killed = wall_ms(), time.monotonic()
            first.kill()
            visible_at_kill = seen.count(processed) - WARMUP_ORDERS
            if visible_at_kill >= params.orders:
                raise BenchError("every order was processed before the kill: use more orders")
            restarted = time.monotonic()
            second.start()
            second.wait_started(timeout_s=120)
            logged_started = time.monotonic()
            seen.wait_for(
                lambda: _distinct(seen.snapshot(processed), warm_keys) >= params.orders,
                params.timeout_s,
                f"all {params.orders:,} outcomes after the restart",
                second.check_alive,
            )
            outcomes = [s for s in seen.snapshot(processed) if s.key not in warm_keys]
        finally:
            first.kill()
            second.terminate()
    after = [(o, _processed_at(o)) for o in outcomes]
    after = [(o, at) for o, at in after if at > killed_ms]
    if not after:
        raise BenchError(
            "no outcome was processed after the kill: every order was done before it (seen late"
            " by the reader): use more orders"
        )
    first_visible = after[0][0]
    processing_from = min(at for _, at in after)
    processing_to = max(at for _, at in after)
    distinct = len({s.key for s in outcomes})
    return {
        "case": "stable" if stable else "default",
        "orders": params.orders,
        "visible_at_kill": visible_at_kill,
        "restart_to_started_s": logged_started - restarted,
        "kill_to_processing_s": (processing_from - killed_ms) / 1000,
        "kill_to_visible_s": first_visible.arrived_mono - killed,
        "restart_to_visible_s": first_visible.arrived_mono - restarted,
        "rate_before_per_s": visible_at_kill / (killed - started),
        "rate_after_per_s": len(after) / max((processing_to - processing_from) / 1000, 1e-3),
        "outcomes": len(outcomes),
        "duplicates": len(outcomes) - distinct,
        "lost": params.orders - distinct,
        "load_1m": [load_before, load_1m()],
    }


def _distinct(records: list[Seen], exclude: set[bytes]) -> int:
    return len({r.key for r in records if r.key not in exclude})


def _processed_at(outcome: Seen) -> int:
    return int(json.loads(outcome.value or b"{}").get("processed_at", 0))
