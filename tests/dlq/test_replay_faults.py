"""``orderflow dlq replay`` against a real 3-node cluster while brokers die or freeze.

- SIGKILL the transaction coordinator of the replay's transactional id, or the leader of a
  partition the replay writes to, mid-run: the run recovers inside itself and finishes, and
  in exactly-once mode every dead letter is republished exactly once (nothing lost, nothing
  duplicated), each with its ledger entry.
- SIGSTOP every broker mid-run: the run ends within its bounds with one error line and a
  non-zero exit (no hang), and running it again after SIGCONT finishes the job exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.localkafka import LocalKafka, layout_on_ports
from deploy.localkafka.net import free_ports
from processors.core import headers as h
from processors.dlq import read_ledger
from processors.kafka import clients, tail
from processors.kafka.topics import ensure_topics
from processors.settings import Settings, load_settings
from tests.dlq.conftest import dead_letter
from tests.dlq.support import read_all, write
from tests.processors.harness import settings_env

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ORDERFLOW = [sys.executable, "-c", "from processors.cli import main; main()"]
DEAD_LETTERS = 1500
RATE = 150  # ~10 s of sending: the fault lands mid-run


@dataclass
class Cluster:
    manager: LocalKafka
    bootstrap: str
    pids: dict[int, Path]  # node id -> pid file

    def pid(self, node_id: int) -> int:
        return int(self.pids[node_id].read_text())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    ports = free_ports(6)
    manager = LocalKafka(tmp_path_factory.mktemp("replay-cluster"))
    try:
        result = manager.up(layout_on_ports(ports[:3], ports[3:]), timeout_s=180)
        pids = {node.node_id: manager.pid_file(node) for node in result.layout.nodes}
        yield Cluster(manager, result.layout.bootstrap_servers, pids)
    finally:
        manager.down(purge=True, timeout_s=30)


def java_hash(text: str) -> int:
    """Java's ``String.hashCode`` (what Kafka maps a transactional id to a partition with)."""
    value = 0
    for unit in text.encode("utf-16-be").hex(" ", 2).split():
        value = (31 * value + int(unit, 16)) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def coordinator_of(settings: Settings, transactional_id: str) -> int:
    """The node leading the ``__transaction_state`` partition of ``transactional_id``."""
    metadata = clients.admin_client(settings).list_topics("__transaction_state", timeout=30)
    partitions = metadata.topics["__transaction_state"].partitions
    return partitions[(java_hash(transactional_id) & 0x7FFFFFFF) % len(partitions)].leader


def leader_of(settings: Settings, topic: str, partition: int) -> int:
    metadata = clients.admin_client(settings).list_topics(topic, timeout=30)
    return metadata.topics[topic].partitions[partition].leader


def cluster_settings(cluster: Cluster, unique: str, tmp_path: Path) -> Settings:
    settings = load_settings(
        bootstrap_servers=cluster.bootstrap,
        replication_factor=3,
        topic_main=f"f-{unique}.orders.v1",
        topic_retry=f"f-{unique}.orders.retry",
        topic_dlq=f"f-{unique}.orders.dlq",
        topic_processed=f"f-{unique}.orders.processed",
        topic_redriven=f"f-{unique}.orders.dlq.redriven",
        transaction_timeout_ms=10_000,
        state_dir=tmp_path / "state",
    )
    ensure_topics(settings, timeout_s=60)
    write(settings, settings.topic_dlq, [dead_letter(settings, order_id=f"f{i:04d}")
                                         for i in range(DEAD_LETTERS)])  # fmt: skip
    return settings


def start_replay(settings: Settings, group: str, log: Path) -> subprocess.Popen:
    command = [*ORDERFLOW, "dlq", "replay", "--rate", str(RATE), "--group", group]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=settings_env(settings), stdout=out, stderr=out)


def wait_for_progress(settings: Settings, process: subprocess.Popen, entries: int) -> None:
    """Until the ledger holds ``entries`` committed entries (so commits happened before)."""
    deadline = time.monotonic() + 90
    topic = settings.topic_redriven
    while tail.topic_totals(settings, [topic])[topic] < entries:
        assert process.poll() is None, "replay ended before the fault"
        assert time.monotonic() < deadline, "replay made no progress"
        time.sleep(0.1)


def assert_moved_exactly_once(settings: Settings) -> None:
    out = read_all(settings, settings.topic_main, DEAD_LETTERS + 1, timeout_s=20)
    refs = Counter(dict(headers)[h.REPLAY_OF].decode() for *_, headers in out)
    assert len(refs) == DEAD_LETTERS, "lost dead letters"
    assert max(refs.values()) == 1 and len(out) == DEAD_LETTERS, "duplicates"
    ledger = read_ledger(settings)
    assert len(ledger) == DEAD_LETTERS and ledger.garbage == 0
    assert set(ledger.entries) == set(refs)


@pytest.mark.parametrize("victim", ["transaction coordinator", "partition leader"])
def test_replay_survives_a_killed_broker(
    cluster: Cluster, victim: str, unique: str, tmp_path: Path
) -> None:
    settings = cluster_settings(cluster, unique, tmp_path)
    group = f"g-{unique}-replay"
    log = tmp_path / "replay.log"
    replay = start_replay(settings, group, log)
    try:
        wait_for_progress(settings, replay, 200)
        if victim == "transaction coordinator":
            node = coordinator_of(settings, f"orderflow-dlq-replay.{group}")
        else:
            node = leader_of(settings, settings.topic_main, 0)
        os.kill(cluster.pid(node), signal.SIGKILL)
        killed_at = time.monotonic()
        code = replay.wait(timeout=240)
        took = time.monotonic() - killed_at
    finally:
        if replay.poll() is None:
            replay.kill()
            replay.wait(10)
        cluster.manager.up(timeout_s=180)  # the killed node back, for the next test
    output = log.read_text(errors="replace")
    assert code == 0, output
    assert f"replayed {DEAD_LETTERS} of {DEAD_LETTERS} selected" in output
    assert "exactly-once" in output
    assert_moved_exactly_once(settings)
    recovered = [line for line in output.splitlines() if line.startswith("recovered ")]
    print(f"\n{victim} (node {node}) killed: replay finished {took:.1f} s later; {recovered}")


def test_frozen_cluster_ends_the_run_with_one_line_then_a_rerun_finishes(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    settings = cluster_settings(cluster, unique, tmp_path)
    group = f"g-{unique}-replay"
    log = tmp_path / "replay.log"
    replay = start_replay(settings, group, log)
    pids = [cluster.pid(node) for node in cluster.pids]
    try:
        wait_for_progress(settings, replay, 200)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        # Bound: the flush budget (delivery timeout + 10 s) plus the abort budget
        # (transaction timeout + 5 s), with room for a loaded machine; only a hang exceeds it.
        code = replay.wait(timeout=180)
        took = time.monotonic() - frozen_at
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        if replay.poll() is None:
            replay.kill()
            replay.wait(10)
    output = log.read_text(errors="replace")
    errors = [line for line in output.splitlines() if line.startswith("orderflow: error:")]
    assert code == 1, output
    assert len(errors) == 1 and "Traceback" not in output, output
    print(f"\nall brokers frozen: replay ended {took:.1f} s later with: {errors[0]}")

    rerun_at = time.monotonic()
    rerun_at = time.monotonic()
    rerun = subprocess.run(
        [*ORDERFLOW, "dlq", "replay", "--group", group],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "resumed run" in rerun.stdout
    assert_moved_exactly_once(settings)
    print(f"the rerun finished in {time.monotonic() - rerun_at:.1f} s")
    print(f"the rerun finished in {time.monotonic() - rerun_at:.1f} s")
