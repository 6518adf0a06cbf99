"""Background-process helpers, exercised on real child processes (no broker)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from deploy.localkafka.process import (
    ProcessState,
    is_alive,
    process_state,
    read_pid,
    start_detached,
    stop,
)

SLEEPER = "import time, sys; print('hello', flush=True); time.sleep(60)"
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ignoring TERM', flush=True); time.sleep(60)"
)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def start(tmp_path: Path, code: str, name: str = "p") -> tuple[int, Path, Path]:
    log, pid_file = tmp_path / f"{name}.log", tmp_path / f"{name}.pid"
    pid = start_detached(
        [sys.executable, "-c", code, f"marker-{name}"], log_file=log, pid_file=pid_file
    )
    return pid, log, pid_file


def test_started_process_has_its_own_session_pid_file_and_log(tmp_path: Path) -> None:
    pid, log, pid_file = start(tmp_path, SLEEPER)
    try:
        assert read_pid(pid_file) == pid
        assert os.getsid(pid) == pid  # survives the caller's terminal and Ctrl-C
        assert wait_for(lambda: "hello" in log.read_text())
        assert process_state(pid_file, ["marker-p"]) == (ProcessState.RUNNING, pid)
    finally:
        assert stop([pid], timeout_s=5) == []
    assert not is_alive(pid)


def test_a_live_process_without_our_marker_is_stale(tmp_path: Path) -> None:
    pid, _, pid_file = start(tmp_path, SLEEPER)
    try:
        assert process_state(pid_file, ["kafka.Kafka"]) == (ProcessState.STALE, pid)
    finally:
        stop([pid], timeout_s=5)


def test_killed_process_leaves_a_stale_pid_file(tmp_path: Path) -> None:
    pid, _, pid_file = start(tmp_path, SLEEPER)
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not is_alive(pid))  # reaped, not reported as a zombie
    assert process_state(pid_file, ["marker-p"]) == (ProcessState.STALE, pid)


def test_no_pid_file_is_stopped_and_garbage_is_stale(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    assert process_state(pid_file) == (ProcessState.STOPPED, None)
    pid_file.write_text("not a pid\n")
    assert read_pid(pid_file) is None
    assert process_state(pid_file) == (ProcessState.STALE, None)


def test_stop_terminates_all_together_and_kills_stragglers(tmp_path: Path) -> None:
    polite, _, _ = start(tmp_path, SLEEPER, "polite")
    stubborn, log, _ = start(tmp_path, STUBBORN, "stubborn")
    assert wait_for(lambda: "ignoring TERM" in log.read_text())
    started = time.monotonic()
    killed = stop([polite, stubborn], timeout_s=1.0)
    assert killed == [stubborn]
    assert time.monotonic() - started < 8
    assert not is_alive(polite) and not is_alive(stubborn)


def test_stop_of_dead_pids_is_a_no_op(tmp_path: Path) -> None:
    pid, _, _ = start(tmp_path, "pass")
    assert wait_for(lambda: not is_alive(pid))
    assert stop([pid], timeout_s=1) == []
