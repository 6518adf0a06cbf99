"""deploy/cloud.sh with fake pulumi/aws/pyinfra on an isolated PATH: the order of the steps,
and the early one-line failures when a tool or credentials are missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "cloud.sh"
SAMPLE = ROOT / "deploy" / "stack-outputs.sample.json"
BASH = shutil.which("bash") or "/bin/bash"
SAMPLE_IDS = " ".join(h["instance_id"] for h in json.loads(SAMPLE.read_text())["hosts"])

FAKE_PULUMI = f"""#!{BASH}
echo "pulumi $*" >> "$FAKE_LOG"
case "$*" in
  *--show-name*) [[ -z "${{FAKE_NO_STACK:-}}" ]] && echo dev || exit 255 ;;
  *"config get sshPublicKey"*) [[ -z "${{FAKE_NO_KEY:-}}" ]] && echo "ssh-ed25519 A k" || exit 1 ;;
  *"config get kafkaClusterId"*)
    [[ -z "${{FAKE_NO_CLUSTER_ID:-}}" ]] && echo "ZljhLFr_RvuBvx_LI3XmUg" || exit 1 ;;
  *"output --json"*) cat "${{FAKE_OUTPUTS:-{SAMPLE}}}" ;;
esac
"""
FAKE_AWS = f"""#!{BASH}
echo "aws $*" >> "$FAKE_LOG"
[[ -z "${{FAKE_NO_CREDS:-}}" ]] || exit 255
case "$*" in
  *describe-instance-information*)
    if [[ -n "${{FAKE_SSM_DENIED:-}}" ]]; then
      echo "An error occurred (AccessDeniedException)" >&2; exit 254
    fi
    polls=$(( $(cat "$FAKE_LOG.polls" 2>/dev/null || echo 0) + 1 ))
    echo "$polls" > "$FAKE_LOG.polls"
    # Online from poll FAKE_SSM_AFTER on (default 1): the ids in FAKE_SSM_ONLINE, tab-separated.
    if (( polls >= ${{FAKE_SSM_AFTER:-1}} )); then
      online=(${{FAKE_SSM_ONLINE-{SAMPLE_IDS}}})
      (IFS=$'\\t'; echo "${{online[*]}}")
    fi ;;
esac
"""
FAKE_LOGGER = f"""#!{BASH}
echo "$(basename "$0") $* outputs=$(test -s "$ORDERFLOW_PULUMI_OUTPUTS" && echo yes)" >> "$FAKE_LOG"
"""


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Callable[..., subprocess.CompletedProcess[str]], Path, Path]:
    """Run cloud.sh with only the given fake tools on PATH; returns (run, log path)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "mv", "rm", "cat", "basename", "test", "tr", "sleep", "cut", "grep"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    (bin_dir / "python3").symlink_to(sys.executable)
    log = tmp_path / "log"
    outputs = tmp_path / "outputs.json"

    def run(
        *args: str,
        tools: tuple[str, ...] = ("pulumi", "aws", "session-manager-plugin", "pyinfra"),
        **env: str,
    ) -> subprocess.CompletedProcess[str]:
        fakes = {"pulumi": FAKE_PULUMI, "aws": FAKE_AWS}
        for tool in ("pulumi", "aws", "session-manager-plugin", "pyinfra"):
            path = bin_dir / tool
            path.unlink(missing_ok=True)
            if tool in tools:
                path.write_text(fakes.get(tool, FAKE_LOGGER))
                path.chmod(0o755)
        environment = {
            "PATH": str(bin_dir),
            "HOME": str(tmp_path),
            "FAKE_LOG": str(log),
            "ORDERFLOW_PULUMI_OUTPUTS": str(outputs),
            "ORDERFLOW_SSM_POLL": "0.1",
            **env,
        }
        return subprocess.run(
            [BASH, str(SCRIPT), *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    return run, log, outputs


def test_up_runs_pulumi_then_saves_outputs_then_pyinfra(sandbox) -> None:
    run, log, outputs = sandbox
    result = run("up")
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [
        "pulumi stack --show-name",
        "aws sts get-caller-identity",
        "pulumi config get sshPublicKey",
        "pulumi config get kafkaClusterId",
        "pulumi up --yes",
        "pulumi stack output --json",
        "aws ssm describe-instance-information --region eu-central-1 --filters "
        f"Key=InstanceIds,Values={SAMPLE_IDS.replace(' ', ',')} "
        "--query InstanceInformationList[?PingStatus==`Online`].InstanceId --output text",
        "pyinfra deploy/inventory.py deploy/deploy.py -y outputs=yes",
    ]
    assert outputs.read_text() == SAMPLE.read_text()
    assert "cloud: all 4 hosts are Online in SSM" in result.stdout


def test_first_up_generates_the_cluster_id_into_the_stack_config(sandbox) -> None:
    run, log, _ = sandbox
    result = run("up", FAKE_NO_CLUSTER_ID="1")
    assert result.returncode == 0, result.stderr
    (line,) = [c for c in log.read_text().splitlines() if "config set kafkaClusterId" in c]
    cluster_id = line.rsplit(" ", 1)[-1]
    assert len(cluster_id) == 22 and not cluster_id.startswith("-")
    calls = log.read_text().splitlines()
    assert calls.index(line) < calls.index("pulumi up --yes")
    assert f"generated kafkaClusterId {cluster_id}" in result.stdout


def test_pyinfra_waits_until_every_host_is_online_in_ssm(sandbox) -> None:
    run, log, _ = sandbox
    result = run("up", FAKE_SSM_AFTER="3")
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    polls = [i for i, c in enumerate(calls) if "describe-instance-information" in c]
    assert len(polls) == 3
    assert calls[-1].startswith("pyinfra ") and polls[-1] < len(calls) - 1


def test_hosts_never_online_stop_with_one_line_naming_them_and_no_pyinfra(sandbox) -> None:
    run, log, _ = sandbox
    some = " ".join(SAMPLE_IDS.split()[:2])  # kafka-1 and kafka-2 registered, the rest never
    result = run("deploy", FAKE_SSM_ONLINE=some, ORDERFLOW_SSM_WAIT="1")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "cloud: error: not Online in SSM after 1s: kafka-3=i-0a1b2c3d4e5f60003 "
        "app-1=i-0a1b2c3d4e5f60004 ("
    )
    assert result.stderr.count("\n") == 1
    assert "pyinfra" not in log.read_text()


def test_down_destroys_and_removes_saved_outputs(sandbox) -> None:
    run, log, outputs = sandbox
    outputs.write_text("{}")
    result = run("down", "--yes", tools=("pulumi", "aws"))
    assert result.returncode == 0, result.stderr
    assert "pulumi destroy --yes" in log.read_text().splitlines()
    assert not outputs.exists()


def test_stack_from_environment_is_passed_to_every_pulumi_call(sandbox) -> None:
    run, log, _ = sandbox
    assert run("up", PULUMI_STACK="prod").returncode == 0
    pulumi_calls = [line for line in log.read_text().splitlines() if line.startswith("pulumi ")]
    assert pulumi_calls and all("--stack prod" in line for line in pulumi_calls)


@pytest.mark.parametrize(
    ("command", "tools", "env", "message"),
    [
        ("up", ("aws", "pyinfra"), {}, "the pulumi CLI is not installed"),
        ("down", ("aws",), {}, "the pulumi CLI is not installed"),
        ("up", ("pulumi", "aws"), {"FAKE_NO_STACK": "1"}, "no Pulumi stack selected"),
        ("up", ("pulumi", "aws"), {"FAKE_NO_CREDS": "1"}, "no usable AWS credentials"),
        ("down", ("pulumi", "aws"), {"FAKE_NO_CREDS": "1"}, "no usable AWS credentials"),
        ("down", ("pulumi",), {}, "no AWS credentials: set AWS_PROFILE"),
        ("up", ("pulumi",), {"AWS_PROFILE": "x"}, "the aws CLI is not installed"),
        (
            "up",
            ("pulumi", "aws", "pyinfra"),
            {},
            "the AWS Session Manager plugin is not installed",
        ),
        ("up", ("pulumi", "aws", "session-manager-plugin"), {}, "pyinfra not found"),
        (
            "up",
            ("pulumi", "aws", "session-manager-plugin", "pyinfra"),
            {"FAKE_NO_KEY": "1"},
            "sshPublicKey is not set",
        ),
    ],
)
def test_missing_prerequisites_fail_early_with_one_line(
    sandbox, command: str, tools: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    run, log, outputs = sandbox
    result = run(command, tools=tools, **env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"cloud: error: {message}")
    assert result.stderr.count("\n") == 1
    calls = log.read_text() if log.exists() else ""
    assert "pulumi up" not in calls and "pulumi destroy" not in calls
    assert not outputs.exists()


def test_down_without_aws_cli_accepts_a_profile(sandbox) -> None:
    run, log, _ = sandbox
    result = run("down", "--yes", tools=("pulumi",), AWS_PROFILE="ops")
    assert result.returncode == 0, result.stderr
    assert "pulumi destroy --yes" in log.read_text()


def test_unknown_command_prints_usage(sandbox) -> None:
    run, _, _ = sandbox
    result = run("sideways")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: deploy/cloud.sh up|deploy|down")


def test_script_is_executable() -> None:
    assert os.access(SCRIPT, os.X_OK)


def test_a_failing_ssm_query_is_named_in_the_timeout_line(sandbox) -> None:
    run, log, _ = sandbox
    result = run("deploy", FAKE_SSM_DENIED="1", ORDERFLOW_SSM_WAIT="0")
    assert result.returncode == 1
    assert result.stderr.startswith("cloud: error: not Online in SSM after 0s: kafka-1=")
    assert result.stderr.rstrip().endswith(
        "; last aws error: An error occurred (AccessDeniedException)"
    )
    assert result.stderr.count("\n") == 1
    assert "pyinfra" not in log.read_text()


def test_outputs_holding_a_secret_are_refused_and_never_saved(sandbox, tmp_path) -> None:
    run, log, outputs = sandbox
    leaked = json.loads(SAMPLE.read_text())
    leaked["kafka_secret_arns"]["main"] = "[secret]"  # what `pulumi stack output` prints
    fake = tmp_path / "leaked.json"
    fake.write_text(json.dumps(leaked, indent=2))
    result = run("deploy", FAKE_OUTPUTS=str(fake))
    assert result.returncode == 1
    assert result.stderr.startswith("cloud: error: a stack output is a secret")
    assert result.stderr.count("\n") == 1
    assert not outputs.exists() and not Path(f"{outputs}.tmp").exists()
    assert "pyinfra" not in log.read_text()


def test_outputs_are_saved_without_secret_values(sandbox) -> None:
    run, log, outputs = sandbox
    assert run("up").returncode == 0
    assert not [c for c in log.read_text().splitlines() if "--show-secrets" in c]
    saved = json.loads(outputs.read_text())
    assert set(saved["kafka_secret_arns"]) >= {"broker", "main", "ca-key"}
    assert all(a.startswith("arn:aws:secretsmanager:") for a in saved["kafka_secret_arns"].values())
