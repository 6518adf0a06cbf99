"""Run the real pyinfra deploy against @fake hosts (see fake_deploy.py) and script what they say.

No network and no SSH: the fake connector answers every command from ``fake_responses``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE_OUTPUTS = REPO / "deploy" / "stack-outputs.sample.json"
FAKE_DEPLOY = Path(__file__).with_name("fake_deploy.py")
WHEEL_NAME = "orderflow-0.1.0-py3-none-any.whl"

# What a fresh Ubuntu 24.04 instance answers to the facts the deploy needs before any change.
UBUNTU_RESPONSES: dict[str, Any] = {
    "-release": ["/etc/os-release", 'NAME="Ubuntu"', "ID=ubuntu", 'VERSION_ID="24.04"', "---"],
    "uname -s": "Linux",
    "re:^command -v ": "/usr/bin/found",
}

Report = dict[str, dict[str, Any]]


def op_names(report: Report, host: str) -> list[str]:
    """Names of the operations that ran on ``host`` in order, without the task file prefix."""
    return [op["name"].split(" | ", 1)[-1] for op in report[host]["ops"]]


def find_op(report: Report, host: str, name: str) -> dict[str, Any]:
    matches = [op for op in report[host]["ops"] if op["name"].endswith(name)]
    assert len(matches) == 1, f"{host}: expected one op named {name!r}, got {len(matches)}"
    return matches[0]


def _ls_mode(kind: str, mode: str) -> str:
    bits = "".join(
        ("r" if int(digit) & 4 else "-")
        + ("w" if int(digit) & 2 else "-")
        + ("x" if int(digit) & 1 else "-")
        for digit in mode.zfill(3)
    )
    return ("d" if kind == "directory" else "-") + bits


def converged_responses(report: Report, host: str) -> dict[str, Any]:
    """Fact answers of ``host`` after ``report``'s run: every uploaded file and created directory
    exists with its content, owner and mode; units run; the data volume is formatted and mounted;
    the venv holds the uploaded wheel."""
    owners: dict[str, str] = {}
    modes: dict[str, str] = {}
    directories: set[str] = set()
    for op in report[host]["ops"]:
        for command in op["commands"]:
            if match := re.fullmatch(r"chown (\S+):(\S+) (\S+)", command):
                owners[match[3]] = f"{match[1]}:{match[2]}"
            elif match := re.fullmatch(r"chmod (\d+) (\S+)", command):
                modes[match[2]] = match[1]
            elif match := re.fullmatch(r"mkdir -p (\S+)", command):
                directories.add(match[1])

    responses: dict[str, Any] = {}
    uploads: dict[str, str] = report[host]["uploads"]
    for path, kind in [*((d, "directory") for d in directories), *((f, "file") for f in uploads)]:
        user, group = owners.get(path, "root:root").split(":")
        mode = modes.get(path, "755" if kind == "directory" else "644")
        responses[f"test -L {path} )"] = (
            f"user={user} group={group} mode={_ls_mode(kind, mode)} "
            f"atime=0 mtime=0 ctime=0 size=1 '{path}'"
        )
    for path, content in uploads.items():
        responses[f"sha1sum {path} 2>"] = f"{hashlib.sha1(content.encode()).hexdigest()}  {path}"

    for op in report[host]["ops"]:
        for command in op["commands"]:
            if match := re.fullmatch(r"systemctl start (\S+)", command):
                unit = match[1]
                responses[f"--property SubState {unit}"] = [f"Id={unit}", "SubState=running"]
                responses[f"--property UnitFileState {unit}"] = [
                    f"Id={unit}",
                    "UnitFileState=enabled",
                ]
            elif match := re.fullmatch(r"echo (\w+) > (\S+)", command):
                responses[f"cat {match[2]}"] = match[1]
            elif match := re.fullmatch(r"mount -t (\S+) -o (\S+) (\S+) (\S+)", command):
                responses["cat /proc/self/mountinfo"] = (
                    f"36 25 259:1 / {match[4]} rw,{match[2]} shared:1 - {match[1]} {match[3]} rw"
                )
            elif "mkfs" in command:
                responses["blkid -o value -s TYPE"] = "ext4"
    return responses


@pytest.fixture(scope="session")
def fake_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for the orderflow wheel (the deploy only uploads it and hashes it)."""
    path = tmp_path_factory.mktemp("wheel") / WHEEL_NAME
    path.write_bytes(b"not really a wheel, only its checksum matters here\n")
    return path


@pytest.fixture(scope="session")
def fake_deploy(
    tmp_path_factory: pytest.TempPathFactory, fake_wheel: Path
) -> Callable[..., Report]:
    """``fake_deploy(responses=…, host_responses=…, data=…, outputs=…)`` → the run's report.

    ``responses`` are added to every host's answers (on top of a fresh Ubuntu's),
    ``host_responses`` to one host's; ``data`` overrides inventory data like ``pyinfra --data``.
    """
    cache: dict[str, Report] = {}

    def run(
        responses: dict[str, Any] | None = None,
        host_responses: dict[str, dict[str, Any]] | None = None,
        data: dict[str, Any] | None = None,
        outputs: Path = SAMPLE_OUTPUTS,
    ) -> Report:
        scenario = {
            "responses": {**UBUNTU_RESPONSES, **(responses or {})},
            "host_responses": host_responses or {},
            "data": {"orderflow_wheel": str(fake_wheel), **(data or {})},
        }
        key = json.dumps([scenario, str(outputs)], sort_keys=True)
        if key not in cache:
            path = tmp_path_factory.mktemp("scenario") / "scenario.json"
            path.write_text(json.dumps(scenario))
            result = subprocess.run(
                [sys.executable, str(FAKE_DEPLOY), str(path)],
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
                env={**os.environ, "ORDERFLOW_PULUMI_OUTPUTS": str(outputs)},
                cwd=REPO,
            )
            assert result.returncode == 0, result.stderr[-3000:]
            cache[key] = json.loads(result.stdout)
        return cache[key]

    return run


@pytest.fixture(scope="session")
def fresh_run(fake_deploy: Callable[..., Report]) -> Report:
    """The first deploy onto four fresh instances of the sample stack (3 brokers + 1 app host)."""
    return fake_deploy()
