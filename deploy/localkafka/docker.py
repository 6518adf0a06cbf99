"""``orderflow kafka up --docker``: one node from the official apache/kafka image, via Compose.

Uses ``deploy/files/kafka-compose.yaml`` (shared with the VM deployment), one Compose project
per state dir. The data lives in the project's named volume; ``down(purge=True)`` removes it.
Inside a container 127.0.0.1 is the container itself, so the node's own controller address is
valid but other nodes' are not: ``--docker`` runs a single node (use the jar broker for three).
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from deploy.localkafka.config import LOOPBACK, Layout, Node
from deploy.localkafka.jars import kafka_version
from processors.errors import LocalKafkaError

COMPOSE_FILE = Path(__file__).parent.parent / "files" / "kafka-compose.yaml"
_TIMEOUT_S = 300


def engine_problem() -> str | None:
    """Why no Docker engine is usable (``None`` when ``docker info`` succeeds)."""
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, text=True, timeout=15, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except FileNotFoundError:
        return "the docker command is not installed"
    except subprocess.TimeoutExpired:
        return "`docker info` timed out"
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        return f"`docker info` failed: {lines[-1].strip()}"
    return None


def require_engine(layout: Layout) -> None:
    problem = engine_problem()
    if problem:
        raise LocalKafkaError(
            f"--docker needs a reachable Docker engine ({problem}); "
            "drop --docker to run Kafka from the Maven jars with Java"
        )
    if len(layout.nodes) != 1:
        raise LocalKafkaError("--docker runs one node; drop --docker for a 3-node cluster")
    if not COMPOSE_FILE.is_file():
        raise LocalKafkaError(f"compose file missing: {COMPOSE_FILE}")


def new_cluster_id() -> str:
    """A Kafka cluster id (base64url of a random UUID, as ``kafka-storage random-uuid`` makes)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka avoids ids that look like a command-line flag
            return text


def project(state_dir: Path, node: Node) -> str:
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:8]
    return f"orderflow-kafka-{digest}-{node.node_id}"


def _compose(layout: Layout, state_dir: Path, node: Node, *args: str) -> str:
    env = {
        **os.environ,
        "KAFKA_IMAGE": f"apache/kafka:{kafka_version()}",
        "NODE_ID": str(node.node_id),
        "CLUSTER_ID": layout.cluster_id,
        "ADVERTISED_HOST": LOOPBACK,
        "BIND_ADDRESS": LOOPBACK,
        "CLIENT_PORT": str(node.client_port),
        "CONTROLLER_PORT": str(node.controller_port),
        "CONTROLLER_QUORUM_VOTERS": layout.quorum_voters,
        "REPLICATION_FACTOR": str(layout.replication_factor),
        "MIN_ISR": str(layout.min_isr),
    }
    argv = ["docker", "compose", "-p", project(state_dir, node), "-f", str(COMPOSE_FILE), *args]
    try:
        result = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalKafkaError(f"docker compose {args[0]} failed: {exc}") from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise LocalKafkaError(f"docker compose {args[0]} failed: {lines[-1].strip()}")
    return result.stdout


def up(
    layout: Layout, state_dir: Path, *, timeout_s: float, progress: Callable[[str], None]
) -> Layout:
    """Start the node's container and wait until it serves metadata. Returns the layout used."""
    from deploy.localkafka.readiness import wait_ready  # imports confluent_kafka

    require_engine(layout)
    if not layout.cluster_id:
        layout = Layout(layout.nodes, new_cluster_id(), "docker", layout.extra_config)
    deadline = time.monotonic() + timeout_s
    for node in layout.nodes:
        progress(f"starting {node.name} from apache/kafka:{kafka_version()}")
        _compose(layout, state_dir, node, "up", "-d", "--quiet-pull")

    def tails(node: Node) -> list[str]:
        output = _compose(layout, state_dir, node, "logs", "--no-color", "--tail", "25")
        return output.splitlines()

    progress("waiting for the broker to serve metadata")
    wait_ready(layout, {}, tails, deadline=deadline)
    return layout


def down(layout: Layout, state_dir: Path, *, purge: bool) -> None:
    for node in layout.nodes:
        _compose(layout, state_dir, node, "down", *(["-v"] if purge else []))


def running(layout: Layout, state_dir: Path) -> list[tuple[Node, bool]]:
    """Each node and whether its container is running (all ``False`` without an engine)."""
    if engine_problem():
        return [(node, False) for node in layout.nodes]
    return [
        (node, bool(_compose(layout, state_dir, node, "ps", "-q", "--status", "running").strip()))
        for node in layout.nodes
    ]
