"""``side-by-side``: orderflow's processors next to the bare workers they are built on, in one
run, on one broker, with the same payloads (the same seeded orders).

Throughput cases work through a backlog: fresh topics are filled with W warm-up + N orders
before the worker starts; the timing window opens when W outputs are visible to a
read_committed reader (start-up, group join and first fetches are behind it) and closes when
all are. records/s = outputs in the window ÷ its wall time; records per CPU-second = the same
÷ the worker's own user+system CPU (``/proc/<pid>/stat``) over the window. Exactly-once
outputs become visible at a commit, so both ends of an exactly-once window sit on commits.

Cases (``--case``, repeatable; default all):

- ``bare-loop``: the confluent-kafka loop (the ceiling), ``bench.workers bare-loop``;
- ``bare-quix``: a Quix app with the same validation, at-least-once and exactly-once;
- ``naive``: produce, flush and commit per record (a smaller backlog: it is slow);
- ``main``: ``orderflow main`` in both modes;
- ``failure``: 100 % transient orders, main (exactly-once) → ``orders.retry``; then the retry
  processor over those same records once they are due → ``orders.processed``;
- ``dlq``: 100 % permanent orders, main → ``orders.dlq``; then ``replay`` of that DLQ,
  unlimited (the replay worker times its own call);
- ``latency``: main at a fixed rate per mode: produce → outcome visible, p50/p99, and RSS at
  steady state;
- ``scale``: one main instance against two on 6 partitions (exactly-once);
- ``lateness``: retry lateness (``retry_lateness.steady``, commit interval 1 s).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from bench import retry_lateness
from bench.collect import Collector
from bench.report import Result, fmt
from bench.support import (
    RDKAFKA_LOGGER,
    BenchError,
    Context,
    Processor,
    fresh_settings,
    load_1m,
    own_topics,
    running,
    summary,
)
from bench.workers import RESULT_PREFIX
from processors.core.order import Simulation
from processors.kafka import clients
from processors.producer import generate_orders, produce_orders
from processors.settings import Settings

NAME = "side-by-side"
CASES = (
    "bare-loop",
    "bare-quix",
    "naive",
    "main",
    "failure",
    "dlq",
    "latency",
    "scale",
    "lateness",
)
GUARANTEES = ("at-least-once", "exactly-once")
SHORT = {"at-least-once": "ALO", "exactly-once": "EOS"}
RSS_LIMIT_MIB = 150
BACKLOG_SESSION_TIMEOUT_MS = 120_000
# The cases the main processor's targets compare: run ``repeats`` times, interleaved.
REPEATED = frozenset({"bare-loop", "bare-quix", "main"})


@dataclass(frozen=True)
class Params:
    # 60,000: on a quiet 2-vCPU VM a case's 20,000 took ≈ 1 CPU-second, too short to compare.
    orders: int = 60_000
    warmup: int = 1_000
    naive_orders: int = 500
    naive_warmup: int = 50
    rate_per_s: float = 1_000.0
    rate_seconds: float = 10.0
    retry_backoff_ms: int = 200
    scale_partitions: int = 6
    commit_interval_s: float = 1.0  # the settings default
    lateness: retry_lateness.Params = field(
        default_factory=lambda: retry_lateness.Params(orders=1_000, commit_intervals=(1.0,))
    )
    cases: tuple[str, ...] = CASES
    repeats: int = 3  # rounds of the REPEATED cases, interleaved; the median is reported
    timeout_s: float = 600.0


FULL = Params()
QUICK = Params(
    orders=5_000,
    warmup=500,
    naive_orders=200,
    rate_seconds=5.0,
    lateness=retry_lateness.Params(orders=300, rate_per_s=100.0, commit_intervals=(1.0,)),
    repeats=1,
)


def with_cases(params: Params, cases: Iterable[str]) -> Params:
    chosen = tuple(cases)
    return replace(params, cases=tuple(c for c in CASES if c in chosen)) if chosen else params


# --- the run -------------------------------------------------------------------------------------
def run(ctx: Context, params: Params) -> Result:
    steps: dict[str, Callable[[], Iterable[dict[str, Any]]]] = {
        "bare-loop": lambda: [_backlog_case(ctx, params, "bare-loop", "bench.workers")],
        "bare-quix": lambda: [
            _backlog_case(ctx, params, "bare-quix", "bench.workers", guarantee=g)
            for g in GUARANTEES
        ],
        "naive": lambda: [_backlog_case(ctx, params, "naive", "bench.workers")],
        "main": lambda: [_backlog_case(ctx, params, "main", guarantee=g) for g in GUARANTEES],
        "failure": lambda: _failure_then_retry(ctx, params),
        "dlq": lambda: _dlq_then_replay(ctx, params),
        "latency": lambda: [_latency(ctx, params, g) for g in GUARANTEES],
        "scale": lambda: _scale(ctx, params),
        "lateness": lambda: [_lateness(ctx, params)],
    }
    failed: list[str] = []
    runs: dict[str, list[dict[str, Any]]] = {}
    rounds = [
        case for r in range(params.repeats) for case in params.cases if r == 0 or case in REPEATED
    ]
    for case in rounds:
        try:
            for row in steps[case]():
                runs.setdefault(row["case"], []).append(row)
        except BenchError as exc:  # the other cases still run; this one is reported
            failed.append(f"{case}: {exc}")
    rows = {name: _median_run(found) for name, found in runs.items()}
    result = Result(
        NAME,
        f"side-by-side: backlog of {params.orders:,} orders after {params.warmup:,} warm-up "
        f"(naive: {params.naive_orders:,}), one broker, each worker its own process",
        ["worker", "records", "seconds", "records/s", "CPU s", "records/CPU-s", "RSS", "load"],
    )
    for row in rows.values():
        if "per_s" not in row:
            continue
        result.rows.append(
            [
                row["label"],
                f"{row['records']:,}",
                fmt(row["seconds"], 2),
                fmt(row["per_s"], 0),
                fmt(row["cpu_s"], 2),
                fmt(row["per_cpu_s"], 0),
                fmt(row.get("rss_mib"), 0, " MiB"),
                fmt(row["load_1m"][1], 1),
            ]
        )
    for row in rows.values():
        if "latency_ms" in row:
            lat = row["latency_ms"]
            result.notes.append(
                f"{row['label']}: produce → outcome visible p50 {fmt(lat['p50'])} ms, p99 "
                f"{fmt(lat['p99'])} ms, max {fmt(lat['max'])} ms; RSS at steady state "
                f"{fmt(row['rss_mib'])} MiB"
            )
            if "processing_ms" in row:
                own = row["processing_ms"]
                result.notes.append(
                    f"{row['label']}: produce → processed (the outcome's timestamp) p50 "
                    f"{fmt(own['p50'])} ms, p99 {fmt(own['p99'])} ms, max {fmt(own['max'])} ms"
                )
        if "lateness_ms" in row:
            late = row["lateness_ms"]
            result.notes.append(
                f"{row['label']}: p50 {fmt(late['p50'])} ms, p99 {fmt(late['p99'])} ms, max "
                f"{fmt(late['max'])} ms, early {row['early']}"
            )
    targets = evaluate(rows, params)
    if failed:
        result.ok = False
        result.notes.extend(f"FAILED {text}" for text in failed)
    for target in targets:
        mark = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
        result.notes.append(f"{target['target']}: {target['measured']} → {mark}")
    result.data = {
        "params": {k: v for k, v in vars(params).items() if k != "lateness"},
        "cases": rows,
        "targets": targets,
        "failed": failed,
    }
    return result


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row for a case run several times (rounds interleave the cases, so every case sees
    the machine's load swings alike): the median figures, and each run's."""
    if len(runs) == 1:
        return runs[0]
    row = dict(runs[len(runs) // 2])
    for key in ("records", "seconds", "cpu_s", "per_s", "per_cpu_s", "rss_mib", "peak_rss_mib"):
        values = [r[key] for r in runs if r.get(key) is not None]
        row[key] = statistics.median(values) if values else None
    if row["records"] is not None:
        row["records"] = round(row["records"])
    row["runs"] = [
        {k: r.get(k) for k in ("per_s", "per_cpu_s", "seconds", "cpu_s", "load_1m")} for r in runs
    ]
    return row


# --- one backlog through one kind of worker ------------------------------------------------------
def _orders(count: int, seed: int, simulate: Simulation | None = None) -> list[Any]:
    orders = list(generate_orders(count, "success", seed=seed))
    if simulate is None:
        return orders
    return [o.model_copy(update={"simulate": simulate}) for o in orders]


def _fill(settings: Settings, items: list[Any], topic: str | None = None) -> None:
    produced = produce_orders(settings, items, topic=topic)
    if not produced.ok:
        raise BenchError(f"could not fill the backlog: {'; '.join(produced.errors)}")


def _label(kind: str, guarantee: str | None) -> str:
    names = {
        "bare-loop": "bare confluent-kafka loop",
        "bare-quix": "bare Quix app",
        "naive": "naive (flush + commit per record)",
        "main": "orderflow main",
        "retry": "orderflow retry (due records)",
    }
    return names.get(kind, kind) + (f", {guarantee}" if guarantee else "")


def _case_name(kind: str, guarantee: str | None) -> str:
    return f"{kind}-{SHORT[guarantee]}" if guarantee else kind


def _backlog_case(
    ctx: Context,
    params: Params,
    kind: str,
    module: str = "processors",
    *,
    guarantee: str | None = None,
) -> dict[str, Any]:
    naive = kind == "naive"
    warm, count = (
        (params.naive_warmup, params.naive_orders) if naive else (params.warmup, params.orders)
    )
    settings = _settings(ctx, params, kind, guarantee or "at-least-once")
    orders = _orders(warm + count, seed=7)
    with own_topics(settings):
        _fill(settings, orders[:warm])
        worker = Processor(kind, settings, ctx.workdir, instance_id=f"bench-{kind}", module=module)
        with (
            running(worker),
            Collector(settings, [settings.topic_processed], keep_values=False) as seen,
        ):
            out = settings.topic_processed
            _warm_up(seen, [worker], out, warm, params.timeout_s)
            backlog = orders[warm:]
            figures = timed_backlog(
                seen,
                [worker],
                out,
                len(backlog),
                lambda: _fill(settings, backlog),
                params.timeout_s,
            )
    return {"case": _case_name(kind, guarantee), "label": _label(kind, guarantee)} | figures


def _settings(ctx: Context, params: Params, tag: str, guarantee: str, **extra: Any) -> Settings:
    # A worker is frozen while its backlog is written: its group session must outlast that.
    return fresh_settings(
        ctx,
        tag,
        processing_guarantee=guarantee,
        commit_interval_s=params.commit_interval_s,
        session_timeout_ms=BACKLOG_SESSION_TIMEOUT_MS,
        **extra,
    )


def _alive(workers: Iterable[Processor]) -> Callable[[], None]:
    def check() -> None:
        for worker in workers:
            worker.check_alive()

    return check


def _warm_up(
    seen: Collector,
    workers: list[Processor],
    topic: str,
    warm: int,
    timeout_s: float,
    ready: Callable[[], bool] = lambda: True,
) -> None:
    for worker in workers:
        worker.wait_started()
    check = _alive(workers)
    seen.wait_for(lambda: seen.count(topic) >= warm and ready(), timeout_s, "the warm-up", check)


def timed_backlog(
    seen: Collector,
    workers: list[Processor],
    topic: str,
    expected: int,
    write_backlog: Callable[[], object],
    timeout_s: float,
    *,
    frozen: tuple[Processor, ...] = (),
) -> dict[str, Any]:
    """Warm ``workers`` are frozen (SIGSTOP) while ``write_backlog()`` fills their input with
    ``expected`` records, then resumed: the window runs from SIGCONT until their ``expected``
    outputs are visible on ``topic``. ``frozen``: other processes kept stopped meanwhile
    (resumed by the caller)."""
    load_before = load_1m()
    for worker in (*workers, *frozen):
        worker.pause()
    try:
        write_backlog()
    finally:
        at_start = seen.count(topic)
        cpu_before = sum(w.cpu_seconds() for w in workers)
        started = time.monotonic()
        for worker in workers:
            worker.resume()
    total = at_start + expected
    seen.wait_for(
        lambda: seen.count(topic) >= total, timeout_s, f"{total:,} records", _alive(workers)
    )
    seconds = time.monotonic() - started
    cpu = sum(w.cpu_seconds() for w in workers) - cpu_before
    return _figures(seen.count(topic) - at_start, seconds, cpu) | {
        "rss_mib": max(w.rss_mib() for w in workers),
        "peak_rss_mib": max(w.peak_rss_mib() for w in workers),
        "instances": len(workers),
        "load_1m": [load_before, load_1m()],
    }


def _figures(records: int, seconds: float, cpu: float) -> dict[str, Any]:
    return {
        "records": records,
        "seconds": seconds,
        "per_s": records / seconds if records and seconds > 0 else None,
        "cpu_s": cpu,
        "per_cpu_s": records / cpu if records and cpu > 0 else None,
    }


# --- failure paths, the retry processor and replay -----------------------------------------------
def _failure_then_retry(ctx: Context, params: Params) -> list[dict[str, Any]]:
    """Main and retry processor warm up together; then, with the retry processor frozen, main
    works through the transient backlog into ``orders.retry``; once all is due, the retry
    processor works through it."""
    settings = _settings(
        ctx,
        params,
        "fail",
        "exactly-once",
        backoff_initial_ms=params.retry_backoff_ms,
        backoff_jitter=0.0,
        max_attempts=5,
    )
    warm, count = params.warmup, params.orders
    orders = _orders(warm + count, seed=7, simulate=Simulation(error="transient", fail_attempts=1))
    retry_topic, processed = settings.topic_retry, settings.topic_processed
    with own_topics(settings):
        _fill(settings, orders[:warm])
        main = Processor("main", settings, ctx.workdir, instance_id="bench-fail")
        retry = Processor("retry", settings, ctx.workdir, instance_id="bench-fail")
        with (
            running(main, retry),
            Collector(settings, [retry_topic, processed], keep_values=False) as seen,
        ):
            _warm_up(seen, [main, retry], processed, warm, params.timeout_s)
            failure: dict[str, Any] = {}

            def main_pass() -> None:
                failure.update(
                    timed_backlog(
                        seen,
                        [main],
                        retry_topic,
                        count,
                        lambda: _fill(settings, orders[warm:]),
                        params.timeout_s,
                        frozen=(retry,),
                    )
                )
                time.sleep(params.retry_backoff_ms / 1000 + 0.5)  # every retry record is due

            retried = timed_backlog(seen, [retry], processed, count, main_pass, params.timeout_s)
    return [
        {"case": "failure-retry", "label": "orderflow main, 100 % transient → retry, EOS"}
        | failure,
        {"case": "retry-due", "label": "orderflow retry, records already due, EOS"} | retried,
    ]


def _dlq_then_replay(ctx: Context, params: Params) -> list[dict[str, Any]]:
    settings = _settings(ctx, params, "dlq", "exactly-once")
    warm, count = params.warmup, params.orders
    total = warm + count
    orders = _orders(total, seed=7, simulate=Simulation(error="permanent"))
    with own_topics(settings):
        _fill(settings, orders[:warm])
        main = Processor("main", settings, ctx.workdir, instance_id="bench-dlq")
        with running(main), Collector(settings, [settings.topic_dlq], keep_values=False) as seen:
            _warm_up(seen, [main], settings.topic_dlq, warm, params.timeout_s)
            dead = timed_backlog(
                seen,
                [main],
                settings.topic_dlq,
                count,
                lambda: _fill(settings, orders[warm:]),
                params.timeout_s,
            )
        load_before = load_1m()
        worker = Processor("replay", settings, ctx.workdir, None, module="bench.workers")
        with running(worker):
            code = worker.wait(params.timeout_s)
        figures = _worker_result(worker)
        if code != 0 or figures["replayed"] != total:
            raise BenchError(f"replay exited {code} with {figures}; log {worker.log_path}")
    replay = _figures(figures["replayed"], figures["seconds"], figures["cpu_s"])
    return [
        {"case": "failure-dlq", "label": "orderflow main, 100 % permanent → DLQ, EOS"} | dead,
        {"case": "replay", "label": "orderflow DLQ replay, unlimited"}
        | replay
        | {"load_1m": [load_before, load_1m()]},
    ]


def _worker_result(worker: Processor) -> dict[str, Any]:
    for line in worker.log().splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line.removeprefix(RESULT_PREFIX))
    tail = worker.log_tail()
    raise BenchError(f"{worker.role} printed no result; log {worker.log_path}:\n{tail}")


# --- latency at a fixed rate ---------------------------------------------------------------------
PRODUCER_START_MS = 2000  # records sent in the paced producer's first 2 s are not timed


def _latency(ctx: Context, params: Params, guarantee: str) -> dict[str, Any]:
    settings = fresh_settings(
        ctx, "lat", processing_guarantee=guarantee, commit_interval_s=params.commit_interval_s
    )
    count = max(1, int(params.rate_per_s * params.rate_seconds))
    main = Processor("main", settings, ctx.workdir, instance_id=f"bench-lat-{SHORT[guarantee]}")
    source, processed = settings.topic_main, settings.topic_processed
    load_before = load_1m()
    with (
        own_topics(settings),
        running(main),
        Collector(settings, [source, processed], keep_values=False) as seen,
    ):
        main.wait_started()
        _fill(settings, _orders(10, seed=3))
        seen.wait_for(lambda: seen.count(processed) >= 10, 120, "the warm-up", main.check_alive)
        cpu_before = main.cpu_seconds()
        produced = produce_orders(settings, _orders(count, seed=4), rate=params.rate_per_s)
        if not produced.ok:
            raise BenchError(f"producer failed: {'; '.join(produced.errors)}")
        steady_rss = main.rss_mib()
        cpu = main.cpu_seconds() - cpu_before
        seen.wait_for(
            lambda: seen.count(processed) >= 10 + count, 120, "the outcomes", main.check_alive
        )
        peak = main.peak_rss_mib()
        records = seen.snapshot()
    sent = {r.key: r.timestamp_ms for r in records if r.topic == source}
    outcomes = [r for r in records if r.topic == processed]
    outcomes = outcomes[10:] if len(outcomes) > 10 else outcomes
    # The paced producer is a new client: its first records wait for its connection and its
    # idempotent producer id (0.8-1.4 s here), then reach main as one burst; that is no latency
    # of the processor's, so the records sent in that time are not timed.
    start = min((sent[r.key] for r in outcomes), default=0) + PRODUCER_START_MS
    outcomes = [r for r in outcomes if sent[r.key] >= start] or outcomes
    latencies = [r.arrived_ms - sent[r.key] for r in outcomes]
    # The outcome's own timestamp is when main processed the record: this part of the latency
    # is the processor's, the rest is the commit (exactly-once) and the reader's fetch.
    processing = [r.timestamp_ms - sent[r.key] for r in outcomes]
    return {
        "case": f"latency-{SHORT[guarantee]}",
        "label": f"orderflow main at {params.rate_per_s:,.0f}/s, {guarantee}",
        "guarantee": guarantee,
        "records": count,
        "rate_per_s": params.rate_per_s,
        "achieved_rate_per_s": produced.rate,
        "latency_ms": summary(latencies),
        "processing_ms": summary(processing),
        "cpu_s": cpu,
        "cpu_share": cpu / produced.elapsed_s if produced.elapsed_s else None,
        "rss_mib": steady_rss,
        "peak_rss_mib": peak,
        "load_1m": [load_before, load_1m()],
    }


# --- two instances against one -------------------------------------------------------------------
def _scale(ctx: Context, params: Params) -> list[dict[str, Any]]:
    rows = []
    warm, count = params.warmup, params.orders
    orders = _orders(warm + count, seed=7)
    for instances in (1, 2):
        settings = _settings(
            ctx, params, f"scale{instances}", "exactly-once", partitions=params.scale_partitions
        )
        out = settings.topic_processed
        with own_topics(settings):
            _fill(settings, orders[:warm])
            workers = [
                Processor("main", settings, ctx.workdir, instance_id=f"bench-scale-{i}")
                for i in range(instances)
            ]
            with running(*workers), Collector(settings, [out], keep_values=False) as seen:
                _warm_up(
                    seen,
                    workers,
                    out,
                    warm,
                    params.timeout_s,
                    ready=lambda s=settings, n=instances: _group_members(s) >= n,
                )
                figures = timed_backlog(
                    seen,
                    workers,
                    out,
                    count,
                    lambda s=settings: _fill(s, orders[warm:]),
                    params.timeout_s,
                )
        rows.append(
            {
                "case": f"scale-{instances}",
                "label": f"orderflow main × {instances}, {params.scale_partitions} partitions, EOS",
            }
            | figures
        )
    return rows


def _group_members(settings: Settings) -> int:
    """Members of the main group that hold partitions (0 while it rebalances)."""
    admin = clients.admin_client(settings, logger=RDKAFKA_LOGGER)
    future = admin.describe_consumer_groups([settings.group_main], request_timeout=10)
    try:
        description = future[settings.group_main].result(timeout=15)
    except Exception:
        return 0
    if str(description.state).rpartition(".")[2] != "STABLE":
        return 0
    return sum(1 for m in description.members if m.assignment.topic_partitions)


# --- retry lateness ------------------------------------------------------------------------------
def _lateness(ctx: Context, params: Params) -> dict[str, Any]:
    (interval,) = params.lateness.commit_intervals[:1]
    case = retry_lateness.steady(ctx, params.lateness, interval)
    return case | {"case": "lateness", "label": f"retry lateness, commit {interval:g} s"}


# --- the targets of issue 11 ---------------------------------------------------------------------
def _ratio(rows: dict[str, dict[str, Any]], a: str, b: str, key: str) -> float | None:
    x, y = rows.get(a, {}).get(key), rows.get(b, {}).get(key)
    return x / y if x and y else None


def evaluate(rows: dict[str, dict[str, Any]], params: Params) -> list[dict[str, Any]]:
    """Every target with its measured figure and whether it was met (None: not measured)."""
    targets: list[dict[str, Any]] = []

    def ratio_target(text: str, a: str, b: str, minimum: float) -> None:
        for key, unit in (("per_cpu_s", "records/CPU-s"), ("per_s", "records/s")):
            value = _ratio(rows, a, b, key)
            targets.append(
                {
                    "target": f"{text} ({unit}) ≥ {minimum:g}×",
                    "value": value,
                    "measured": fmt(value, 2, "×"),
                    "met": None if value is None else value >= minimum,
                }
            )

    ratio_target("main ALO ÷ bare Quix ALO", "main-ALO", "bare-quix-ALO", 0.85)
    ratio_target("main EOS ÷ bare Quix EOS", "main-EOS", "bare-quix-EOS", 0.85)
    ratio_target("main EOS ÷ naive", "main-EOS", "naive", 5)
    ratio_target("failure path ÷ success path (EOS)", "failure-retry", "main-EOS", 0.7)
    ratio_target("retry processor on due records ÷ main (EOS)", "retry-due", "main-EOS", 0.7)
    ratio_target("DLQ replay ÷ bare loop", "replay", "bare-loop", 0.5)
    limits = {"ALO": 50.0, "EOS": params.commit_interval_s * 1000 + 50}
    for mode, limit in limits.items():
        p99 = rows.get(f"latency-{mode}", {}).get("latency_ms", {}).get("p99")
        targets.append(
            {
                "target": f"success-path p99 {mode} ≤ {limit:,.0f} ms",
                "value": p99,
                "measured": fmt(p99, 0, " ms"),
                "met": None if p99 is None else p99 <= limit,
            }
        )
    late = rows.get("lateness")
    for text, value, met in (
        ("retry lateness p99 ≤ 250 ms", late and late["lateness_ms"]["p99"], lambda v: v <= 250),
        ("retry lateness max ≤ 1 s", late and late["lateness_ms"]["max"], lambda v: v <= 1000),
        ("retry lateness: none early", late and late["early"], lambda v: v == 0),
    ):
        targets.append(
            {
                "target": text,
                "value": value,
                "measured": "-" if value is None else f"{value:,.0f}",
                "met": None if value is None else met(value),
            }
        )
    rss = [
        r["peak_rss_mib"]
        for r in rows.values()
        if "orderflow" in r.get("label", "") and r.get("peak_rss_mib")
    ]
    peak = max(rss) if rss else None
    targets.append(
        {
            "target": f"processor RSS ≤ {RSS_LIMIT_MIB} MiB (highest peak)",
            "value": peak,
            "measured": fmt(peak, 0, " MiB"),
            "met": None if peak is None else peak <= RSS_LIMIT_MIB,
        }
    )
    scale = _ratio(rows, "scale-2", "scale-1", "per_s")
    targets.append(
        {
            "target": "two main instances ÷ one, 6 partitions (records/s; information only)",
            "value": scale,
            "measured": fmt(scale, 2, "×"),
            "met": None,
        }
    )
    return targets
