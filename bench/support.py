"""What every benchmark needs: its own topics, processors as subprocesses, /proc readings, stats."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.localkafka.net import free_ports
from processors.kafka import clients, topics
from processors.settings import Settings, load_settings

# Processors log their start-up with this event; it is printed once Kafka clients exist.
STARTED = "event=started"
# librdkafka's own log lines go through logging (as the library's clients do), not raw stderr.
RDKAFKA_LOGGER = logging.getLogger("processors.kafka.rdkafka")


class BenchError(Exception):
    """A benchmark could not produce a figure (a processor died, a wait timed out, …)."""


@dataclass(frozen=True)
class Context:
    """Where a benchmark runs: the broker and a scratch directory for state and logs."""

    bootstrap: str
    workdir: Path


def fresh_settings(ctx: Context, tag: str, **overrides: Any) -> Settings:
    """Settings with topic and group names no other run uses (``bench-<tag>-<random>``)."""
    suffix = f"{tag}-{uuid.uuid4().hex[:8]}"
    state_dir = ctx.workdir / f"state-{suffix}"
    values: dict[str, Any] = {
        "bootstrap_servers": ctx.bootstrap,
        "topic_main": f"bench-{suffix}.orders.v1",
        "topic_retry": f"bench-{suffix}.orders.retry",
        "topic_dlq": f"bench-{suffix}.orders.dlq",
        "topic_processed": f"bench-{suffix}.orders.processed",
        "topic_redriven": f"bench-{suffix}.orders.dlq.redriven",
        "group_main": f"bench-{suffix}-main",
        "group_retry": f"bench-{suffix}-retry",
        "state_dir": state_dir,
    }
    return load_settings(**(values | overrides))


@contextlib.contextmanager
def own_topics(settings: Settings) -> Iterator[Settings]:
    """Create the run's topics (explicit config, as ``orderflow topics create`` does) and
    delete them afterwards, so a shared broker is left as it was."""
    topics.ensure_topics(settings, timeout_s=30)
    try:
        yield settings
    finally:
        delete_topics(settings)


def delete_topics(settings: Settings) -> None:
    admin = clients.admin_client(settings, logger=RDKAFKA_LOGGER)
    names = [*settings.all_topics, settings.topic_redriven]
    futures = admin.delete_topics(names, operation_timeout=30, request_timeout=30)
    for future in futures.values():
        with contextlib.suppress(Exception):  # best effort: the broker may be going away
            future.result(timeout=30)


def processor_env(settings: Settings, **overrides: Any) -> dict[str, str]:
    """The settings as ``ORDERFLOW_*`` variables for a processor subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    for name, value in (settings.model_dump() | overrides).items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, list):
            value = ",".join(value)
        env[f"ORDERFLOW_{name.upper()}"] = str(value)
    return env


REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Processor:
    """``python -m processors main|retry`` (or ``python -m <module> <role>``, e.g. a reference
    worker of ``bench.workers``) with its settings in the environment and its log in
    ``workdir``."""

    role: str
    settings: Settings
    workdir: Path
    instance_id: str | None  # None: the processor's default (hostname-pid, not stable)
    metrics_port: int | None = None
    module: str = "processors"
    wrapper: tuple[str, ...] = ()  # a command the worker runs under, e.g. valgrind
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        name = f"{self.role}-{self.instance_id or 'auto'}-{uuid.uuid4().hex[:6]}"
        self.log_path = self.workdir / f"{name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Processor:
        env = processor_env(
            self.settings, instance_id=self.instance_id, metrics_port=self.metrics_port
        )
        # bench/ is not an installed package: a worker imports it from the checkout.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.wrapper, sys.executable, "-m", self.module, self.role],
                env=env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_started(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if STARTED in self.log():
                return
            self.check_alive()
            time.sleep(0.1)
        raise BenchError(f"{self.role} processor did not start within {timeout_s:g} s")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            code = self.process.returncode if self.process else None
            raise BenchError(
                f"{self.role} processor exited with {code}; log {self.log_path}:\n"
                + self.log_tail()
            )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def peak_rss_mib(self) -> float:
        """The process's peak resident set size so far (``VmHWM``), in MiB."""
        return _status_kib(self.pid, "VmHWM") / 1024

    def rss_mib(self) -> float:
        """The process's resident set size now (``VmRSS``), in MiB."""
        return _status_kib(self.pid, "VmRSS") / 1024

    def wait(self, timeout_s: float) -> int:
        """Wait for a worker that ends by itself; its exit code (BenchError at the deadline)."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchError(f"{self.role} did not finish within {timeout_s:g} s") from None

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        return cpu_seconds(self.pid)

    def pause(self) -> None:
        """SIGSTOP: frozen, threads and all, until ``resume``."""
        if self.alive():
            self.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]

    def resume(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]

    def terminate(self, timeout_s: float = 30) -> int | None:
        """SIGTERM (a graceful stop), SIGKILL if it does not exit in time; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.resume()  # a paused process acts on SIGTERM only once continued
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would: no commit, no leave-group, an open transaction."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@contextlib.contextmanager
def running(*processors: Processor) -> Iterator[None]:
    """Start the processors; on the way out stop them gracefully (killing any that hang)."""
    started: list[Processor] = []
    try:
        for proc in processors:
            started.append(proc.start())
        yield
    finally:
        for proc in started:
            proc.terminate()


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {key}")


def cpu_seconds(pid: int) -> float:
    # Fields 14 and 15 of /proc/<pid>/stat (after the parenthesised command name).
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A free loopback port outside the ephemeral range (see ``deploy.localkafka.net``)."""
    return free_ports(1)[0]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


# --- statistics ----------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max/min of ``values`` (units as given)."""
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
        "min": min(values) if values else float("nan"),
    }


# --- the machine ---------------------------------------------------------------------------------
def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def load_1m() -> float:
    """The 1-minute load average: how many processes wanted the 2 cores lately."""
    return round(os.getloadavg()[0], 2)


def machine() -> dict[str, Any]:
    """CPU count, memory, kernel, Python, and the load when asked (others share the cores)."""
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    try:
        uptime = subprocess.run(
            ["uptime"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except OSError:
        uptime = ""
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in load_average()],
        "uptime": uptime,
    }
