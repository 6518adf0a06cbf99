"""Restart a process that exits with a failure, with a backoff, as systemd's ``Restart=on-failure``
does on the VMs (``orderflow up`` and ``make chaos`` locally).

Like the units: exit 0 (a clean stop) is not restarted, nor exit 2 (bad settings: a restart
cannot fix it, ``RestartPreventExitStatus=2``); anything else is, after 1 s, doubling up to 30 s,
back to 1 s once a run has lasted a minute.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from processors.logs import event

logger = logging.getLogger(__name__)

NO_RESTART_CODES = (0, 2)
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 1.0
    factor: float = 2.0
    max_s: float = 30.0
    reset_after_s: float = 60.0

    def delay(self, consecutive: int) -> float:
        """Delay before restart number ``consecutive`` (1, 2, …) of a run of quick failures."""
        return min(self.initial_s * self.factor ** (consecutive - 1), self.max_s)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Supervised:
    """One supervised process; drive it with :meth:`poll` from one thread."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    output: IO[bytes] | int | None = None
    cwd: Path | None = None
    backoff: Backoff = field(default_factory=Backoff)
    state_file: Path | None = None
    clock: Callable[[], float] = time.monotonic
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    restarts: int = field(default=0, init=False)
    exit_codes: list[int] = field(default_factory=list, init=False)
    stopping: bool = field(default=False, init=False)
    _started_at: float = field(default=0.0, init=False)
    _quick_failures: int = field(default=0, init=False)
    _restart_at: float | None = field(default=None, init=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.process.poll() is None else None

    @property
    def finished(self) -> bool:
        """Exited and will not be restarted."""
        return (
            self.process is not None
            and self.process.poll() is not None
            and (self._restart_at is None)
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=self.output,
            stderr=subprocess.STDOUT if self.output is not None else None,
            preexec_fn=_die_with_parent,
        )
        self._started_at = self.clock()
        self._restart_at = None
        self._write_state()

    def poll(self) -> int | None:
        """Notice an exit and restart when due; returns the exit code noticed now, if any."""
        now = self.clock()
        if self._restart_at is not None:
            if now >= self._restart_at and not self.stopping:
                self.restarts += 1
                self.start()
            return None
        if self.process is None or (code := self.process.poll()) is None:
            return None
        self.exit_codes.append(code)
        if self.stopping or code in NO_RESTART_CODES:
            self._write_state()
            return code
        lasted = now - self._started_at
        self._quick_failures = (
            1 if lasted >= self.backoff.reset_after_s else self._quick_failures + 1
        )
        delay = self.backoff.delay(self._quick_failures)
        self._restart_at = now + delay
        event(
            logger,
            "restarting",
            logging.WARNING,
            service=self.name,
            exit_code=code,
            restarts=self.restarts + 1,
            backoff_s=delay,
        )
        self._write_state()
        return code

    def signal(self, signum: int) -> None:
        if self.pid is not None:
            os.kill(self.pid, signum)

    def stop(self, timeout_s: float) -> int | None:
        """SIGTERM, SIGKILL after ``timeout_s``; no more restarts. Returns the exit code."""
        self.stopping = True
        self._restart_at = None
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._write_state()
        return self.process.returncode

    def _write_state(self) -> None:
        if self.state_file is None:
            return
        state = {
            "pid": self.pid,
            "restarts": self.restarts,
            "last_exit_code": self.exit_codes[-1] if self.exit_codes else None,
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state) + "\n")
        tmp.replace(self.state_file)


def read_state(state_file: Path) -> dict[str, int | None]:
    """What :class:`Supervised` last wrote (empty if nothing or unreadable)."""
    try:
        data = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def supervise(supervised: Supervised, *, stop_timeout_s: float = 60.0) -> int:
    """Run ``supervised`` until it exits for good or this process gets SIGTERM/SIGINT (passed
    on to the child); returns the exit code to end with."""
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    supervised.start()
    while not stop:
        code = supervised.poll()
        if code is not None and supervised.finished:
            return code
        time.sleep(0.2)
    return supervised.stop(stop_timeout_s) or 0
