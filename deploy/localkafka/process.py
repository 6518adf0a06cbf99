"""Background processes with a pid file and a log file (Linux and macOS; ``/proc`` used if present).

Small on purpose; used for the local Kafka nodes and by ``orderflow up`` for the processors and
the dashboard::

    pid = start_detached(["java", ...], log_file=d / "console.log", pid_file=d / "kafka.pid")
    state = process_state(d / "kafka.pid", markers=["kafka.Kafka", str(props)])
    stop([pid])  # SIGTERM to the whole process group, wait, SIGKILL stragglers

A started process runs in its own session (it survives the caller and Ctrl-C in its terminal);
its process group id equals its pid, so ``stop`` reaches its children too.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path


class ProcessState(enum.Enum):
    RUNNING = "running"
    STOPPED = "stopped"  # no pid file
    STALE = "stale"  # a pid file whose process is gone (crashed or killed) or is not ours


def start_detached(
    argv: Sequence[str],
    *,
    log_file: Path,
    pid_file: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start ``argv`` in a new session, stdout+stderr appended to ``log_file``; write ``pid_file``.

    Returns the pid. Raises ``OSError`` if the program cannot be executed. ``env`` replaces the
    environment when given.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            close_fds=True,
        )
    tmp = pid_file.with_name(pid_file.name + ".tmp")
    tmp.write_text(f"{child.pid}\n")
    tmp.replace(pid_file)
    return child.pid


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file``, or ``None`` if there is no file or it holds no number."""
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def is_alive(pid: int) -> bool:
    """True until every thread of ``pid`` has exited (so its sockets and files are closed).

    A child of ours is reaped here. A multi-threaded process's main thread shows as a zombie
    while other threads are still exiting and holding its sockets: that still counts as alive.
    """
    is_child = True
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        is_child = False
    except OSError:
        is_child = False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if is_child:
        return True  # waitpid reports a child only once all its threads are gone
    try:
        # The state letter follows the parenthesised command name, which may contain spaces.
        if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            return True
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except (OSError, IndexError):
        return not Path("/proc/self").exists() or Path(f"/proc/{pid}").exists()


def command_line(pid: int) -> list[str] | None:
    """The argv of ``pid`` (from ``/proc``, else ``ps``), or ``None`` if it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None
    except OSError:
        return None
    result = subprocess.run(
        ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return result.stdout.split() if result.returncode == 0 and result.stdout.strip() else None


def is_ours(pid: int, markers: Iterable[str]) -> bool:
    """True if ``pid`` is alive and its command line contains every marker string."""
    if not is_alive(pid):
        return False
    argv = command_line(pid)
    if argv is None:
        return False
    joined = " ".join(argv)
    return all(marker in joined for marker in markers)


def process_state(pid_file: Path, markers: Iterable[str] = ()) -> tuple[ProcessState, int | None]:
    """``(state, pid)`` of the process recorded in ``pid_file``, verified against ``markers``.

    A pid file naming a dead process, or a live process whose command line lacks a marker (the
    pid was reused), is ``STALE``.
    """
    pid = read_pid(pid_file)
    if pid is None:
        return (ProcessState.STALE if pid_file.exists() else ProcessState.STOPPED), None
    return (ProcessState.RUNNING if is_ours(pid, markers) else ProcessState.STALE), pid


def stop(pids: Iterable[int], *, timeout_s: float = 30.0, poll_s: float = 0.2) -> list[int]:
    """SIGTERM every process group at once, wait up to ``timeout_s``, then SIGKILL the rest.

    Returns the pids that had to be killed. Callers verify the pids are theirs first.
    """
    remaining = [pid for pid in pids if is_alive(pid)]
    for pid in remaining:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while remaining and time.monotonic() < deadline:
        time.sleep(poll_s)
        remaining = [pid for pid in remaining if is_alive(pid)]
    for pid in remaining:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while any(is_alive(pid) for pid in remaining) and time.monotonic() < deadline:
        time.sleep(poll_s)
    return remaining


def _signal(pid: int, sig: signal.Signals) -> None:
    """Signal the process group led by ``pid`` (our children lead theirs), else ``pid`` alone."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
