"""A real single-node broker through its life: up, no-op up, kill -9, status, heal, down."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from deploy.localkafka import CRASHED, RUNNING, STOPPED, BrokerStartError, Layout, LocalKafka
from deploy.localkafka.config import layout_on_ports
from deploy.localkafka.net import free_ports, is_listening
from deploy.localkafka.process import is_alive
from processors.cli import cli
from processors.errors import LocalKafkaError

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def free_layout(**extra_config: str) -> Layout:
    client, controller = free_ports(2)
    return Layout(layout_on_ports([client], [controller]).nodes, extra_config=extra_config)


def wait_until(predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def status_output(state_dir: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["kafka", "status", "--state-dir", str(state_dir)])
    return result.exit_code, result.output


def test_up_status_kill_down(tmp_path: Path) -> None:
    manager = LocalKafka(tmp_path)
    layout = free_layout()
    node = layout.nodes[0]
    try:
        first = manager.up(layout, timeout_s=120)
        assert first.started == (1,)
        assert first.layout.cluster_id  # formatted with a fresh id
        assert is_listening(node.client_port)
        [status] = manager.status()
        assert status.state == RUNNING and status.client_listening and status.controller_listening
        assert (tmp_path / "node-1" / "server.log").read_text().count("Kafka Server started") == 1

        again = manager.up(timeout_s=30)  # the recorded layout
        assert again.already_running and again.layout == first.layout

        pid = status.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not is_alive(pid))
        [crashed] = manager.status()
        assert crashed.state == CRASHED and crashed.pid == pid
        code, text = status_output(tmp_path)
        assert code == 1 and "crashed (stale pid file)" in text

        # `up` over the stale pid file restarts the node on its data: no re-format, same cluster.
        healed = manager.up(timeout_s=120)
        assert healed.started == (1,) and healed.layout.cluster_id == first.layout.cluster_id
        assert status_output(tmp_path)[0] == 0
        assert manager.status()[0].pid != pid

        second = manager.status()[0].pid
        assert second is not None
        os.kill(second, signal.SIGKILL)
        wait_until(lambda: not is_alive(second))
        down = manager.down()
        assert down.stale == (1,) and down.stopped == ()
        assert not manager.pid_file(node).exists()
        assert manager.status()[0].state == STOPPED
        assert not is_listening(node.client_port)
    finally:
        manager.down(purge=True, timeout_s=10)
    assert not tmp_path.joinpath("node-1").exists()


def test_a_node_dying_at_start_fails_fast_with_its_log(tmp_path: Path) -> None:
    manager = LocalKafka(tmp_path)
    # Accepted by the storage formatter, fatal when the broker instantiates it.
    layout = free_layout(**{"authorizer.class.name": "com.example.NoSuchAuthorizer"})
    started = time.monotonic()
    with pytest.raises(BrokerStartError, match="node-1 exited during start-up") as caught:
        manager.up(layout, timeout_s=120)
    assert time.monotonic() - started < 60
    assert any("NoSuchAuthorizer" in line for line in caught.value.log_tail)
    assert manager.status()[0].state == STOPPED  # no pid file left behind


def test_not_ready_in_time_stops_what_it_started(tmp_path: Path) -> None:
    manager = LocalKafka(tmp_path)
    with pytest.raises(BrokerStartError, match=r"not ready after \d+ s") as caught:
        manager.up(free_layout(), timeout_s=0.5)
    assert caught.value.log_tail[0].startswith("--- ")
    [status] = manager.status()
    assert status.state == STOPPED and not status.controller_listening


def test_a_config_the_formatter_rejects_gives_its_reason(tmp_path: Path) -> None:
    manager = LocalKafka(tmp_path)
    with pytest.raises(LocalKafkaError, match=r"format failed: .*ConfigException: Invalid value 0"):
        manager.up(free_layout(**{"num.network.threads": "0"}), timeout_s=60)
    assert not list(tmp_path.glob("node-*/kafka.pid"))
