"""The real deploy, end to end: pyinfra over SSH onto 4 Debian 12 hosts booted on this machine.

3 brokers + 1 app host, the ``jars`` Kafka runtime, offline mode chosen automatically (the hosts
have no route off this machine), the inventory driven by a hand-written outputs file with
ORDERFLOW_SSH_VIA=public. Each broker brings its own data disk (a bind mount from its fstab, as
a user's own volume would be). The tests share one deployed cluster and run in file order.
"""

from __future__ import annotations

import contextlib
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
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from deploy.testhosts.lab import Lab, TestHost
from processors.kafka.clients import admin_client, consumer
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
# The broker's data disk: /var/lib/kafka mounted at boot from the host's fstab (nofail, as the
# deploy writes it for an EBS volume), the source a directory of the host's own tree.
DISK = "/srv/kafka-disk"
DISK_FSTAB = f"{DISK} /var/lib/kafka none bind,nofail 0 0"
ADD_DISK = f"mkdir -p {DISK} /var/lib/kafka && echo '{DISK_FSTAB}' >> /etc/fstab"
ROLL = "Restart Kafka, one node at a time, each once the cluster is in sync"


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
        brokers = [lab.start(f"kafka-{n}", n, prepare=[ADD_DISK]) for n in (1, 2, 3)]
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
        assert _disk_of(cluster, broker) == f"[{DISK}]"
    for unit in APP_UNITS:
        state = cluster.unit(cluster.app, unit, "ActiveState", "MainPID")
        assert state["ActiveState"] == "active", unit
        user = "orderflow-dashboard" if "dashboard" in unit else "orderflow"
        assert lab.ssh(cluster.app, f"ps -o user= -p {state['MainPID']}") == f"{user}\n", unit
    # The dashboard's user cannot read the processors' state.
    assert lab.ssh(
        cluster.app, "sudo -u orderflow-dashboard ls /var/lib/orderflow 2>&1 || true"
    ).endswith("Permission denied\n")


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


def _disk_of(cluster: Cluster, broker: TestHost) -> str:
    """The filesystem the broker's log is on, as findmnt names its source."""
    source = cluster.lab.ssh(broker, "findmnt -n -o SOURCE -T /var/lib/kafka/data").strip()
    return source[source.index("[") :] if "[" in source else source


def _brokers_out_of_sync(admin: AdminClient) -> set[int]:
    """Node ids missing from some partition's in-sync replicas."""
    metadata = admin.list_topics(timeout=10)
    lagging: set[int] = set()
    for topic in metadata.topics.values():
        for partition in topic.partitions.values():
            lagging |= set(partition.replicas) - set(partition.isrs)
    return lagging


def _wait_in_sync(settings: Settings, timeout_s: float = 300) -> None:
    admin = admin_client(settings)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(KafkaException):  # a broker still starting: ask again
            if not _brokers_out_of_sync(admin):
                return
        time.sleep(2)
    raise AssertionError(f"the cluster was not in sync within {timeout_s} s")


class _Traffic:
    """Orders produced in small paced batches until stopped; every delivery accounted for."""

    def __init__(self, settings: Settings) -> None:
        self.settings, self.items, self.summaries = settings, [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        seed = 100
        while not self.stop.is_set():
            batch = list(generate_orders(40, "success", seed=seed))
            seed += 1
            self.items += batch
            # 60 s: a leader moving away from a broker in controlled shutdown takes seconds;
            # an outage (two brokers down, min ISR lost) would take longer and fail sends.
            self.summaries.append(
                produce_orders(self.settings, batch, rate=20, delivery_timeout_s=60)
            )

    def __enter__(self) -> _Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=300)
        assert not self.thread.is_alive(), "the producer hung"


# Issue 14: CI's first clean-clone run (a busy machine, the roll 477 s) had 4 of 3,320 orders in
# neither outcome topic. Reproduced with the lab's CPU capped: 4 orders were never in orders.v1
# although their producer had reported them delivered (librdkafka's "implicit ack" of a batch a
# leader had refused, see clients.producer). A loss still writes what explains it into the
# module's state dir (`_explain_loss`); an unconfirmed delivery now fails the send instead.
def test_a_settings_change_rolls_one_broker_at_a_time_while_orders_flow(cluster: Cluster) -> None:
    settings = cluster.settings
    baseline = _outcomes(settings, 0)
    started = {
        b.name: cluster.unit(b, "kafka.service", "ExecMainStartTimestampMonotonic")
        for b in cluster.brokers
    }
    samples: list[tuple[float, set[int]]] = []
    sampling = threading.Event()

    admin = admin_client(settings)

    def sample() -> None:
        while not sampling.is_set():
            with contextlib.suppress(KafkaException):  # metadata unavailable for a moment
                samples.append((time.monotonic(), _brokers_out_of_sync(admin)))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with _Traffic(settings) as traffic:
        time.sleep(3)
        # A new heap for every broker: its unit changes, so each one must restart.
        rolled = run_deploy(cluster.lab, cluster.outputs, "kafka_heap_size=400m")
        time.sleep(3)
    sampling.set()
    sampler.join(timeout=30)
    (cluster.outputs.parent / "rolling-deploy.log").write_text(rolled.output)

    assert rolled.returncode == 0, rolled.output[-6000:]
    assert ROLL in rolled.changed_operations()
    for broker in cluster.brokers:
        now = cluster.unit(broker, "kafka.service", "ExecMainStartTimestampMonotonic")
        assert now != started[broker.name], f"{broker.name} was not restarted"
        assert "-Xmx400m" in cluster.lab.ssh(broker, "ps -o args= -C java")
    # Never two brokers out of sync at once: each restart waited for the one before it.
    assert samples and max(len(lagging) for _, lagging in samples) <= 1, samples
    assert len({node for _, lagging in samples for node in lagging}) == 3, "restarts not seen"
    delivered = sum(s.delivered for s in traffic.summaries)
    errors = [e for s in traffic.summaries for e in s.errors]
    assert len(traffic.items) >= 200, "too few orders produced during the rolling deploy"
    assert (delivered, errors) == (len(traffic.items), []), errors[:5]
    print(f"rolling deploy: {len(traffic.items)} orders produced meanwhile, none failed")
    outcome = _outcomes(settings, sum(sum(c.values()) for c in baseline.values()) + delivered)
    processed = outcome[settings.topic_processed] - baseline[settings.topic_processed]
    dead = outcome[settings.topic_dlq] - baseline[settings.topic_dlq]
    # The promise: every order exactly once in orders.processed or orders.dlq, none lost (any
    # dead letter's reason is printed: these are all valid orders).
    lost = _keys(traffic.items) - processed - dead
    if lost:
        report = _explain_loss(cluster, lost)
        pytest.fail(f"{sum(lost.values())} orders in neither outcome topic; see {report}")
    assert processed + dead == _keys(traffic.items)
    if dead:
        print(f"rolling deploy: {sum(dead.values())} dead letters: {_dlq_reasons(settings, dead)}")


def _explain_loss(cluster: Cluster, lost: Counter) -> Path:
    """Where each lost order is, read uncommitted, beside the groups' positions, the brokers'
    open transactions and the processors' journals: a file in the module's state dir."""
    settings = cluster.settings
    topics = [
        settings.topic_main,
        settings.topic_retry,
        settings.topic_processed,
        settings.topic_dlq,
    ]
    lines = [f"lost: {sorted(lost)}"]
    # Everything written, committed or not: 20 s of reading from the start.
    written = read_all(
        settings, topics, lambda _: True, timeout_s=60, idle_s=20, isolation="read_uncommitted"
    )
    for topic, records in written.items():
        lines += [
            f"uncommitted: {r.key.decode()} {topic}[{r.partition}]@{r.offset}"
            for r in records
            if r.key and r.key.decode() in lost
        ]
    probe = consumer(settings, f"loss-{time.monotonic_ns()}")
    metadata = probe.list_topics(timeout=10)
    for topic in topics:
        for partition in metadata.topics[topic].partitions:
            low, high = probe.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            lines.append(f"watermarks {topic}[{partition}]: {low}..{high}")
    probe.close()
    for group, topic in (
        (settings.group_main, settings.topic_main),
        (settings.group_retry, settings.topic_retry),
    ):
        probe = consumer(settings, group)
        wanted = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        for tp in probe.committed(wanted, timeout=10):
            lines.append(f"committed {group} {tp.topic}[{tp.partition}]: {tp.offset}")
        probe.close()
    broker = cluster.brokers[0]
    tool = (
        'sudo runuser -u kafka -- /usr/bin/java -Xmx256m -cp "$(ls -d /opt/kafka/kafka-*/jars)/*" '
        f"org.apache.kafka.tools.TransactionsCommand --bootstrap-server {broker.address}:9092 "
        "--command-config /etc/kafka/admin.properties"
    )
    commands = [f"{tool} list"]
    commands += [f"{tool} find-hanging --broker-id {n}" for n in (1, 2, 3)]
    commands += [
        f"{tool} describe-producers --topic {settings.topic_processed} --partition {p}"
        for p in metadata.topics[settings.topic_processed].partitions
    ]
    for command in commands:
        with contextlib.suppress(Exception):
            lines += [
                f"$ {command.split('TransactionsCommand')[1]}",
                cluster.lab.ssh(broker, f"{command} 2>&1", timeout=120),
            ]
    report = cluster.outputs.parent / "loss.txt"
    report.write_text("\n".join(lines) + "\n")
    for host in (cluster.app, *cluster.brokers):
        with contextlib.suppress(Exception):
            (cluster.outputs.parent / f"journal-{host.name}.txt").write_text(
                cluster.lab.ssh(
                    host,
                    "sudo journalctl --no-pager -o short-monotonic -u 'orderflow-*' -u kafka",
                    timeout=120,
                )
            )
    print(report.read_text()[-20000:])
    return report


def _dlq_reasons(settings: Settings, keys: Counter) -> Counter:
    topic = settings.topic_dlq

    def mine(records: dict) -> list:
        return [r for r in records[topic] if r.key and r.key.decode() in keys]

    records = read_all(
        settings, [topic], done=lambda r: len(mine(r)) >= sum(keys.values()), timeout_s=60
    )
    return Counter(
        (dict(r.headers).get("x-dlq-reason") or b"?").decode(errors="replace")[:120]
        for r in mine(records)
    )


def test_a_rebooted_broker_comes_back_on_its_data_disk_and_never_without_it(
    cluster: Cluster,
) -> None:
    lab, settings = cluster.lab, cluster.settings
    broker = cluster.brokers[0]
    meta = "sudo cat /var/lib/kafka/data/meta.properties"
    identity = lab.ssh(broker, meta)

    broker = cluster.brokers[0] = lab.reboot(broker)
    assert cluster.unit(broker, "kafka.service", "ActiveState")["ActiveState"] == "active"
    assert _disk_of(cluster, broker) == f"[{DISK}]"
    assert lab.ssh(broker, meta) == identity
    mount = cluster.unit(broker, "var-lib-kafka.mount", "ActiveEnterTimestampMonotonic")
    kafka = cluster.unit(broker, "kafka.service", "ExecMainStartTimestampMonotonic")
    assert int(mount["ActiveEnterTimestampMonotonic"]) < int(
        kafka["ExecMainStartTimestampMonotonic"]
    )
    _wait_in_sync(settings)

    # The disk broken while the host is down (the mount fails at boot; nofail lets the boot go
    # on): the broker stays down rather than start an empty log on the root disk.
    broker = cluster.brokers[0] = lab.reboot(
        broker, prepare=[f"mv {DISK} {DISK}.away && touch {DISK}"]
    )
    assert cluster.unit(broker, "var-lib-kafka.mount", "ActiveState")["ActiveState"] == "failed"
    state = cluster.unit(broker, "kafka.service", "ActiveState", "Result")
    assert state["ActiveState"] != "active", state
    assert lab.ssh(broker, "sudo ls -A /var/lib/kafka") == ""

    broker = cluster.brokers[0] = lab.reboot(
        broker, prepare=[f"rm {DISK} && mv {DISK}.away {DISK}"]
    )
    assert cluster.unit(broker, "kafka.service", "ActiveState")["ActiveState"] == "active"
    assert lab.ssh(broker, meta) == identity
    _wait_in_sync(settings)


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
