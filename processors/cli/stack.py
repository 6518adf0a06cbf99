"""``orderflow up|down|status``: the whole local stack — Kafka, topics, processors, dashboard.

The processors and the dashboard run in the background, each under its own supervisor
(``python -m processors supervise … -- main …``: restarts with a backoff a service that exits
with a failure, as systemd does on the VMs), with a pid file (the supervisor's), a state file
(restarts, last exit code) and a log file each under ``.orderflow/run``; ``down`` stops exactly
those, then Kafka.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import click

from deploy.localkafka import DEFAULT_STATE_DIR, LocalKafka, process
from deploy.localkafka.logs import tail
from deploy.localkafka.net import port_is_free
from processors.cli.kafka import down as kafka_down
from processors.cli.kafka import up as kafka_up
from processors.cli.topics import create as topics_create
from processors.errors import OrderflowError
from processors.settings import load_settings
from processors.supervisor import Supervised, read_state
from processors.supervisor import supervise as supervise_until_stopped

RUN_DIR = Path(".orderflow/run")
READY_TIMEOUT_S = 90.0


class StackError(OrderflowError):
    """A background service of the local stack did not start."""


@dataclass(frozen=True)
class Service:
    name: str
    args: tuple[str, ...]
    port: int
    ready_path: str  # an HTTP path on 127.0.0.1:port that answers 200 once the service is up

    @property
    def argv(self) -> list[str]:
        supervisor = ["supervise", "--name", self.name, "--state-file", str(self.state_file)]
        return [sys.executable, "-m", "processors", *supervisor, "--", *self.args]

    @property
    def state_file(self) -> Path:
        return RUN_DIR / f"{self.name}.state.json"

    @property
    def markers(self) -> list[str]:
        return ["processors", *self.args]

    @property
    def pid_file(self) -> Path:
        return RUN_DIR / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return RUN_DIR / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.ready_path}"


SERVICES = (
    Service("main", ("main", "--instance-id", "local-main-1", "--metrics-port", "9464"),
            9464, "/metrics"),
    Service("retry", ("retry", "--instance-id", "local-retry-1", "--metrics-port", "9465"),
            9465, "/metrics"),
    Service("dashboard", ("dashboard", "--address", "127.0.0.1", "--port", "8501"),
            8501, "/_stcore/health"),
)  # fmt: skip


@click.command()
@click.pass_context
def up(ctx: click.Context) -> None:
    """Start Kafka, create the topics, start both processors and the dashboard (no-op if up)."""
    load_settings()  # an invalid setting fails here, before anything starts
    ctx.invoke(kafka_up)
    ctx.invoke(topics_create)
    for service in SERVICES:
        _start(service)
    click.echo("\norderflow is up:")
    click.echo("  Kafka        127.0.0.1:9092   (orderflow kafka status | logs)")
    click.echo("  dashboard    http://127.0.0.1:8501")
    click.echo("  metrics      http://127.0.0.1:9464/metrics (main), :9465/metrics (retry)")
    click.echo(f"  logs         {RUN_DIR}/*.log")
    click.echo("  try          orderflow produce --count 100 --scenario mixed")
    click.echo("  stop         make down")


@click.command()
@click.pass_context
def down(ctx: click.Context) -> None:
    """Stop the dashboard, the processors and Kafka — everything `orderflow up` started."""
    for service in reversed(SERVICES):
        state, pid = process.process_state(service.pid_file, service.markers)
        if state is process.ProcessState.RUNNING and pid is not None:
            killed = process.stop([pid], timeout_s=15.0)
            click.echo(f"{service.name}: {'killed' if killed else 'stopped'}")
        elif state is process.ProcessState.STALE:
            click.echo(f"{service.name}: was not running (removed stale pid file)")
        service.pid_file.unlink(missing_ok=True)
        service.state_file.unlink(missing_ok=True)
    if LocalKafka(DEFAULT_STATE_DIR).recorded_layout() is None:
        click.echo("Kafka: not started here (nothing to do)")
    else:
        ctx.invoke(kafka_down)


@click.command()
def status() -> None:
    """Show whether each part of the local stack is running."""
    for node in LocalKafka(DEFAULT_STATE_DIR).status():
        click.echo(f"kafka node {node.node.node_id:<3}  {node.state}")
    for service in SERVICES:
        state, pid = process.process_state(service.pid_file, service.markers)
        label = {"running": f"running (pid {pid})", "stale": "crashed (stale pid file)"}.get(
            state.value, state.value
        )
        supervised = read_state(service.state_file)
        if state is process.ProcessState.RUNNING and supervised.get("restarts"):
            label += (
                f", restarted {supervised['restarts']}x"
                f" (last exit code {supervised.get('last_exit_code')})"
            )
        click.echo(f"{service.name:<14} {label}")


@click.command(hidden=True, context_settings={"ignore_unknown_options": True})
@click.option("--name", required=True, help="Service name for the log lines.")
@click.option("--state-file", type=click.Path(path_type=Path), required=True)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def supervise(name: str, state_file: Path, command: tuple[str, ...]) -> None:
    """Run `orderflow COMMAND…` and restart it when it fails (what `orderflow up` runs)."""
    from processors import logs

    logs.configure()
    child = Supervised(name, [sys.executable, "-m", "processors", *command], state_file=state_file)
    sys.exit(supervise_until_stopped(child))


def _start(service: Service) -> None:
    state, pid = process.process_state(service.pid_file, service.markers)
    if state is process.ProcessState.RUNNING:
        click.echo(f"{service.name}: already running (pid {pid})")
        return
    if not port_is_free(service.port):
        raise StackError(f"{service.name}: port {service.port} on 127.0.0.1 is already in use")
    pid = process.start_detached(service.argv, log_file=service.log_file, pid_file=service.pid_file)
    started = time.monotonic()
    deadline = started + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not process.is_alive(pid):
            break
        if _answers(service.url):
            click.echo(f"{service.name}: started in {time.monotonic() - started:.1f} s (pid {pid})")
            return
        time.sleep(0.3)
    if process.is_alive(pid):
        process.stop([pid], timeout_s=10.0)
    service.pid_file.unlink(missing_ok=True)
    for line in tail(service.log_file, 15):
        click.echo(f"  {line}", err=True)
    raise StackError(f"{service.name} did not become ready; see {service.log_file}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
