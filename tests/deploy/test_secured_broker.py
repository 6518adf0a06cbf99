"""The secured deploy's rendered files run a real Kafka node, and its clients work with them.

The closest check to a real host available here: a one-broker stack whose broker's private IP
is 127.0.0.1 (on free ports) goes through the fake-connector deploy; the files it uploads to
the broker (settings, node key, CA, SCRAM users) and to the app host (settings, each
principal's client file and password) are put in a temporary directory, the node is formatted
and started from the cached Kafka jars exactly as the jars runtime's commands do, and the app
host's principals run their commands against it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.localkafka.jars import find_java, jars_dir
from deploy.localkafka.net import free_ports
from tests.deploy.conftest import REPO, SAMPLE_OUTPUTS, Report

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CREDENTIALS = "/etc/orderflow/credentials"


@dataclass
class Node:
    report: Report
    root: Path
    log: Path
    passwords: dict[str, str]

    def run(self, principal: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``orderflow args`` with what the app host's unit of ``principal`` would get."""
        uploads = self.report["app-1"]["uploads"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
        for text in (
            uploads["/etc/orderflow/orderflow.env"],
            uploads[f"{CREDENTIALS}/{principal}.env"],
        ):
            env |= dict(line.split("=", 1) for line in text.splitlines() if line[:1] not in "#")
        env["ORDERFLOW_SSL_CA_LOCATION"] = str(self.root / "ca.pem")
        credentials = self.root / f"credentials-{principal}"
        credentials.mkdir(exist_ok=True)
        (credentials / "orderflow_sasl_password").write_text(
            uploads[f"{CREDENTIALS}/{principal}.password"]
        )
        env |= {"CREDENTIALS_DIRECTORY": str(credentials), "PYTHONPATH": str(REPO)}
        return subprocess.run(
            [sys.executable, "-m", "processors", *args],
            env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip


@pytest.fixture(scope="module")
def node(
    fake_deploy: Callable[..., Report], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Node]:
    root = tmp_path_factory.mktemp("secured-node")
    client_port, controller_port = free_ports(2)
    outputs = json.loads(SAMPLE_OUTPUTS.read_text())
    outputs["hosts"] = [h for h in outputs["hosts"] if h["name"] in ("kafka-1", "app-1")]
    outputs["hosts"][0] |= {"private_ip": "127.0.0.1", "data_volume_id": None}
    outputs["bootstrap_servers"] = f"127.0.0.1:{client_port}"
    (root / "outputs.json").write_text(json.dumps(outputs))
    report = fake_deploy(
        outputs=root / "outputs.json",
        data={
            "kafka_security": "sasl_ssl",
            "kafka_runtime": "jars",
            "orderflow_secrets_dir": str(root / "secrets"),
            "kafka_client_port": client_port,
            "kafka_controller_port": controller_port,
        },
    )
    uploads = report["kafka-1"]["uploads"]
    (root / "node.pem").write_text(uploads["/etc/kafka/tls/node.pem"])
    (root / "ca.pem").write_text(uploads["/etc/kafka/tls/ca.pem"])
    (root / "scram.args").write_text(uploads["/etc/kafka/scram-users.args"])
    properties = (
        uploads["/etc/kafka/server.properties"]
        .replace("/etc/kafka/tls/", f"{root}/")
        .replace("=/var/lib/kafka/data\n", f"={root}/data\n")
        # The VM's heap is 1 GB; here the local nodes' 512 MB needs the smaller cleaner buffer.
        + "log.cleaner.dedupe.buffer.size=2097152\n"
    )
    (root / "server.properties").write_text(properties)
    java, classpath = find_java(), f"{jars_dir()}/*"
    formatted = subprocess.run(
        [java, "-cp", classpath, "kafka.tools.StorageTool", "format", "--ignore-formatted",
         "-t", outputs["kafka_cluster_id"], "-c", str(root / "server.properties"),
         f"@{root}/scram.args"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert formatted.returncode == 0, formatted.stderr[-2000:]
    log = root / "broker.log"
    with log.open("w") as out:
        broker = subprocess.Popen(
            [java, "-Xms256m", "-Xmx512m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
             "-cp", classpath, "kafka.Kafka", str(root / "server.properties")],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            assert broker.poll() is None, log.read_text()[-3000:]
            try:
                socket.create_connection(("127.0.0.1", client_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the secured node never listened"
                time.sleep(0.5)
        passwords = json.loads((root / "secrets" / "security" / "scram.json").read_text())
        yield Node(report, root, log, passwords)
    finally:
        broker.terminate()
        try:
            broker.wait(60)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait(30)


def test_the_deploys_principals_work_on_the_node_it_configured(node: Node) -> None:
    acls = node.run("broker", "kafka", "acls")
    assert acls.returncode == 0, acls.stderr
    assert "0 removed" in acls.stdout
    topics = node.run("admin", "topics", "create", "--replication-factor", "1")
    assert topics.returncode == 0, topics.stderr
    assert topics.stdout.count("created") == 5
    listed = node.run("operator", "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    # Least privilege: the main processor's principal may not create topics.
    refused = node.run("main", "topics", "create", "--replication-factor", "1")
    assert refused.returncode == 6, refused.stderr
    assert refused.stderr.strip().startswith("orderflow: error: user main (SCRAM-SHA-512)")
    assert "TOPIC_AUTHORIZATION_FAILED" in refused.stderr
    # Nothing the node or the clients printed holds a password.
    printed = "\n".join(
        [node.log.read_text(), *(r.stdout + r.stderr for r in (acls, topics, listed, refused))]
    )
    assert not [user for user, password in node.passwords.items() if password in printed]
