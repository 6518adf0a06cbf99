"""The transaction coordinator's broker frozen (SIGSTOP) exactly while the main processor commits
— after its outputs are flushed, so the commit sits in ``send_offsets_to_transaction``, the call
Quix Streams makes with no timeout — then SIGKILLed and brought back (the case that left a main
processor hung for good). The processor must end within its bound while the broker is still
frozen, and with a supervisor (as systemd) every order ends exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import NewTopic

from bench.chaos.cluster import Cluster, transaction_coordinator
from processors.kafka.clients import admin_client, producer
from processors.liveness import EXIT_STALLED
from processors.settings import Settings
from processors.supervisor import Backoff, Supervised
from tests.processors.conftest import fresh_settings
from tests.processors.harness import Proc, order, produce, read_all, settings_env

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(600)]

# Upper bounds that only catch a stall: the processor ends within its call budget (15 s) + 5 s
# grace while the coordinator is frozen (about 21 s here), and every order has an outcome within
# SETTLE_BOUND_S after the broker is back.
HANG_BOUND_S = 60.0
SETTLE_BOUND_S = 120.0


def create_topics_led_by(settings: Settings, leader: int, nodes: list[int]) -> None:
    """One partition per topic, three replicas, ``leader`` preferred: the outputs of a
    transaction reach their leader while the coordinator is frozen."""
    replicas = [leader, *(n for n in nodes if n != leader)]
    admin = admin_client(settings)
    topics = [
        NewTopic(name, 1, replica_assignment=[replicas], config={"min.insync.replicas": "2"})
        for name in settings.all_topics
    ]
    for future in admin.create_topics(topics, operation_timeout=60).values():
        future.result(timeout=60)


def coordinator_of(settings: Settings, transactional_id: str) -> int:
    """Initialise a producer with the id once (creates ``__transaction_state`` if need be; the
    processor fences it later) and return its coordinator's node id."""
    client = producer(settings, **{"transactional.id": transactional_id})
    client.init_transactions(60)
    return transaction_coordinator(admin_client(settings), transactional_id)


def outcome_keys(settings: Settings, want: set[bytes], timeout_s: float) -> list[bytes | None]:
    topics = [settings.topic_processed, settings.topic_dlq]
    records = read_all(
        settings,
        topics,
        lambda r: want <= {x.key for t in topics for x in r[t]},
        timeout_s=timeout_s,
        idle_s=2,
    )
    return [x.key for t in topics for x in records[t]]


def test_coordinator_frozen_then_killed_mid_commit(cluster: Cluster, tmp_path: Path) -> None:
    s = fresh_settings(
        cluster.bootstrap,
        tmp_path / "state",
        handler="tests.processors.freeze_handler:handle",
        # One checkpoint for the whole batch: the orders before h-freeze have added the output
        # partition to the transaction before the coordinator freezes.
        commit_interval_s=5.0,
    )
    coordinator = coordinator_of(s, "orderflow-main-m1")
    leader = next(n for n in cluster.node_ids if n != coordinator)
    create_topics_led_by(s, leader, cluster.node_ids)
    log_path = tmp_path / "main.log"
    with log_path.open("ab") as log:
        main = Supervised(
            "main",
            [sys.executable, "-m", "processors.main"],
            env=settings_env(s, instance_id="m1"),
            output=log,
            cwd=tmp_path,
            backoff=Backoff(initial_s=1.0, max_s=5.0),
        )
        main.start()
        try:
            warm = [f"w-{i}" for i in range(20)]
            produce(s, [(k.encode(), order(k).to_json_bytes()) for k in warm])
            outcome_keys(s, {k.encode() for k in warm}, timeout_s=120)

            batch = [*(f"a-{i}" for i in range(30)), "h-freeze", *(f"b-{i}" for i in range(30))]
            produce(s, [(k.encode(), order(k).to_json_bytes()) for k in batch])
            marker = tmp_path / "freeze-now"
            deadline = time.monotonic() + 60
            while not marker.exists():
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                main.poll()
                time.sleep(0.02)
            cluster.pause(coordinator)
            frozen = time.monotonic()
            while not main.exit_codes and time.monotonic() - frozen < HANG_BOUND_S:
                main.poll()
                time.sleep(0.1)
            ended_after = time.monotonic() - frozen
            if main.pid is not None:  # still there: its stacks go to the log, for the report
                main.signal(signal.SIGUSR1)
                time.sleep(1)
            cluster.kill(coordinator)
            time.sleep(5)
            cluster.restart()
            back = time.monotonic()
            assert main.exit_codes == [EXIT_STALLED], (
                f"main still running {HANG_BOUND_S:.0f} s into the coordinator's freeze "
                f"(exits: {main.exit_codes}):\n{log_path.read_text()[-4000:]}"
            )

            want = {k.encode() for k in warm + batch}
            deadline = back + SETTLE_BOUND_S
            keys: list[bytes | None] = []
            while time.monotonic() < deadline:
                main.poll()
                keys = outcome_keys(s, want, timeout_s=5)
                if want <= set(keys):
                    break
            missing = want - set(keys)
            assert not missing, (
                f"{len(missing)} orders without an outcome {SETTLE_BOUND_S:.0f} s after the "
                f"coordinator came back:\n{log_path.read_text()[-4000:]}"
            )
            duplicated = {k for k in keys if keys.count(k) > 1}
            assert not duplicated, f"{len(duplicated)} duplicated, e.g. {sorted(duplicated)[:5]}"
            lines = log_path.read_text().splitlines()
            stalled = [line.split("event=")[1] for line in lines if "event=stalled" in line]
            print(
                f"coordinator (node {coordinator}) frozen mid-commit: main exited "
                f"{main.exit_codes[0]} after {ended_after:.1f} s ({stalled[0]}); "
                f"killed + restarted, all {len(want)} orders exactly once "
                f"{time.monotonic() - back:.1f} s later, {main.restarts} restart(s)"
            )
        finally:
            main.stop(timeout_s=40)


def test_sigterm_while_the_coordinator_is_frozen_at_start_up(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A processor (re)started while its transaction coordinator is frozen can wait on it while
    it builds its clients or in ``init_transactions`` (which Quix Streams calls with no timeout);
    its SIGTERM handler only sets a flag. It must still be gone within the documented bound."""
    s = fresh_settings(cluster.bootstrap, tmp_path / "state")
    coordinator = coordinator_of(s, "orderflow-main-m2")
    create_topics_led_by(s, next(n for n in cluster.node_ids if n != coordinator), cluster.node_ids)
    bound = s.transaction_timeout_ms / 1000 + 5  # documented: TRANSACTION_TIMEOUT_MS + 5 s
    main: Proc | None = None
    cluster.pause(coordinator)
    try:
        main = Proc("main", settings_env(s, instance_id="m2"), tmp_path / "main.log").start()
        main.wait_for_log("event=started", timeout_s=60)
        time.sleep(3)  # into init_transactions, which cannot finish
        assert main.process is not None and main.alive(), main.log[-3000:]
        main.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            code = main.process.wait(timeout=bound + 10)  # 10 s for a loaded machine
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running {bound + 10:.0f} s after SIGTERM:\n{main.log[-3000:]}"
            ) from None
        seconds = time.monotonic() - started
        # 0: it stopped before its clients needed the coordinator; 3: the bound ended it.
        assert code in (0, EXIT_STALLED), main.log[-3000:]
        print(f"SIGTERM with the coordinator frozen at start-up: exit {code} in {seconds:.1f} s")
    finally:
        if main is not None:
            main.kill()
        cluster.resume(coordinator)
