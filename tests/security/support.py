"""Running the real ``orderflow`` CLI and processors against a secured cluster, logs kept."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.security.conftest import SecureCluster


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    def error_line(self, *fragments: str) -> str:
        """The one ``orderflow: error:`` line, which must be the last line of stderr."""
        assert self.returncode != 0, self.stdout + self.stderr
        assert "Traceback" not in self.stdout + self.stderr, self.stderr
        errors = [line for line in self.stderr.splitlines() if line.startswith("orderflow: error:")]
        assert len(errors) == 1, self.stderr
        assert self.stderr.rstrip().endswith(errors[0]), self.stderr
        for fragment in fragments:
            assert fragment in errors[0], errors[0]
        return errors[0]


def orderflow(
    cluster: SecureCluster, env: dict[str, str], *args: str, timeout_s: float = 120
) -> Run:
    """``python -m processors`` with ``args``; stdout and stderr also saved in the log dir."""
    result = subprocess.run(
        [sys.executable, "-m", "processors", *args],
        env=env, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    name = f"cli-{args[0]}-{uuid.uuid4().hex[:8]}.log"
    (cluster.log_dir / name).write_text(
        f"$ orderflow {' '.join(args)}\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return Run(result.returncode, result.stdout, result.stderr)


class Processor:
    """``python -m processors.main|retry`` in the background, its output in the log dir."""

    def __init__(self, role: str, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"processors.{role}"],
                env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def check_alive(self) -> None:
        assert self.process.poll() is None, self.output()[-3000:]


def wait_for(
    condition: Callable[[], object], timeout_s: float, what: str, *procs: Processor
) -> object:
    """Poll ``condition`` until truthy; fail (with the processors' logs) after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        for proc in procs:
            proc.check_alive()
        time.sleep(0.5)
    logs = "\n".join(proc.output()[-2000:] for proc in procs)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{logs}")
