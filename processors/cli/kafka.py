"""``orderflow kafka up|down|status|logs``: a local Apache Kafka (KRaft) cluster on loopback."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from deploy.localkafka import (
    DEFAULT_STATE_DIR,
    BrokerStartError,
    Layout,
    LocalKafka,
    fixed_layout,
)
from deploy.localkafka.config import DEFAULT_CLIENT_PORT
from deploy.localkafka.jars import ensure_jars, is_cached, kafka_version
from deploy.localkafka.logs import follow, tail
from processors.acls import ROLES
from processors.errors import LocalKafkaError
from processors.settings import load_settings

_DEFAULT_BOOTSTRAP = f"127.0.0.1:{DEFAULT_CLIENT_PORT}"

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help="Where the cluster's config, logs, pid files and data live.",
)


@click.group()
def kafka() -> None:
    """A real Apache Kafka (KRaft) on 127.0.0.1 from Maven Central jars (needs Java 17+).

    One node: client port 9092, controller 9093. Three nodes: clients 9092/9094/9096,
    controllers 9093/9095/9097.
    """


@kafka.command()
@click.option(
    "--brokers",
    type=click.Choice(["1", "3"]),
    default=None,
    help="Number of combined broker+controller nodes  [default: as last started, else 1]",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65000),
    default=None,
    help=f"First client port; node i uses port+2(i-1) and the controller the next one up  "
    f"[default: as last started, else {DEFAULT_CLIENT_PORT}]",
)
@click.option("--docker", is_flag=True, help="Run apache/kafka with Docker Compose instead.")
@click.option(
    "--secure",
    is_flag=True,
    help="SASL_SSL (SCRAM-SHA-512) and TLS everywhere, ACLs per principal; writes each "
    "principal's settings to <state-dir>/clients/<principal>.env  [default: as last started]",
)
@click.option(
    "--renew-certs", is_flag=True, help="Issue a new CA and node certificates (cluster stopped)."
)
@click.option(
    "--timeout", type=click.FloatRange(1, 3600), default=120.0, show_default=True,
    help="Seconds to wait for every broker to serve metadata.",
)  # fmt: skip
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the Kafka jars are cached  "
    "[default: $XDG_CACHE_HOME/orderflow or ~/.cache/orderflow]",
)
@state_dir_option
def up(
    brokers: str | None,
    port: int | None,
    docker: bool,
    secure: bool,
    renew_certs: bool,
    timeout: float,
    cache_dir: Path | None,
    state_dir: Path,
) -> None:
    """Start the local cluster and wait until every broker serves metadata (no-op if up).

    With --secure the ACLs follow the topic and group names of the settings
    (ORDERFLOW_TOPIC_*, ORDERFLOW_GROUP_*, orderflow.toml).
    """
    if docker and secure:
        raise LocalKafkaError("--secure needs the jar broker (not --docker)")
    console = Console(stderr=True)
    layout: Layout | None = None
    manager = LocalKafka(state_dir, cache_dir=cache_dir)
    recorded = manager.recorded_layout()
    secure = secure or (recorded is not None and recorded.secure and not docker)
    if brokers is not None or port is not None or docker or secure:
        layout = fixed_layout(int(brokers or 1), port or DEFAULT_CLIENT_PORT)
        if recorded is not None and brokers is None and port is None:
            layout = dataclasses.replace(layout, nodes=recorded.nodes)
        layout = dataclasses.replace(layout, backend="docker" if docker else "jar", secure=secure)
    names = load_settings() if secure else None
    with _progress(console) as (step, detail):
        manager = LocalKafka(state_dir, cache_dir=cache_dir, progress=step, detail=detail)
        try:
            result = manager.up(layout, timeout_s=timeout, names=names, renew_certs=renew_certs)
        except BrokerStartError as exc:
            for line in exc.log_tail:
                click.echo(line, err=True)
            raise
    bootstrap = result.layout.bootstrap_servers
    if result.already_running:
        click.echo(f"Kafka already running: {result.layout.describe()} (nothing to do)")
    else:
        click.echo(
            f"Kafka {kafka_version()} ready in {result.seconds:.1f} s: {result.layout.describe()}"
        )
    click.echo(f"  bootstrap servers: {bootstrap}")
    if result.clients_dir is not None:
        click.echo(
            f"  SASL_SSL/SCRAM-SHA-512; each principal's settings (mode 0600): "
            f"{result.clients_dir}/{{{','.join(ROLES)}}}.env"
        )
        click.echo(f"  e.g. set -a; . {result.clients_dir}/operator.env; set +a")
    elif bootstrap != _DEFAULT_BOOTSTRAP:
        click.echo(f"  export ORDERFLOW_BOOTSTRAP_SERVERS={bootstrap}")
    click.echo(f"  logs: orderflow kafka logs   state: {manager.state_dir}")


@kafka.command()
def acls() -> None:
    """Set the ACLs of every principal (processors/acls.py) on the cluster in the settings.

    For a cluster you did not start with `kafka up --secure` (the VM deploy runs it): the
    settings must authenticate a super user (ORDERFLOW_SASL_USERNAME=broker). Each principal
    ends up with exactly its grants; its other ACLs are removed.
    """
    from processors.acls import all_grants
    from processors.kafka.access import check_access
    from processors.kafka.acls import apply_grants

    settings = load_settings()
    check_access(settings)
    created, deleted = apply_grants(settings, all_grants(settings))
    click.echo(f"ACLs of {', '.join(ROLES)}: {created} created, {deleted} removed")


@kafka.command()
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the Kafka jars are cached  "
    "[default: $XDG_CACHE_HOME/orderflow or ~/.cache/orderflow]",
)
def fetch(cache_dir: Path | None) -> None:
    """Download the pinned Kafka jars from Maven Central (no network I/O once cached)."""
    console = Console(stderr=True)
    cached = is_cached(cache_dir)
    with _progress(console) as (step, detail):
        step(f"fetching Kafka {kafka_version()} jars with Maven")
        directory = ensure_jars(cache_dir, progress=detail or step)
    jar_count = len(list(directory.glob("*.jar")))
    state = "already cached" if cached else "fetched"
    click.echo(f"Kafka {kafka_version()}: {jar_count} jars {state} in {directory}")


@kafka.command()
@click.option("--purge", is_flag=True, help="Also delete the cluster's data (topics, offsets).")
@click.option(
    "--timeout", type=click.FloatRange(0, 600), default=30.0, show_default=True,
    help="Seconds to wait after SIGTERM before SIGKILL.",
)  # fmt: skip
@state_dir_option
def down(purge: bool, timeout: float, state_dir: Path) -> None:
    """Stop every node together (SIGTERM, then SIGKILL after --timeout)."""
    manager = LocalKafka(state_dir)
    if manager.recorded_layout() is None:
        click.echo(f"no local Kafka in {manager.state_dir} (nothing to do)")
        return
    result = manager.down(purge=purge, timeout_s=timeout)
    parts = []
    if result.stopped:
        parts.append(f"stopped node(s) {_ids(result.stopped)}")
    if result.killed:
        parts.append(f"killed node(s) {_ids(result.killed)} after {timeout:.0f} s")
    if result.stale:
        parts.append(f"removed stale pid file(s) of node(s) {_ids(result.stale)}")
    if not parts:
        parts.append("nothing was running")
    if result.purged:
        parts.append(f"deleted the data in {manager.state_dir}")
    click.echo("Kafka: " + "; ".join(parts))


@kafka.command()
@state_dir_option
@click.pass_context
def status(ctx: click.Context, state_dir: Path) -> None:
    """Each node's state, checked against the live processes. Exit 0 only if all run."""
    manager = LocalKafka(state_dir)
    statuses = manager.status()
    if not statuses:
        click.echo(f"no local Kafka in {manager.state_dir} (start one: orderflow kafka up)")
        ctx.exit(1)
    rows = [("node", "state", "pid", "client", "controller")]
    for item in statuses:
        node = item.node
        rows.append(
            (
                str(node.node_id),
                item.state,
                str(item.pid or "-"),
                f"{node.client_address} {_listening(item.client_listening)}",
                f"127.0.0.1:{node.controller_port} {_listening(item.controller_listening)}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    ctx.exit(0 if all(item.running for item in statuses) else 1)


@kafka.command()
@click.option("--node", "node_id", type=int, default=None, help="Only this node (default: all).")
@click.option("-n", "--lines", type=click.IntRange(0), default=50, show_default=True)
@click.option("-f", "--follow", "follow_", is_flag=True, help="Keep printing new lines (Ctrl-C).")
@state_dir_option
def logs(node_id: int | None, lines: int, follow_: bool, state_dir: Path) -> None:
    """Print the last lines of the broker log(s)."""
    manager = LocalKafka(state_dir)
    layout = manager.recorded_layout()
    if layout is None:
        raise LocalKafkaError(
            f"no local Kafka in {manager.state_dir} (start one: orderflow kafka up)"
        )
    nodes = [n for n in layout.nodes if node_id is None or n.node_id == node_id]
    if not nodes:
        raise LocalKafkaError(
            f"no node {node_id}: nodes are {_ids(n.node_id for n in layout.nodes)}"
        )
    if layout.backend == "docker":
        raise LocalKafkaError(
            "--docker cluster: use `docker compose logs` (see docs/local-kafka.md)"
        )
    paths = {manager.log_file(node): node for node in nodes}
    prefix = len(nodes) > 1
    for path, node in paths.items():
        for line in tail(path, lines):
            click.echo(f"[{node.name}] {line}" if prefix else line)
    if follow_:
        try:
            for path, line in follow(list(paths)):
                click.echo(f"[{paths[path].name}] {line}" if prefix else line)
        except KeyboardInterrupt:
            return


@contextmanager
def _progress(
    console: Console,
) -> Iterator[tuple[Callable[[str], None], Callable[[str], None] | None]]:
    """(step, detail) callbacks: a spinner on a terminal, plain step lines otherwise."""
    if not console.is_terminal:
        yield (lambda message: console.print(escape(message), highlight=False)), None
        return
    with console.status("starting local Kafka") as spinner:
        current = {"step": "", "files": 0}

        def step(message: str) -> None:
            current["step"] = message
            spinner.update(escape(message))

        def detail(message: str) -> None:
            current["files"] = int(current["files"]) + 1
            spinner.update(escape(f"{current['step']}: {current['files']} files, {message}"))

        yield step, detail


def _ids(ids: Iterable[int]) -> str:
    return ",".join(str(i) for i in ids)


def _listening(flag: bool) -> str:
    return "listening" if flag else "closed"
