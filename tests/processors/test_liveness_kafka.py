"""Liveness against real brokers: a broker frozen (SIGSTOP) exactly while the main processor
commits, SIGTERM during that hang, a transaction aborted under the processor (a fence that is
not a zombie) and a real twin with the same instance id."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.chaos.cluster import Cluster
from processors.liveness import EXIT_FENCED, EXIT_STALLED
from processors.settings import Settings
from tests.processors.conftest import ProcFactory, fresh_settings
from tests.processors.harness import Proc, create_topics, delete_topics, order, produce, read_all

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

FREEZE = {"handler": "tests.processors.freeze_handler:handle"}
# Only catches a hang: the processor must be gone long before this (it is ~8 s here, loaded).
HANG_BOUND_S = 90.0


@pytest.fixture(scope="module")
def frozen_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A broker of our own (the session broker is shared: never freeze it)."""
    with Cluster(tmp_path_factory.mktemp("freeze-kafka"), brokers=1) as cluster:
        yield cluster


def keys(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def outcomes(settings: Settings, expected: list[str], timeout_s: float) -> Counter[bytes | None]:
    topics = [settings.topic_processed, settings.topic_dlq]
    want = {k.encode() for k in expected}
    records = read_all(
        settings,
        topics,
        lambda r: want <= {x.key for t in topics for x in r[t]},
        timeout_s=timeout_s,
        idle_s=2,
    )
    return Counter(x.key for t in topics for x in records[t])


def exactly_once(counts: Counter[bytes | None], expected: list[str]) -> None:
    missing = [k for k in expected if counts[k.encode()] == 0]
    duplicated = [k for k in expected if counts[k.encode()] > 1]
    assert not missing, f"{len(missing)} lost, e.g. {missing[:5]}"
    assert not duplicated, f"{len(duplicated)} duplicated, e.g. {duplicated[:5]}"


def freeze_while_committing(
    cluster: Cluster, settings: Settings, main: Proc, workdir: Path
) -> list[str]:
    """Warm up, then send orders with a ``-freeze`` one in the middle and SIGSTOP the broker
    while its checkpoint is open; returns every order id sent."""
    warm = keys("w", 20)
    produce(settings, [(k.encode(), order(k).to_json_bytes()) for k in warm])
    exactly_once(outcomes(settings, warm, timeout_s=90), warm)
    batch = [*keys("a", 30), "h-freeze", *keys("b", 30)]
    produce(settings, [(k.encode(), order(k).to_json_bytes()) for k in batch])
    marker = workdir / "freeze-now"
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline and main.alive(), main.log[-3000:]
        time.sleep(0.02)
    cluster.pause(cluster.node_ids[0])
    return warm + batch


def wait_exit(proc: Proc, timeout_s: float) -> tuple[int, float]:
    assert proc.process is not None
    started = time.monotonic()
    try:
        code = proc.process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"{proc.role} still running {timeout_s:.0f} s later (hung):\n{proc.log[-3000:]}"
        ) from None
    return code, time.monotonic() - started


@pytest.fixture
def frozen_settings(frozen_cluster: Cluster, tmp_path: Path) -> Iterator[Settings]:
    settings = fresh_settings(frozen_cluster.bootstrap, tmp_path / "state")
    create_topics(settings)
    yield settings
    for node_id in list(frozen_cluster.paused):
        frozen_cluster.resume(node_id)
    delete_topics(settings)


def test_a_broker_frozen_mid_commit_ends_the_processor_and_its_restart_loses_nothing(
    frozen_cluster: Cluster,
    frozen_settings: Settings,
    start_processor: ProcFactory,
    tmp_path: Path,
) -> None:
    s = frozen_settings
    options = {**FREEZE, "transaction_timeout_ms": 6000}  # call budget: the 10 s floor
    main = start_processor(s, "main", instance_id="m1", **options)
    sent = freeze_while_committing(frozen_cluster, s, main, tmp_path)
    code, seconds = wait_exit(main, HANG_BOUND_S)
    assert code == EXIT_STALLED, main.log[-3000:]
    stalled = [line for line in main.log.splitlines() if "event=stalled" in line]
    assert len(stalled) == 1 and "call=" in stalled[0] and "waited_s=" in stalled[0], main.log
    assert "Traceback" not in main.log
    frozen_cluster.resume(frozen_cluster.node_ids[0])

    replacement = start_processor(s, "main", instance_id="m1", **options)  # the supervisor's job
    exactly_once(outcomes(s, sent, timeout_s=120), sent)
    assert replacement.alive()
    print(f"broker frozen mid-commit: main exited {code} after {seconds:.1f} s: {stalled[0]}")


def test_sigterm_during_the_hang_ends_the_processor_within_the_bound(
    frozen_cluster: Cluster,
    frozen_settings: Settings,
    start_processor: ProcFactory,
    tmp_path: Path,
) -> None:
    s = frozen_settings
    main = start_processor(s, "main", instance_id="m1", **FREEZE)  # default timeout: 20 s
    bound = s.shutdown_timeout_s
    sent = freeze_while_committing(frozen_cluster, s, main, tmp_path)
    time.sleep(1.0)
    assert main.process is not None
    main.process.send_signal(signal.SIGTERM)
    code, seconds = wait_exit(main, HANG_BOUND_S)
    assert code == EXIT_STALLED, main.log[-3000:]
    # The bound plus 10 s for a loaded machine to schedule the watchdog thread and exit.
    assert seconds <= bound + 10, f"{seconds:.1f} s > documented bound {bound} s (+10 s slack)"
    frozen_cluster.resume(frozen_cluster.node_ids[0])
    start_processor(s, "main", instance_id="m1", **FREEZE)
    exactly_once(outcomes(s, sent, timeout_s=120), sent)
    print(f"SIGTERM during a hung commit: exit {code} after {seconds:.1f} s (bound {bound} s)")


def test_a_second_sigterm_during_the_hang_ends_the_processor_at_once(
    frozen_cluster: Cluster,
    frozen_settings: Settings,
    start_processor: ProcFactory,
    tmp_path: Path,
) -> None:
    s = frozen_settings
    main = start_processor(s, "main", instance_id="m1", **FREEZE)
    freeze_while_committing(frozen_cluster, s, main, tmp_path)
    assert main.process is not None
    main.process.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    main.process.send_signal(signal.SIGTERM)
    code, seconds = wait_exit(main, HANG_BOUND_S)
    assert code == 128 + signal.SIGTERM, main.log[-3000:]
    assert seconds < s.shutdown_timeout_s, seconds  # not the bound: at once
    assert "event=killed processor=main signal=SIGTERM" in main.log


def test_main_recovers_by_itself_from_a_transaction_aborted_under_it(
    flow_settings: Settings, start_processor: ProcFactory
) -> None:
    """The handler outlives transaction.timeout.ms: the broker aborts the open transaction and
    bumps the epoch, so the next commit is fenced. Not a zombie: the processor makes new
    clients with the same transactional id and goes on; every order exactly once."""
    s = flow_settings
    options = {"transaction_timeout_ms": 1000, "handler": "tests.processors.slow_handler:handle"}
    main = start_processor(s, "main", instance_id="m1", **options)
    sent = [*keys("a", 40), "s-slow", *keys("b", 40)]
    produce(s, [(k.encode(), order(k).to_json_bytes()) for k in sent])
    exactly_once(outcomes(s, sent, timeout_s=120), sent)
    assert main.alive(), main.log[-3000:]
    assert "event=recovering processor=main cause=fenced" in main.log, main.log[-3000:]
    assert "Traceback" not in main.log


@pytest.mark.parametrize("processor", ["main", "retry"])
def test_a_twin_with_the_same_instance_id_is_told_apart_from_a_recoverable_fence(
    kafka_bootstrap: str, tmp_path: Path, start_processor: ProcFactory, processor: str
) -> None:
    """Two live instances with one instance id fence each other again and again: that is not
    recoverable, and (at least) one of them exits 4 with one line saying why. (The retry
    processor's consumer sees it as a fatal consumer error, which is recovered like any
    fence: its own rejoin while the coordinator moved fences it the same way.)"""
    s = fresh_settings(kafka_bootstrap, tmp_path / "state", recovery_limit=2)
    create_topics(s)
    try:
        first = start_processor(s, processor, instance_id="twin")
        second = start_processor(s, processor, instance_id="twin")
        produce(s, [(k.encode(), order(k).to_json_bytes()) for k in keys("t", 200)])
        deadline = time.monotonic() + 180
        while first.alive() and second.alive():
            assert time.monotonic() < deadline, first.log[-2000:] + second.log[-2000:]
            produce(s, [(b"more", order("more").to_json_bytes())])
            time.sleep(1.0)
        ended = first if not first.alive() else second
        assert ended.process is not None
        assert ended.process.returncode == EXIT_FENCED, ended.log[-3000:]
        last = ended.log.strip().splitlines()[-1]
        assert last.startswith("orderflow: error: ") and "same instance id" in last, last
    finally:
        delete_topics(s)
