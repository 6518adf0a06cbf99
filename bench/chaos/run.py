"""The chaos runner: its own cluster, supervised processors, orders at a steady rate, seeded
faults while they flow, then an account of every order (docs/reliability.md)."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from confluent_kafka.admin import NewTopic

from bench.chaos.cluster import Cluster, transaction_coordinator
from bench.chaos.scenario import PROCESSED, Outcome, Planned, account, orders, plan_faults
from processors.core import headers as h
from processors.kafka.clients import admin_client, consumer, producer
from processors.kafka.groups import committed_offsets
from processors.settings import Settings, load_settings
from processors.supervisor import Backoff, Supervised

# The runner's own clients see every broker fault it injects: their librdkafka lines are noise.
RDKAFKA = logging.getLogger("bench.chaos.rdkafka")
RDKAFKA.setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class ChaosConfig:
    seed: int = 1
    orders: int = 20_000
    brokers: int = 3
    processor_kills: int = 10
    broker_kills: int = 3
    broker_pauses: int = 2
    rate: float = 400.0  # orders/s, lowered if the broker faults need a longer window
    mains: int = 2
    retries: int = 1
    settle_bound_s: float = 120.0
    down_s: tuple[float, float] = (5.0, 15.0)
    pause_s: tuple[float, float] = (10.0, 30.0)
    guarantee: str = "exactly-once"


@dataclass
class Injected:
    at_s: float
    kind: str
    target: str
    duration_s: float = 0.0


@dataclass
class State:
    """What the threads share (each field written by one thread)."""

    outcomes: list[Outcome] = field(default_factory=list)
    seen_at: dict[bytes, float] = field(default_factory=dict)
    retry_due: dict[tuple[bytes, int], int] = field(default_factory=dict)
    hop_at: dict[tuple[bytes, int], int] = field(default_factory=dict)
    sent: list[Planned] = field(default_factory=list)
    # key -> (partition, offset) in the main topic, from the delivery reports
    placed: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    produce_errors: list[str] = field(default_factory=list)
    produced_all: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)


def chaos_settings(bootstrap: str, workdir: Path, config: ChaosConfig) -> Settings:
    tag = f"chaos-{config.seed}-{uuid.uuid4().hex[:6]}"
    return load_settings(
        bootstrap_servers=bootstrap,
        topic_main=f"{tag}.orders.v1",
        topic_retry=f"{tag}.orders.retry",
        topic_dlq=f"{tag}.orders.dlq",
        topic_processed=f"{tag}.orders.processed",
        group_main=f"{tag}-main",
        group_retry=f"{tag}-retry",
        state_dir=workdir / "state",
        processing_guarantee=config.guarantee,
        partitions=6,
        replication_factor=min(3, config.brokers),
        max_attempts=4,
        backoff_initial_ms=500,
        backoff_multiplier=2.0,
        backoff_max_ms=4000,
        commit_interval_s=0.5,
        session_timeout_ms=6000,
        transaction_timeout_ms=15_000,
    )


def create_topics(settings: Settings, brokers: int) -> None:
    config = {"min.insync.replicas": "2"} if brokers >= 3 else {}
    topics = [
        NewTopic(name, settings.partitions, settings.replication_factor, config=config)
        for name in settings.all_topics
    ]
    admin = admin_client(settings)  # kept referenced until the futures resolve
    for future in admin.create_topics(topics, operation_timeout=60).values():
        future.result(timeout=60)


def settings_env(settings: Settings, **overrides: Any) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    for name, value in (settings.model_dump() | overrides).items():
        if value is None or isinstance(value, list):
            continue
        env[f"ORDERFLOW_{name.upper()}"] = str(value)
    return env


def run_chaos(
    config: ChaosConfig,
    workdir: Path,
    cluster: Cluster | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run one scenario; returns the report (also written to ``workdir/report.json``). Starts
    (and always stops) its own cluster unless one is given; stops every process it started."""
    workdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if cluster is None:
            say(f"starting a {config.brokers}-node cluster")
            cluster = stack.enter_context(Cluster(workdir / "kafka", config.brokers))
        return _run(config, workdir, cluster, stack, say)
    raise AssertionError("unreachable")  # pragma: no cover


def _run(
    config: ChaosConfig,
    workdir: Path,
    cluster: Cluster,
    stack: contextlib.ExitStack,
    say: Callable[[str], None],
) -> dict[str, Any]:
    settings = chaos_settings(cluster.bootstrap, workdir, config)
    create_topics(settings, config.brokers)
    rng = random.Random(config.seed)
    planned = orders(f"o{config.seed}-{uuid.uuid4().hex[:4]}", config.orders, config.seed)
    broker_time = config.broker_kills * config.down_s[1] + config.broker_pauses * config.pause_s[1]
    window_s = max(config.orders / config.rate, 1.3 * broker_time + 10)
    faults = plan_faults(
        config.seed,
        window_s * 0.9,
        config.processor_kills,
        config.broker_kills,
        config.broker_pauses,
        config.down_s,
        config.pause_s,
    )
    procs = _start_processors(config, settings, workdir, stack)
    state = State()
    threads = [
        threading.Thread(target=_read, args=(settings, state), daemon=True),
        threading.Thread(target=_produce, args=(settings, planned, window_s, state), daemon=True),
    ]
    stack.callback(state.stop.set)
    started = time.monotonic()
    say(
        f"{config.orders} orders over {window_s:.0f} s into {cluster.bootstrap}; faults: "
        + ", ".join(f"{f.kind}@{f.at_s:.0f}s" for f in faults)
    )
    for thread in threads:
        thread.start()
    injected, ours, crashes, last_fault_end = _inject(
        faults, procs, cluster, settings, rng, started, say
    )
    settle_deadline = max(last_fault_end, time.monotonic()) + config.settle_bound_s
    state.produced_all.wait(timeout=max(settle_deadline - time.monotonic(), 1))
    want = {p.key for p in state.sent}
    last_report = 0.0
    while time.monotonic() < settle_deadline and not want <= state.seen_at.keys():
        _poll(procs, ours, crashes)
        if time.monotonic() - last_report > 10:
            last_report = time.monotonic()
            say(f"  waiting for {len(want - state.seen_at.keys())} outcomes")
        time.sleep(0.2)
    complete = want <= state.seen_at.keys()
    idle_until = time.monotonic() + 5  # late duplicates
    while time.monotonic() < idle_until:
        _poll(procs, ours, crashes)
        time.sleep(0.2)
    state.stop.set()
    for thread in threads:
        thread.join(timeout=30)
    exit_codes = {name: sup.exit_codes for name, sup in procs.items()}
    for sup in procs.values():
        sup.stop(timeout_s=40)
    accounting = account(state.sent, list(state.outcomes))
    last_seen = max((state.seen_at[k] for k in want if k in state.seen_at), default=started)
    report = {
        "config": asdict(config),
        "bootstrap": cluster.bootstrap,
        "window_s": round(window_s, 1),
        "sent": len(state.sent),
        "produce_errors": len(state.produce_errors),
        "faults": [asdict(i) for i in injected],
        "processor_crashes": sum(crashes.values()),
        "crashes_by_exit_code": {str(k): v for k, v in sorted(crashes.items())},
        "restarts": {name: sup.restarts for name, sup in procs.items()},
        "exit_codes": exit_codes,
        "recoveries": _count_in_logs(workdir, "event=recovering"),
        "stalled": _count_in_logs(workdir, "event=stalled"),
        "all_outcomes_visible": complete,
        "last_outcome_after_last_fault_s": round(max(last_seen - last_fault_end, 0.0), 1),
        "max_retry_lateness_s": _max_lateness(state),
        "accounting": accounting.summary(),
        "ok": complete and accounting.clean and not state.produce_errors,
        "seconds": round(time.monotonic() - started, 1),
    }
    if not complete:
        report["stuck"] = _where_stuck(settings, state, want - state.seen_at.keys(), workdir)
        say(json.dumps(report["stuck"], indent=1))
    (workdir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _start_processors(
    config: ChaosConfig, settings: Settings, workdir: Path, stack: contextlib.ExitStack
) -> dict[str, Supervised]:
    procs: dict[str, Supervised] = {}
    roles = [("main", i) for i in range(1, config.mains + 1)]
    roles += [("retry", i) for i in range(1, config.retries + 1)]
    for role, i in roles:
        name = f"{role}-{i}"
        directory = workdir / name
        directory.mkdir(exist_ok=True)
        log = stack.enter_context((directory / "processor.log").open("ab"))
        sup = Supervised(
            name,
            [sys.executable, "-m", "processors", role],
            env=settings_env(settings, instance_id=f"chaos-{name}"),
            output=log,
            cwd=directory,
            backoff=Backoff(initial_s=1.0, max_s=10.0),
        )
        sup.start()
        stack.callback(sup.stop, 40.0)
        procs[name] = sup
    return procs


def _poll(procs: dict[str, Supervised], ours: Counter[str], crashes: Counter[int]) -> None:
    for name, sup in procs.items():
        code = sup.poll()
        if code is None:
            continue
        if code == -signal.SIGKILL and ours[name] > 0:
            ours[name] -= 1  # our own kill, not a crash
        else:
            crashes[code] += 1


def _inject(
    faults: list[Any],
    procs: dict[str, Supervised],
    cluster: Cluster,
    settings: Settings,
    rng: random.Random,
    started: float,
    say: Callable[[str], None],
) -> tuple[list[Injected], Counter[str], Counter[int], float]:
    injected: list[Injected] = []
    ours: Counter[str] = Counter()
    crashes: Counter[int] = Counter()
    pending: list[tuple[float, Callable[[], None]]] = []
    restarting: list[threading.Thread] = []
    last_end = started
    queue = list(faults)
    while queue or pending or any(t.is_alive() for t in restarting):
        now = time.monotonic()
        _poll(procs, ours, crashes)
        for due, action in [p for p in pending if p[0] <= now]:
            pending.remove((due, action))
            action()
        # One broker away at a time: a broker fault waits until the previous one is over.
        broker_busy = bool(cluster.paused) or any(t.is_alive() for t in restarting)
        broker_busy |= any(due > now for due, _ in pending)
        ready = [
            f
            for f in queue
            if now - started >= f.at_s and (f.kind == "processor_kill" or not broker_busy)
        ]
        if ready:
            fault = ready[0]
            queue.remove(fault)
            at = round(now - started, 1)
            if fault.kind == "processor_kill":
                alive = sorted(name for name, sup in procs.items() if sup.pid is not None)
                if alive:
                    name = rng.choice(alive)
                    ours[name] += 1
                    procs[name].signal(signal.SIGKILL)
                    injected.append(Injected(at, fault.kind, name))
                    say(f"  {at:6.1f}s kill -9 {name}")
            else:
                node = _broker_target(cluster, settings, procs, rng, fault.kind)
                injected.append(Injected(at, fault.kind, f"node-{node}", fault.duration_s))
                if fault.kind == "broker_kill":
                    cluster.kill(node)
                    say(f"  {at:6.1f}s kill -9 broker {node} for {fault.duration_s:.0f} s")
                    thread = threading.Thread(target=cluster.restart, daemon=True)
                    pending.append((now + fault.duration_s, thread.start))
                    restarting.append(thread)
                else:
                    cluster.pause(node)
                    say(f"  {at:6.1f}s SIGSTOP broker {node} for {fault.duration_s:.0f} s")
                    pending.append((now + fault.duration_s, lambda n=node: cluster.resume(n)))
            last_end = max(last_end, time.monotonic() + fault.duration_s)
        time.sleep(0.1)
    last_end = max(last_end, time.monotonic()) if injected else started
    say(f"  {time.monotonic() - started:6.1f}s last fault over")
    return injected, ours, crashes, last_end


def _broker_target(
    cluster: Cluster,
    settings: Settings,
    procs: dict[str, Supervised],
    rng: random.Random,
    kind: str,
) -> int:
    """A transaction coordinator of one of our processors, or the leader of a partition of the
    main topic; any broker if the metadata cannot be read."""
    admin = admin_client(settings, logger=RDKAFKA)
    try:
        if rng.random() < 0.5:
            name = rng.choice(sorted(procs))
            role = name.split("-")[0]
            return transaction_coordinator(admin, f"orderflow-{role}-chaos-{name}")
        topic = admin.list_topics(timeout=10).topics[settings.topic_main]
        return int(rng.choice(list(topic.partitions.values())).leader)
    except Exception:
        return rng.choice(cluster.node_ids)


def _produce(settings: Settings, planned: list[Planned], window_s: float, state: State) -> None:
    client = producer(settings, logger=RDKAFKA)
    interval = window_s / max(len(planned), 1)
    started = time.monotonic()

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            state.produce_errors.append(f"{message.key()!r}: {error}")
        else:
            state.placed[message.key()] = (message.partition(), message.offset())

    for i, order in enumerate(planned):
        if state.stop.is_set():
            break
        delay = started + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        while True:
            try:
                client.produce(settings.topic_main, key=order.key, value=order.value,
                               on_delivery=delivered)  # fmt: skip
                break
            except BufferError:
                client.poll(0.5)
        state.sent.append(order)
        client.poll(0)
    client.flush(300)
    state.produced_all.set()


def _read(settings: Settings, state: State) -> None:
    """Read the outcome and retry topics (read_committed) from the beginning until stopped."""
    reader = consumer(settings, f"chaos-reader-{uuid.uuid4().hex[:6]}", logger=RDKAFKA)
    topics = [settings.topic_processed, settings.topic_dlq, settings.topic_retry]
    metadata = reader.list_topics(timeout=30)
    reader.assign(
        [
            TopicPartition(t, p, OFFSET_BEGINNING)
            for t in topics
            for p in metadata.topics[t].partitions
        ]
    )
    try:
        while not state.stop.is_set():
            for message in reader.consume(500, timeout=0.5):
                if message.error() is None:
                    _receive(settings, state, message)
    finally:
        reader.close()


def _receive(settings: Settings, state: State, message: Any) -> None:
    headers = dict(message.headers() or [])
    key = message.key()
    attempts = int(headers.get(h.ATTEMPTS) or 1)
    if message.topic() == settings.topic_retry:
        due = headers.get(h.RETRY_DUE_AT)
        if due:
            state.retry_due[(key, attempts)] = int(due)
        state.hop_at[(key, attempts)] = int(headers.get(h.LAST_FAILURE_AT) or 0)
        return
    if message.topic() == settings.topic_processed:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            state.hop_at[(key, attempts)] = int(json.loads(message.value())["processed_at"])
        state.outcomes.append(Outcome(key, PROCESSED, None))
    else:
        state.hop_at[(key, attempts)] = int(headers.get(h.LAST_FAILURE_AT) or 0)
        reason = (headers.get(h.DLQ_REASON) or b"").decode(errors="replace")
        state.outcomes.append(Outcome(key, "dlq", reason))
    state.seen_at.setdefault(key, time.monotonic())


def _max_lateness(state: State) -> float | None:
    """Longest wait past its due time of a retry hop (until the next attempt happened)."""
    late = [
        (state.hop_at[(key, attempt + 1)] - due) / 1000
        for (key, attempt), due in state.retry_due.items()
        if state.hop_at.get((key, attempt + 1))
    ]
    return round(max(late), 2) if late else None


def _where_stuck(
    settings: Settings, state: State, missing: set[bytes], workdir: Path
) -> dict[str, Any]:
    """Where the orders without an outcome wait: their main-topic partitions and offsets, the
    groups' committed offsets there, every topic's last stable vs high offsets (an open
    transaction holds read_committed readers back), and the last lines of each processor log."""
    from confluent_kafka import IsolationLevel
    from confluent_kafka.admin import OffsetSpec

    waiting: dict[int, list[int]] = {}
    for key in missing:
        partition, offset = state.placed.get(key, (-1, -1))
        waiting.setdefault(partition, []).append(offset)
    found: dict[str, Any] = {
        "main_partitions": {
            str(p): {"missing": len(o), "first_offset": min(o), "last_offset": max(o)}
            for p, o in sorted(waiting.items())
        }
    }
    admin = admin_client(settings, logger=RDKAFKA)
    try:
        for group, topic in (
            (settings.group_main, settings.topic_main),
            (settings.group_retry, settings.topic_retry),
        ):
            committed = committed_offsets(settings, group, [topic], timeout_s=15)[topic]
            found[f"committed {group}"] = {str(p): o for p, o in sorted(committed.items())}
        metadata = admin.list_topics(timeout=15)
        for topic in settings.all_topics:
            partitions = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
            ends = {}
            for level in (IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED):
                futures = admin.list_offsets(
                    {tp: OffsetSpec.latest() for tp in partitions},
                    isolation_level=level,
                    request_timeout=15,
                )
                ends[level] = {tp.partition: f.result(20).offset for tp, f in futures.items()}
            found[f"stable/high {topic}"] = {
                str(p): f"{ends[IsolationLevel.READ_COMMITTED][p]}/{high}"
                for p, high in sorted(ends[IsolationLevel.READ_UNCOMMITTED].items())
            }
    except Exception as exc:  # a diagnosis only: say what could not be read
        found["error"] = f"{type(exc).__name__}: {exc}"
    for path in sorted(workdir.glob("*/processor.log")):
        lines = path.read_text(errors="replace").splitlines()
        found[f"log {path.parent.name}"] = [line[:300] for line in lines[-12:]]
    return found


def _count_in_logs(workdir: Path, text: str) -> int:
    return sum(
        path.read_text(errors="replace").count(text) for path in workdir.glob("*/processor.log")
    )


def table(report: dict[str, Any]) -> str:
    """The report as a short table."""
    acc = report["accounting"]
    rows = [
        ("orders sent", report["sent"]),
        ("faults", ", ".join(f"{f['kind']} {f['target']}@{f['at_s']}s" for f in report["faults"])),
        ("lost", acc["lost"]),
        ("duplicated", f"{acc['duplicated']} ({acc['duplicates']} extra)"),
        ("misrouted / wrong reason", f"{acc['misrouted']} / {acc['wrong_reason']}"),
        ("ends", ", ".join(f"{k} {v}" for k, v in acc["by_end"].items())),
        ("all outcomes visible", report["all_outcomes_visible"]),
        ("last outcome after last fault", f"{report['last_outcome_after_last_fault_s']} s"),
        ("max retry lateness", f"{report['max_retry_lateness_s']} s"),
        ("processor crashes", f"{report['processor_crashes']} {report['crashes_by_exit_code']}"),
        ("in-process recoveries / stalled exits", f"{report['recoveries']} / {report['stalled']}"),
        ("run time", f"{report['seconds']} s"),
        ("verdict", "OK" if report["ok"] else "FAILED"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
