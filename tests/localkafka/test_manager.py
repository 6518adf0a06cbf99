"""Manager decisions that need no running broker: layouts, pid files, ports, data dirs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.localkafka import CRASHED, STOPPED, Layout, LocalKafka, fixed_layout, layout_on_ports
from deploy.localkafka.config import LAYOUT_FILE
from deploy.localkafka.net import free_ports
from deploy.localkafka.storage import needs_format
from processors.errors import LocalKafkaError

CLUSTER_ID = "AAAAAAAAAAAAAAAAAAAAAA"


def record(state_dir: Path, layout: Layout) -> LocalKafka:
    """A state dir as `up` leaves it, without starting anything."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / LAYOUT_FILE).write_text(layout.to_json())
    return LocalKafka(state_dir)


def free_layout(brokers: int = 1) -> Layout:
    ports = free_ports(2 * brokers)
    base = layout_on_ports(ports[:brokers], ports[brokers:])
    return Layout(base.nodes, CLUSTER_ID)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """Another program's listening socket on a loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def test_nothing_recorded_means_no_nodes(tmp_path: Path) -> None:
    manager = LocalKafka(tmp_path / "kafka")
    assert manager.status() == []
    result = manager.down()
    assert (result.stopped, result.killed, result.stale) == ((), (), ())


def test_a_dead_pid_is_reported_crashed_and_down_clears_it(tmp_path: Path) -> None:
    layout = free_layout()
    manager = record(tmp_path, layout)
    node = layout.nodes[0]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    manager.pid_file(node).parent.mkdir(parents=True)
    manager.pid_file(node).write_text(dead.stdout)
    [status] = manager.status()
    assert (status.state, status.pid) == (CRASHED, int(dead.stdout))
    assert not status.client_listening
    result = manager.down()
    assert result.stale == (1,) and result.stopped == ()
    assert not manager.pid_file(node).exists()
    assert manager.status()[0].state == STOPPED


def test_a_reused_pid_is_not_ours_and_is_never_signalled(tmp_path: Path) -> None:
    layout = free_layout()
    manager = record(tmp_path, layout)
    pid_file = manager.pid_file(layout.nodes[0])
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{os.getpid()}\n")  # alive, but this is pytest, not kafka.Kafka
    assert manager.status()[0].state == CRASHED
    assert manager.down().stale == (1,)  # and we are still here


def test_a_different_layout_needs_a_purge_first(tmp_path: Path) -> None:
    manager = record(tmp_path, fixed_layout(3, 41000))
    with pytest.raises(LocalKafkaError, match=r"holds a jar cluster of 3 nodes.*down --purge"):
        manager.up(fixed_layout(1, 41000))


def test_a_taken_port_fails_before_anything_starts(tmp_path: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    [controller] = free_ports(1)
    manager = LocalKafka(tmp_path)
    with pytest.raises(
        LocalKafkaError, match=rf"^port {port} \(node-1 client port\) is already in use"
    ):
        manager.up(layout_on_ports([port], [controller]))
    assert not list(tmp_path.glob("node-*/kafka.pid"))


def test_purge_removes_only_what_the_manager_made(tmp_path: Path) -> None:
    layout = free_layout()
    manager = record(tmp_path, layout)
    manager.data_dir(layout.nodes[0]).mkdir(parents=True)
    (tmp_path / "unrelated.txt").write_text("keep me")
    assert manager.down(purge=True).purged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unrelated.txt"]


def test_data_dir_checks(tmp_path: Path) -> None:
    node = free_layout().nodes[0]
    assert needs_format(tmp_path / "missing", node, CLUSTER_ID)
    data = tmp_path / "data"
    data.mkdir()
    assert needs_format(data, node, CLUSTER_ID)  # empty
    (data / "meta.properties").write_text(f"version=1\ncluster.id={CLUSTER_ID}\nnode.id=1\n")
    assert not needs_format(data, node, CLUSTER_ID)
    (data / "meta.properties").write_bytes(b"\x00garbage\xff")
    with pytest.raises(LocalKafkaError, match=rf"corrupt data directory {data}: .*down --purge"):
        needs_format(data, node, CLUSTER_ID)
    (data / "meta.properties").unlink()
    (data / "__cluster_metadata-0").mkdir()
    with pytest.raises(LocalKafkaError, match=r"no meta\.properties"):
        needs_format(data, node, CLUSTER_ID)
