"""The real deploy, end to end: pyinfra over SSH onto 4 Debian 12 hosts booted on this machine.

3 brokers + 1 app host, the ``jars`` Kafka runtime, offline mode chosen automatically (the hosts
have no route off this machine), the inventory driven by a hand-written outputs file with
ORDERFLOW_SSH_VIA=public. The tests share one deployed cluster and run in file order.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.testhosts.lab import Lab, TestHost
from processors.orders_gen import generate_orders
from processors.producer import produce_orders
from processors.settings import Settings
from tests.processors.harness import read_all
from tests.realhosts.deploy_run import DeployResult, run_deploy, write_outputs

pytestmark = [
    pytest.mark.realhosts,
    pytest.mark.slow,
    pytest.mark.timeout(5400),
]

# Operations that check rather than change, and so report a change on every run: the barrier
# that waits for every broker, and the idempotent `orderflow topics create`.
ALWAYS_RUN = {
    "Wait until every broker serves clients",
    "Create the orderflow topics (once, from one app host)",
}
PROCESSORS = ("orderflow-main@1.service", "orderflow-retry@1.service")
APP_UNITS = (*PROCESSORS, "orderflow-dashboard.service")
OUTCOME_TIMEOUT_S = 300


@dataclass
class Cluster:
    lab: Lab
    brokers: list[TestHost]
    app: TestHost
    outputs: Path
    first: DeployResult
    first_seconds: float

    @property
    def settings(self) -> Settings:
        return Settings(
            bootstrap_servers=",".join(f"{b.address}:9092" for b in self.brokers),
            replication_factor=3,
        )

    def unit(self, host: TestHost, unit: str, *props: str) -> dict[str, str]:
        out = self.lab.ssh(host, f"systemctl show {unit} " + " ".join(f"-p {p}" for p in props))
        return dict(line.split("=", 1) for line in out.splitlines())


@pytest.fixture(scope="module")
def cluster(rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("e2e")
    with Lab(state / "lab", name="oftest", rootfs=rootfs) as lab:
        brokers = [lab.start(f"kafka-{n}", n) for n in (1, 2, 3)]
        app = lab.start("app-1", 4)
        outputs = write_outputs(state / "outputs.json", brokers, [app])
        started = time.monotonic()
        first = run_deploy(lab, outputs)
        elapsed = time.monotonic() - started
        (state / "first-deploy.log").write_text(first.output)
        assert first.returncode == 0, first.output[-6000:]
        yield Cluster(lab, brokers, app, outputs, first, elapsed)
    assert lab.leftovers() == []


def test_first_deploy_installs_offline_and_runs_every_service_unprivileged(
    cluster: Cluster,
) -> None:
    lab = cluster.lab
    print(f"first deploy: {cluster.first_seconds:.0f} s")
    # Offline was chosen by itself: packages came as uploaded files, orderflow from a wheelhouse.
    assert "Install base packages: install from the uploaded files" in cluster.first.output
    assert "Upload the orderflow wheelhouse" in cluster.first.output
    assert "Install Docker" not in cluster.first.output
    for broker in cluster.brokers:
        assert cluster.unit(broker, "kafka.service", "ActiveState")["ActiveState"] == "active"
        assert lab.ssh(broker, "ps -o user= -C java").split() == ["kafka"]
        assert lab.ssh(broker, "sudo stat -c %U /var/lib/kafka/data/meta.properties") == "kafka\n"
    for unit in APP_UNITS:
        state = cluster.unit(cluster.app, unit, "ActiveState", "MainPID")
        assert state["ActiveState"] == "active", unit
        assert lab.ssh(cluster.app, f"ps -o user= -p {state['MainPID']}") == "orderflow\n"


def test_second_deploy_changes_nothing_and_restarts_nothing(cluster: Cluster) -> None:
    def snapshot() -> dict[str, dict[str, str]]:
        units = [(b, "kafka.service") for b in cluster.brokers]
        units += [(cluster.app, unit) for unit in APP_UNITS]
        return {
            f"{host.name}/{unit}": cluster.unit(host, unit, "MainPID", "NRestarts",
                                                "ActiveEnterTimestampMonotonic")
            for host, unit in units
        }  # fmt: skip

    before = snapshot()
    second = run_deploy(cluster.lab, cluster.outputs)
    (cluster.outputs.parent / "second-deploy.log").write_text(second.output)

    assert second.returncode == 0, second.output[-6000:]
    assert second.changed_operations() == ALWAYS_RUN, second.output[-6000:]
    assert snapshot() == before


def _keys(items: list) -> Counter:
    return Counter(getattr(item, "order_id", None) or item.key.decode() for item in items)


def _outcomes(settings: Settings, expected: int) -> dict[str, Counter]:
    topics = [settings.topic_processed, settings.topic_dlq]
    records = read_all(
        settings,
        topics,
        done=lambda r: sum(len(v) for v in r.values()) >= expected,
        timeout_s=OUTCOME_TIMEOUT_S,
        idle_s=5,
    )
    return {t: Counter(r.key.decode() for r in records[t] if r.key) for t in topics}


def test_orders_from_this_machine_end_in_processed_and_dlq(cluster: Cluster) -> None:
    settings = cluster.settings
    ok = [*generate_orders(40, "success", seed=1), *generate_orders(10, "transient", seed=2)]
    failing = [*generate_orders(10, "permanent", seed=3)]
    poison = [item for item in generate_orders(6, "poison", seed=4) if item.key]

    summary = produce_orders(settings, [*ok, *failing, *poison])

    assert (summary.delivered, summary.failed) == (len(ok) + len(failing) + len(poison), 0)
    outcome = _outcomes(settings, len(ok) + len(failing) + len(poison))
    assert outcome[settings.topic_processed] == _keys(ok)
    assert outcome[settings.topic_dlq] == _keys(failing) + _keys(poison)


def test_a_processor_killed_with_sigkill_is_restarted_by_systemd(cluster: Cluster) -> None:
    lab, app = cluster.lab, cluster.app
    unit = "orderflow-main@1.service"
    before = cluster.unit(app, unit, "MainPID", "NRestarts")

    lab.ssh(app, f"sudo kill -KILL {before['MainPID']}")

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = cluster.unit(app, unit, "MainPID", "NRestarts", "ActiveState")
        if now["ActiveState"] == "active" and now["MainPID"] not in ("0", before["MainPID"]):
            break
        time.sleep(1)
    assert now["ActiveState"] == "active" and now["MainPID"] != before["MainPID"], now
    assert int(now["NRestarts"]) == int(before["NRestarts"]) + 1
    assert lab.ssh(app, f"ps -o user= -p {now['MainPID']}") == "orderflow\n"


def test_the_dashboard_answers_through_an_ssh_port_forward(cluster: Cluster) -> None:
    lab, app = cluster.lab, cluster.app
    # Only loopback on the app host: nothing else can reach it.
    with pytest.raises(OSError):
        socket.create_connection((app.address, 8501), timeout=5).close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    forward = subprocess.Popen(
        [*lab.ssh_argv(app)[:-1], "-N", "-o", "ExitOnForwardFailure=yes",
         "-L", f"127.0.0.1:{port}:127.0.0.1:8501", lab.ssh_argv(app)[-1]],
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        body, deadline = "", time.monotonic() + 120
        while time.monotonic() < deadline and body != "ok":
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/_stcore/health", timeout=5
                ) as r:
                    body = r.read().decode()
            except OSError:
                assert forward.poll() is None, forward.stderr.read()
                time.sleep(1)
        assert body == "ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200 and b"<title>" in page.read()
    finally:
        forward.terminate()
        forward.wait(timeout=30)


def test_crashing_one_broker_host_loses_no_order(cluster: Cluster) -> None:
    settings = cluster.settings
    baseline = _outcomes(settings, 0)
    items = [*generate_orders(150, "success", seed=11), *generate_orders(20, "permanent", seed=12)]
    summaries = []
    producing = threading.Thread(
        target=lambda: summaries.append(
            # A failover takes the broker session timeout (9 s) plus a metadata refresh; on a
            # loaded machine more than the CLI's 10 s delivery timeout (measured: 105 of 170 sends
            # timed out with it). The bound still catches a hang.
            produce_orders(settings, items, rate=40, delivery_timeout_s=180)
        ),
        daemon=True,
    )

    producing.start()
    time.sleep(1.5)  # mid-stream
    victim = cluster.brokers[-1]
    cluster.lab.crash(victim)
    producing.join(timeout=600)

    assert not producing.is_alive() and summaries, "the producer hung"
    assert (summaries[0].delivered, summaries[0].failed) == (len(items), 0), summaries[0].errors
    expected = sum(sum(c.values()) for c in baseline.values()) + len(items)
    outcome = _outcomes(settings, expected)
    new = {topic: outcome[topic] - baseline[topic] for topic in outcome}
    assert new[settings.topic_processed] == _keys(items[:150])
    assert new[settings.topic_dlq] == _keys(items[150:])
    # Every order exactly once, across both outcome topics and over the whole run.
    assert not set(outcome[settings.topic_processed]) & set(outcome[settings.topic_dlq])
    assert max(outcome[settings.topic_processed].values()) == 1
