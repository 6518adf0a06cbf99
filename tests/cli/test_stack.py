"""`orderflow up` / `down` / `status` (what `make up` / `make down` run): twice in a row, with a
processor killed in between (restarted by its supervisor) and then its supervisor, leaving no
stray process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.localkafka import process
from deploy.localkafka.net import port_is_free
from processors.cli.stack import SERVICES
from processors.supervisor import read_state

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

STACK_PORTS = (9092, 9093, *(service.port for service in SERVICES))


def orderflow(cwd: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "processors", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def processes_in(cwd: Path) -> list[str]:
    """Command lines of live processes working in or naming ``cwd``: only the stack does."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            inside = (entry / "cwd").resolve().is_relative_to(cwd.resolve())
        except OSError:
            continue
        if (inside or str(cwd) in argv) and process.is_alive(int(entry.name)):
            found.append(argv)
    return found


@pytest.fixture
def stack_dir(tmp_path: Path):
    busy = [port for port in STACK_PORTS if not port_is_free(port)]
    if busy:
        pytest.skip(f"the local stack's ports are in use here: {busy}")
    yield tmp_path
    orderflow(tmp_path, "down")  # whatever happened, leave nothing running


def test_up_down_twice_with_a_crashed_processor_in_between(stack_dir: Path) -> None:
    first = orderflow(stack_dir, "up")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "orderflow is up" in first.stdout
    for service in SERVICES:
        assert f"{service.name}: started" in first.stdout
    running = " | ".join(processes_in(stack_dir))
    assert "kafka.Kafka" in running and "streamlit" in running, running

    again = orderflow(stack_dir, "up")  # already up: nothing new starts
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Kafka already running" in again.stdout
    for service in SERVICES:
        assert f"{service.name}: already running" in again.stdout

    # The processor itself dies: its supervisor restarts it, and status says so.
    state_file = stack_dir / ".orderflow/run/main.state.json"
    child = read_state(state_file)["pid"]
    assert isinstance(child, int)
    os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while (
        "restarted 1x (last exit code -9)" not in (status := orderflow(stack_dir, "status")).stdout
    ):
        assert time.monotonic() < deadline, status.stdout
        time.sleep(0.5)
    assert read_state(state_file)["pid"] not in (None, child)

    # The supervisor dies (kill -9): the processor goes with it, nothing restarts either.
    main_pid = process.read_pid(stack_dir / ".orderflow/run/main.pid")
    assert main_pid is not None
    os.kill(main_pid, signal.SIGKILL)
    time.sleep(0.5)
    status = orderflow(stack_dir, "status")
    assert "main           crashed (stale pid file)" in status.stdout, status.stdout
    assert "retry          running" in status.stdout

    down = orderflow(stack_dir, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "main: was not running (removed stale pid file)" in down.stdout
    assert "Kafka: stopped node(s) 1" in down.stdout
    assert processes_in(stack_dir) == []

    second = orderflow(stack_dir, "up")  # restarts on the existing data
    assert second.returncode == 0, second.stdout + second.stderr
    assert "main: started" in second.stdout
    down = orderflow(stack_dir, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert processes_in(stack_dir) == []
    assert all(port_is_free(port) for port in STACK_PORTS)
