"""Pure description of a local KRaft cluster: its nodes, ports and rendered config files.

Nothing here touches the network, processes or the clock; the manager writes what these
functions return.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from processors.errors import LocalKafkaError

DEFAULT_CLIENT_PORT = 9092
LOOPBACK = "127.0.0.1"
HEAP_OPTS = ("-Xms256m", "-Xmx512m")
# A development broker on a small shared machine: the C1 compiler alone and the serial collector
# halve the CPU a start-up costs (measured ~8 s -> ~4 s of CPU per node), at some peak
# throughput we do not need locally. Not for benchmarks or production.
JIT_GC_OPTS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
LAYOUT_FILE = "cluster.json"


@dataclass(frozen=True)
class Node:
    """One combined broker+controller process."""

    node_id: int
    client_port: int
    controller_port: int

    @property
    def name(self) -> str:
        return f"node-{self.node_id}"

    @property
    def client_address(self) -> str:
        return f"{LOOPBACK}:{self.client_port}"


@dataclass(frozen=True)
class Layout:
    """The cluster's shape: which nodes, on which loopback ports, with which cluster id.

    ``backend`` is ``"jar"`` (processes started from the Maven jars) or ``"docker"``.
    ``secure``: SASL_SSL (SCRAM-SHA-512) for clients, TLS to the controllers, ACLs enforced.
    """

    nodes: tuple[Node, ...]
    cluster_id: str = ""
    backend: str = "jar"
    extra_config: Mapping[str, str] = field(default_factory=dict)
    secure: bool = False

    def __post_init__(self) -> None:
        ports = [p for n in self.nodes for p in (n.client_port, n.controller_port)]
        if not self.nodes:
            raise LocalKafkaError("a local Kafka cluster needs at least one node")
        if len(set(ports)) != len(ports):
            raise LocalKafkaError(f"local Kafka ports must be distinct, got {ports}")
        if any(not 0 < p < 65536 for p in ports):
            raise LocalKafkaError(f"local Kafka ports must be within 1-65535, got {ports}")

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.client_address for node in self.nodes)

    @property
    def quorum_voters(self) -> str:
        return ",".join(f"{n.node_id}@{LOOPBACK}:{n.controller_port}" for n in self.nodes)

    @property
    def replication_factor(self) -> int:
        """Internal topics' replication factor: 3 on three or more nodes, else the node count."""
        return min(3, len(self.nodes))

    @property
    def min_isr(self) -> int:
        return max(1, self.replication_factor - 1)

    def same_shape(self, other: Layout) -> bool:
        """True when ``other`` has the same nodes, ports and backend (cluster id aside)."""
        return (
            self.nodes == other.nodes
            and self.backend == other.backend
            and self.secure == other.secure
        )

    def describe(self) -> str:
        """e.g. ``1 node on 127.0.0.1:9092`` or ``3 secured nodes on 127.0.0.1:9092,…``."""
        count = len(self.nodes)
        kind = " secured" if self.secure else ""
        return f"{count}{kind} node{'s' if count > 1 else ''} on {self.bootstrap_servers}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "cluster_id": self.cluster_id,
                "backend": self.backend,
                "extra_config": dict(self.extra_config),
                "secure": self.secure,
                "nodes": [
                    {
                        "node_id": n.node_id,
                        "client_port": n.client_port,
                        "controller_port": n.controller_port,
                    }
                    for n in self.nodes
                ],
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, source: Path) -> Layout:
        try:
            data = json.loads(text)
            nodes = tuple(
                Node(int(n["node_id"]), int(n["client_port"]), int(n["controller_port"]))
                for n in data["nodes"]
            )
            return cls(
                nodes=nodes,
                cluster_id=str(data["cluster_id"]),
                backend=str(data.get("backend", "jar")),
                extra_config={str(k): str(v) for k, v in data.get("extra_config", {}).items()},
                secure=bool(data.get("secure", False)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LocalKafkaError(
                f"unreadable {source} ({exc}); run `orderflow kafka down --purge` to start over"
            ) from None


def fixed_layout(brokers: int = 1, base_port: int = DEFAULT_CLIENT_PORT) -> Layout:
    """Nodes 1..brokers on consecutive port pairs: client ``base+2i``, controller ``base+2i+1``.

    One node: 9092/9093. Three nodes: clients 9092/9094/9096, controllers 9093/9095/9097.
    """
    if brokers < 1:
        raise LocalKafkaError(f"--brokers must be at least 1, got {brokers}")
    return Layout(
        tuple(Node(i + 1, base_port + 2 * i, base_port + 2 * i + 1) for i in range(brokers))
    )


def layout_on_ports(client_ports: Sequence[int], controller_ports: Sequence[int]) -> Layout:
    """Nodes on the given ports (e.g. free ephemeral ports in tests)."""
    if len(client_ports) != len(controller_ports):
        raise LocalKafkaError("need exactly one controller port per client port")
    return Layout(
        tuple(
            Node(i + 1, client, controller)
            for i, (client, controller) in enumerate(
                zip(client_ports, controller_ports, strict=True)
            )
        )
    )


def broker_settings(replication_factor: int, min_isr: int) -> dict[str, str]:
    """Settings every orderflow KRaft node shares, wherever it runs.

    The one source of truth for the local nodes (``server_properties``), the ``jars`` runtime
    of the deploy (deploy/tasks/kafka_jars.py) and, as ``KAFKA_*`` variables,
    deploy/files/kafka-compose.yaml (tests/deploy/test_compose.py checks it matches).
    """
    rf, isr = str(replication_factor), str(min_isr)
    return {
        "process.roles": "broker,controller",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        # Durability: with 3 nodes, RF 3 / min ISR 2 survives one node down without losing an
        # acknowledged (acks=all) write. Internal topics follow the same rule.
        "default.replication.factor": rf,
        "min.insync.replicas": isr,
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": isr,
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": isr,
        "unclean.leader.election.enable": "false",
        # Topics are created on purpose by `orderflow topics create`, never by a typo.
        "auto.create.topics.enable": "false",
    }


def server_properties(
    layout: Layout, node: Node, data_dir: Path, security: Mapping[str, str] | None = None
) -> str:
    """``server.properties`` for one combined broker+controller node of ``layout``.

    ``security`` (``broker_security.secure_broker_properties``) replaces the PLAINTEXT
    listeners; the file then holds the broker user's password (the manager makes it 0600).
    """
    props: dict[str, str] = {
        "node.id": str(node.node_id),
        "controller.quorum.voters": layout.quorum_voters,
        "listeners": (
            f"PLAINTEXT://{LOOPBACK}:{node.client_port},CONTROLLER://{LOOPBACK}:{node.controller_port}"
        ),
        "advertised.listeners": f"PLAINTEXT://{node.client_address}",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        **broker_settings(layout.replication_factor, layout.min_isr),
        "group.initial.rebalance.delay.ms": "0",
        # The default (128 MiB on heap) does not fit a 512 MiB heap; Kafka's test kit uses 2 MiB.
        "log.cleaner.dedupe.buffer.size": "2097152",
        **(security or {}),
        **layout.extra_config,
    }
    header = f"# Written by `orderflow kafka up` for {node.name}; rewritten on every start.\n"
    return header + "".join(f"{key}={value}\n" for key, value in props.items())


def log4j2_properties(log_file: Path) -> str:
    """log4j2 config sending every broker log line to ``log_file`` (rolled at 10 MB, 3 kept)."""
    return "\n".join(
        [
            "rootLogger.level=INFO",
            "rootLogger.appenderRef.file.ref=FILE",
            "appender.file.type=RollingFile",
            "appender.file.name=FILE",
            f"appender.file.fileName={log_file}",
            f"appender.file.filePattern={log_file}.%i",
            "appender.file.layout.type=PatternLayout",
            "appender.file.layout.pattern=[%d] %p %m (%c)%n",
            "appender.file.policies.type=Policies",
            "appender.file.policies.size.type=SizeBasedTriggeringPolicy",
            "appender.file.policies.size.size=10MB",
            "appender.file.strategy.type=DefaultRolloverStrategy",
            "appender.file.strategy.max=3",
            # The request logger and the state-change logger are chatty at INFO.
            "logger.request.name=kafka.request.logger",
            "logger.request.level=WARN",
            "logger.statechange.name=state.change.logger",
            "logger.statechange.level=WARN",
            "",
        ]
    )


def broker_command(
    java: str,
    jars_dir: Path,
    properties: Path,
    log4j_config: Path,
    tmp_dir: Path,
    jvm_options: Sequence[str] = JIT_GC_OPTS,
) -> list[str]:
    """The ``java`` command line of one node. ``properties`` (absolute) identifies the process.

    ``jvm_options`` replace the start-up-friendly defaults (``JIT_GC_OPTS``), e.g. ``()`` to
    benchmark with the JVM's own compiler and collector; the heap stays capped at 512 MB.
    """
    return [
        java,
        *HEAP_OPTS,
        *jvm_options,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j_config}",
        # zstd-jni and snappy unpack native code into a temp dir; /tmp may be mounted noexec.
        f"-Djava.io.tmpdir={tmp_dir}",
        f"-DZstdTempFolder={tmp_dir}",
        f"-Dorg.xerial.snappy.tempdir={tmp_dir}",
        "-cp",
        f"{jars_dir}/*",
        "kafka.Kafka",
        str(properties),
    ]


def parse_meta_properties(text: str) -> dict[str, str]:
    """Parse a KRaft ``meta.properties``; garbage lines are ignored, so callers check the keys."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def meta_problem(meta: Mapping[str, str], node: Node, cluster_id: str) -> str | None:
    """Why a node's ``meta.properties`` does not belong to this cluster, or ``None`` if it does."""
    if meta.get("version") not in {"0", "1"}:
        return "has no valid version"
    if "cluster.id" not in meta or "node.id" not in meta:
        return "lacks cluster.id or node.id"
    if cluster_id and meta["cluster.id"] != cluster_id:
        return f"belongs to cluster {meta['cluster.id']}, not this cluster ({cluster_id})"
    if meta["node.id"] != str(node.node_id):
        return f"is for node {meta['node.id']}, not node {node.node_id}"
    return None
