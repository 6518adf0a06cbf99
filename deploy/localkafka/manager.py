"""The local Kafka cluster behind ``orderflow kafka up|down|status|logs``.

State lives in one directory (default ``.orderflow/kafka`` under the current directory)::

    cluster.json                 the layout (nodes, ports, cluster id, backend)
    node-<id>/server.properties  rewritten on every start
    node-<id>/log4j2.properties
    node-<id>/server.log         the broker's log (rolled at 10 MB)
    node-<id>/console.log        the JVM's stdout/stderr (start-up crashes land here)
    node-<id>/kafka.pid
    node-<id>/data/              KRaft metadata and topic data (removed by ``down(purge=True)``)
    security/, clients/          a secured cluster's certificates, passwords and client settings
                                 (``deploy.localkafka.security``; removed by ``down(purge=True)``)
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.localkafka import docker, jars, process, storage
from deploy.localkafka.broker_security import BROKER_USER, secure_broker_properties
from deploy.localkafka.config import (
    JIT_GC_OPTS,
    LAYOUT_FILE,
    Layout,
    Node,
    broker_command,
    fixed_layout,
    log4j2_properties,
    server_properties,
)
from deploy.localkafka.logs import tail
from deploy.localkafka.net import is_listening, port_is_free
from deploy.localkafka.readiness import BrokerStartError, loopback_settings, wait_ready
from deploy.localkafka.security import ClusterSecrets
from deploy.localkafka.storage import private_file
from processors.acls import all_grants
from processors.errors import LocalKafkaError
from processors.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = Path(".orderflow/kafka")
RUNNING = "running"
STOPPED = "stopped"
CRASHED = "crashed (stale pid file)"
_PORT_GRACE_S = 2.0

__all__ = ["CRASHED", "RUNNING", "STOPPED", "BrokerStartError", "LocalKafka", "NodeStatus"]


@dataclass(frozen=True)
class NodeStatus:
    node: Node
    state: str  # RUNNING, STOPPED or CRASHED
    pid: int | None
    client_listening: bool
    controller_listening: bool

    @property
    def running(self) -> bool:
        return self.state == RUNNING


@dataclass(frozen=True)
class UpResult:
    layout: Layout
    started: tuple[int, ...]  # node ids this call started; empty when all were already up
    seconds: float
    clients_dir: Path | None = None  # secured: where clients/<principal>.env were written

    @property
    def already_running(self) -> bool:
        return not self.started


@dataclass(frozen=True)
class DownResult:
    stopped: tuple[int, ...]  # node ids that stopped on SIGTERM
    killed: tuple[int, ...]  # node ids that needed SIGKILL
    stale: tuple[int, ...]  # node ids whose stale pid file was removed
    purged: bool


class LocalKafka:
    """One local cluster, identified by its state directory.

    ``progress`` receives short human-readable steps; ``detail`` one line per file Maven
    downloads (first fetch only). ``cache_dir`` holds the fetched jars (default:
    ``jars.default_cache_dir()``). ``jvm_options`` replace ``config.JIT_GC_OPTS`` (tuned for a
    fast start on a small machine, not for throughput: pass ``()`` for benchmarks).
    """

    def __init__(
        self,
        state_dir: Path = DEFAULT_STATE_DIR,
        *,
        cache_dir: Path | None = None,
        progress: jars.Progress | None = None,
        detail: jars.Progress | None = None,
        jvm_options: Sequence[str] = JIT_GC_OPTS,
    ) -> None:
        self.state_dir = state_dir.absolute()
        self.cache_dir = cache_dir
        self._progress = progress or (lambda _message: None)
        self._detail = detail
        self._jvm_options = tuple(jvm_options)

    # --- paths ----------------------------------------------------------------------------------
    def node_dir(self, node: Node) -> Path:
        return self.state_dir / node.name

    def properties_file(self, node: Node) -> Path:
        return self.node_dir(node) / "server.properties"

    def pid_file(self, node: Node) -> Path:
        return self.node_dir(node) / "kafka.pid"

    def log_file(self, node: Node) -> Path:
        return self.node_dir(node) / "server.log"

    def console_log(self, node: Node) -> Path:
        return self.node_dir(node) / "console.log"

    def data_dir(self, node: Node) -> Path:
        return self.node_dir(node) / "data"

    @property
    def secrets(self) -> ClusterSecrets:
        return ClusterSecrets(self.state_dir)

    def client_settings(self, layout: Layout, user: str = BROKER_USER) -> Settings:
        """Settings of a client of ``layout`` (secured: authenticated as ``user``)."""
        if layout.secure:
            return self.secrets.settings(user, layout.bootstrap_servers)
        return loopback_settings(layout.bootstrap_servers)

    def recorded_layout(self) -> Layout | None:
        """The layout of the cluster last started from this state dir, if any."""
        path = self.state_dir / LAYOUT_FILE
        return Layout.from_json(path.read_text(), path) if path.is_file() else None

    # --- status ---------------------------------------------------------------------------------
    def status(self) -> list[NodeStatus]:
        """Each recorded node's state, checked against the live processes (empty: no cluster)."""
        layout = self.recorded_layout()
        if layout is None:
            return []
        if layout.backend == "docker":
            return [
                NodeStatus(node, RUNNING if up else STOPPED, None, *self._listening(node))
                for node, up in docker.running(layout, self.state_dir)
            ]
        return [self._node_status(node) for node in layout.nodes]

    def _node_status(self, node: Node) -> NodeStatus:
        state, pid = process.process_state(self.pid_file(node), self._markers(node))
        label = {
            process.ProcessState.RUNNING: RUNNING,
            process.ProcessState.STOPPED: STOPPED,
            process.ProcessState.STALE: CRASHED,
        }[state]
        return NodeStatus(node, label, pid, *self._listening(node))

    @staticmethod
    def _listening(node: Node) -> tuple[bool, bool]:
        return is_listening(node.client_port), is_listening(node.controller_port)

    def _markers(self, node: Node) -> list[str]:
        return ["kafka.Kafka", str(self.properties_file(node))]

    # --- up -------------------------------------------------------------------------------------
    def up(
        self,
        layout: Layout | None = None,
        *,
        timeout_s: float = 120.0,
        names: Settings | None = None,
        renew_certs: bool = False,
    ) -> UpResult:
        """Start every node that is not running and return once all N brokers serve metadata.

        ``layout`` defaults to the recorded one, else one node on 9092/9093. A no-op (after a
        readiness check) when everything already runs. A secured layout also gets (or reuses)
        its certificates and SCRAM users, the ACLs of every principal for the topic and group
        names of ``names`` (default: the defaults), and ``clients/<user>.env``; ``renew_certs``
        issues a new CA and node certificates (the cluster must be stopped). Raises
        ``LocalKafkaError`` for a layout
        that differs from the recorded one, a port taken by another process, a corrupt data dir,
        missing Java/Maven; ``BrokerStartError`` (with ``log_tail``) if a node dies or the
        cluster is not ready within ``timeout_s``; the nodes this call started are then stopped.
        """
        started_at = time.monotonic()
        with self._locked():
            layout = self._choose_layout(layout)
            if layout.backend == "docker":
                layout = docker.up(
                    layout, self.state_dir, timeout_s=timeout_s, progress=self._progress
                )
                self._write_layout(layout)
                return UpResult(layout, (), time.monotonic() - started_at)
            statuses = [self._node_status(node) for node in layout.nodes]
            to_start = [s.node for s in statuses if not s.running]
            if layout.secure:
                if renew_certs and len(to_start) < len(layout.nodes):
                    raise LocalKafkaError(
                        "stop the cluster first (`orderflow kafka down`) to renew its certificates"
                    )
                if self.secrets.ensure(layout, renew_certs=renew_certs):
                    self._progress(f"issued TLS certificates in {self.secrets.directory}")
            client = self.client_settings(layout)
            if not to_start:
                self._progress("already running; checking it serves metadata")
                wait_ready(layout, {}, self._tails, client, deadline=time.monotonic() + timeout_s)
                return self._secured(layout, (), started_at, names)
            self._check_ports(to_start)
            java = jars.find_java()
            if not jars.is_cached(self.cache_dir):
                self._progress(f"fetching the Kafka {jars.kafka_version()} jars with Maven (once)")
            jars_dir = jars.ensure_jars(self.cache_dir, self._detail)
            if not layout.cluster_id:
                cluster_id = storage.random_cluster_id(java, jars_dir)
                layout = dataclasses.replace(layout, cluster_id=cluster_id)
            self._prepare(layout, to_start, java, jars_dir)
            self._write_layout(layout)
            pids = self._start(to_start, java, jars_dir)
            try:
                self._progress(f"waiting for {len(layout.nodes)} broker(s) to serve metadata")
                wait_ready(layout, pids, self._tails, client, deadline=started_at + timeout_s)
            except BaseException:
                process.stop(pids.values(), timeout_s=10)
                for node in to_start:
                    self.pid_file(node).unlink(missing_ok=True)
                raise
            result = self._secured(layout, tuple(n.node_id for n in to_start), started_at, names)
        log.info(
            "kafka_up nodes=%d started=%s seconds=%.1f bootstrap=%s secure=%s",
            len(layout.nodes), ",".join(str(n.node_id) for n in to_start), result.seconds,
            layout.bootstrap_servers, layout.secure,
        )  # fmt: skip
        return result

    def _secured(
        self, layout: Layout, started: tuple[int, ...], started_at: float, names: Settings | None
    ) -> UpResult:
        """The result of ``up``; for a secured cluster once its ACLs and client files are set."""
        clients_dir = None
        if layout.secure:
            self._progress("setting the ACLs of every principal")
            from processors.kafka.acls import apply_grants

            apply_grants(
                self.client_settings(layout), all_grants(names or Settings.model_construct())
            )
            clients_dir = self.secrets.write_client_files(layout.bootstrap_servers)
        return UpResult(layout, started, time.monotonic() - started_at, clients_dir)

    def _choose_layout(self, requested: Layout | None) -> Layout:
        recorded = self.recorded_layout()
        if recorded is None:
            return requested or fixed_layout(1)
        if requested is None:
            return recorded
        if not requested.same_shape(recorded):
            raise LocalKafkaError(
                f"{self.state_dir} holds a {recorded.backend} cluster of {recorded.describe()}; "
                f"run `orderflow kafka down --purge` before starting {requested.describe()}"
            )
        return dataclasses.replace(recorded, extra_config=requested.extra_config)

    def _check_ports(self, nodes: list[Node]) -> None:
        ports = {
            port: f"{node.name} {kind} port"
            for node in nodes
            for kind, port in (("client", node.client_port), ("controller", node.controller_port))
        }
        # A node killed a moment ago may take a little while to release its sockets.
        deadline = time.monotonic() + _PORT_GRACE_S
        while busy := [port for port in ports if not port_is_free(port)]:
            if time.monotonic() >= deadline:
                raise LocalKafkaError(
                    f"port {busy[0]} ({ports[busy[0]]}) is already in use by another process; "
                    "stop it or choose other ports (--port)"
                )
            time.sleep(0.2)

    def _prepare(self, layout: Layout, nodes: list[Node], java: str, jars_dir: Path) -> None:
        to_format: list[tuple[Path, Path]] = []
        for node in nodes:
            directory = self.node_dir(node)
            (directory / "tmp").mkdir(parents=True, exist_ok=True)
            self.pid_file(node).unlink(missing_ok=True)  # stale: the process is gone
            properties = self.properties_file(node)
            log4j = directory / "log4j2.properties"
            security = self._security_properties(layout, node) if layout.secure else None
            private_file(properties, server_properties(layout, node, self.data_dir(node), security))
            log4j.write_text(log4j2_properties(self.log_file(node)))
            if storage.needs_format(self.data_dir(node), node, layout.cluster_id):
                to_format.append((properties, log4j))
        if to_format:
            self._progress(f"formatting KRaft storage of {len(to_format)} node(s)")
            users = None
            if layout.secure:
                users = self.secrets.format_arguments_file(self.secrets.directory / "format.args")
            try:
                storage.format_nodes(java, jars_dir, layout.cluster_id, to_format, users)
            finally:
                if users is not None:
                    users.unlink(missing_ok=True)

    def _security_properties(self, layout: Layout, node: Node) -> dict[str, str]:
        return secure_broker_properties(
            client_bind=node.client_address,
            controller_bind=f"{node.client_address.rpartition(':')[0]}:{node.controller_port}",
            advertised_client=node.client_address,
            keystore=str(self.secrets.keystore(node)),
            truststore=str(self.secrets.ca_file),
            broker_password=self.secrets.passwords()[BROKER_USER],
            node_principals=[n.name for n in layout.nodes],
        )

    def _start(self, nodes: list[Node], java: str, jars_dir: Path) -> dict[Node, int]:
        self._progress(f"starting {len(nodes)} node(s)")
        pids: dict[Node, int] = {}
        for node in nodes:
            directory = self.node_dir(node)
            argv = broker_command(
                java, jars_dir, self.properties_file(node), directory / "log4j2.properties",
                directory / "tmp", self._jvm_options,
            )  # fmt: skip
            pids[node] = process.start_detached(
                argv, log_file=self.console_log(node), pid_file=self.pid_file(node), cwd=directory
            )
        return pids

    def _tails(self, node: Node) -> list[str]:
        lines = tail(self.log_file(node), 25)
        console = tail(self.console_log(node), 10)
        if console:
            lines += [f"--- {self.console_log(node)}", *console]
        return [f"--- {self.log_file(node)}", *lines]

    def _write_layout(self, layout: Layout) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / LAYOUT_FILE).write_text(layout.to_json() + "\n")

    # --- down -----------------------------------------------------------------------------------
    def down(self, *, purge: bool = False, timeout_s: float = 30.0) -> DownResult:
        """Stop every node together (SIGTERM, then SIGKILL after ``timeout_s``); remove pid files.

        ``purge`` also deletes the data and the recorded layout. Nothing recorded: a no-op.
        """
        layout = self.recorded_layout()
        if layout is None:
            return DownResult((), (), (), purged=False)
        with self._locked():
            if layout.backend == "docker":
                docker.down(layout, self.state_dir, purge=purge)
                stopped: tuple[int, ...] = tuple(n.node_id for n in layout.nodes)
                killed: tuple[int, ...] = ()
                stale: tuple[int, ...] = ()
            else:
                statuses = [self._node_status(node) for node in layout.nodes]
                running = {s.pid: s.node for s in statuses if s.running and s.pid is not None}
                killed_pids = process.stop(running, timeout_s=timeout_s)
                for node in layout.nodes:
                    self.pid_file(node).unlink(missing_ok=True)
                stopped = tuple(n.node_id for p, n in running.items() if p not in killed_pids)
                killed = tuple(running[p].node_id for p in killed_pids)
                stale = tuple(s.node.node_id for s in statuses if s.state == CRASHED)
            if purge:
                for node in layout.nodes:
                    shutil.rmtree(self.node_dir(node), ignore_errors=True)
                shutil.rmtree(self.secrets.directory, ignore_errors=True)
                shutil.rmtree(self.secrets.clients_dir, ignore_errors=True)
                (self.state_dir / LAYOUT_FILE).unlink(missing_ok=True)
        if purge:
            with contextlib.suppress(OSError):
                (self.state_dir / ".lock").unlink()
                self.state_dir.rmdir()
        log.info(
            "kafka_down stopped=%s killed=%s stale=%s purged=%s", stopped, killed, stale, purge
        )
        return DownResult(stopped, killed, stale, purge)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One ``up``/``down`` at a time per state dir."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
