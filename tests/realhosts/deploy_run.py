"""Run the real ``pyinfra`` CLI against test hosts, as a user would, and read its results table."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from deploy.testhosts.lab import LOGIN_USER, Lab, TestHost

REPO = Path(__file__).resolve().parents[2]
PYINFRA = Path(sys.executable).with_name("pyinfra")
# The jars runtime, no Docker container anywhere, a heap that fits a shared 2-core machine.
DEPLOY_DATA = ("kafka_runtime=jars", "kafka_heap_size=384m", "redpanda_console=false")
# First deploy: apt fetch, wheelhouse, ~170 MB of uploads, pip install; minutes on a busy machine.
DEPLOY_TIMEOUT_S = 2700


@dataclass(frozen=True)
class DeployResult:
    returncode: int
    output: str

    def changed_operations(self) -> set[str]:
        """Names of the operations that changed something on at least one host."""
        table = self.output.partition("--> Results:")[2]
        changed = set()
        for line in table.splitlines():
            cells = re.split(r"\s{2,}", line.strip())
            # Operation | Hosts | Success | Error | No Change
            if len(cells) == 5 and " | " in cells[0] and cells[2] != "-":
                changed.add(cells[0].split(" | ", 1)[1])
        return changed


def write_outputs(path: Path, kafka: list[TestHost], app: list[TestHost], **extra: object) -> Path:
    """A hand-written outputs file for hosts you bring yourself (the shape of Pulumi's)."""
    entries = [
        {
            "name": host.name,
            "role": role,
            "instance_id": host.name,
            "private_ip": host.address,
            "public_ip": host.address,
            "az": "local",
            "node_id": index if role == "kafka" else None,
            "data_volume_id": None,
        }
        for role, hosts in (("kafka", kafka), ("app", app))
        for index, host in enumerate(hosts, 1)
    ]
    outputs = {
        "region": "local",
        "bootstrap_servers": ",".join(f"{host.address}:9092" for host in kafka),
        "dashboard_url": "http://localhost:8501",
        "console_url": None,
        # A KRaft cluster id (22 characters of URL-safe base64), fixed for the lab's clusters.
        "kafka_cluster_id": "b3JkZXJmbG93LXRlc3RsYQ",
        "hosts": entries,
        **extra,
    }
    path.write_text(json.dumps(outputs, indent=2))
    return path


def run_deploy(
    lab: Lab,
    outputs: Path,
    *data: str,
    ssh_key: Path | None = None,
    timeout: float = DEPLOY_TIMEOUT_S,
) -> DeployResult:
    """``pyinfra -y deploy/inventory.py deploy/deploy.py`` with ``--data`` for each of ``data``."""
    env = {
        **os.environ,
        "ORDERFLOW_PULUMI_OUTPUTS": str(outputs),
        "ORDERFLOW_SSH_VIA": "public",
        "ORDERFLOW_SSH_USER": LOGIN_USER,
        "ORDERFLOW_SSH_KEY": str(ssh_key or lab.ssh_key),
        "ORDERFLOW_SSH_KNOWN_HOSTS": str(lab.known_hosts),
    }
    argv = [str(PYINFRA), "-y", "deploy/inventory.py", "deploy/deploy.py"]
    for item in (*DEPLOY_DATA, *data):
        argv += ["--data", item]
    result = subprocess.run(
        argv,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return DeployResult(result.returncode, result.stdout + result.stderr)
