"""A local jar cluster on free ports whose brokers can be killed, restarted, paused and resumed."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

from deploy.localkafka import LocalKafka, layout_on_ports
from deploy.localkafka.config import Layout
from deploy.localkafka.net import free_ports

KILL_WAIT_S = 15.0


class Cluster:
    """``with Cluster(dir, 3) as cluster:`` … every broker is stopped (and its data removed) on
    exit, paused ones included, whatever happened inside."""

    def __init__(self, state_dir: Path, brokers: int = 3, timeout_s: float = 180.0) -> None:
        self.manager = LocalKafka(state_dir)
        self.brokers = brokers
        self.timeout_s = timeout_s
        self.layout: Layout | None = None
        self.paused: set[int] = set()

    def __enter__(self) -> Cluster:
        ports = free_ports(2 * self.brokers)
        layout = layout_on_ports(ports[: self.brokers], ports[self.brokers :])
        try:
            self.layout = self.manager.up(layout, timeout_s=self.timeout_s).layout
        except BaseException:
            self.manager.down(purge=True, timeout_s=20)
            raise
        return self

    def __exit__(self, *_: object) -> None:
        for node_id in list(self.paused):
            with contextlib.suppress(ProcessLookupError):
                self.resume(node_id)
        self.manager.down(purge=True, timeout_s=20)

    @property
    def bootstrap(self) -> str:
        assert self.layout is not None
        return self.layout.bootstrap_servers

    @property
    def node_ids(self) -> list[int]:
        assert self.layout is not None
        return [node.node_id for node in self.layout.nodes]

    def pid(self, node_id: int) -> int:
        for status in self.manager.status():
            if status.node.node_id == node_id and status.pid is not None and status.running:
                return status.pid
        raise LookupError(f"broker {node_id} is not running")

    def kill(self, node_id: int) -> None:
        """SIGKILL one broker and wait until it is gone."""
        pid = self.pid(node_id)
        self.paused.discard(node_id)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT_S
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        raise RuntimeError(f"broker {node_id} (pid {pid}) survived SIGKILL for {KILL_WAIT_S}s")

    def restart(self) -> float:
        """Start every broker that is not running; seconds until all serve metadata again."""
        return self.manager.up(self.layout, timeout_s=self.timeout_s).seconds

    def pause(self, node_id: int) -> None:
        """SIGSTOP: the broker keeps its sockets open and answers nothing (a hung broker)."""
        os.kill(self.pid(node_id), signal.SIGSTOP)
        self.paused.add(node_id)

    def resume(self, node_id: int) -> None:
        self.paused.discard(node_id)
        os.kill(self.pid(node_id), signal.SIGCONT)


def java_hash(text: str) -> int:
    """Java's ``String.hashCode`` (how Kafka maps an id to its coordinator's partition)."""
    value = 0
    for unit in text.encode("utf-16-be").hex(" ", 2).split():
        value = (31 * value + int(unit, 16)) & 0xFFFFFFFF
    return value


def transaction_coordinator(admin: Any, transactional_id: str, timeout_s: float = 10) -> int:
    """Node id of the broker that coordinates ``transactional_id``: the leader of its partition
    of ``__transaction_state`` (``hashCode & 0x7fffffff % partitions``, as Kafka computes it)."""
    topic = admin.list_topics(timeout=timeout_s).topics["__transaction_state"]
    partition = (java_hash(transactional_id) & 0x7FFFFFFF) % len(topic.partitions)
    return int(topic.partitions[partition].leader)
