"""First boot, boot order and rolling restarts, from the real deploy on @fake hosts; the shell
snippets the deploy generates are then run for real in bash against scripted stand-ins for
cloud-init and docker (the real-host proof needs the real-host harness, see docs/cloud.md)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from pyinfra.api.exceptions import DeployError

from deploy.tasks.compose import pinned_image
from tests.deploy.conftest import Report, converged_responses, find_op, op_names

KAFKA_HOSTS = ("kafka-1", "kafka-2", "kafka-3")
START_KAFKA = "Start the Kafka node (recreated only when its compose file or settings changed)"
RESTART_KAFKA = "Restart the Kafka node one host at a time (its compose file or settings changed)"
RUNNING = {"docker ps -q --filter label=com.docker.compose.project=orderflow-kafka": "3f2a9c1b"}


def sha1_answer_for(path: str, content: str) -> dict[str, str]:
    """The fact answer saying ``path`` on the host holds ``content``."""
    digest = hashlib.sha1(content.encode()).hexdigest()
    return {f"sha1sum {path} 2>": f"{digest}  {path}"}


def run_snippet(command: str, tmp_path: Path, tools: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a generated command in bash with ``tools`` (name → bash body) first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in tools.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STATE": str(tmp_path)}
    return subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_every_host_first_waits_for_cloud_init_then_makes_apt_wait_for_its_lock(
    fresh_run: Report,
) -> None:
    for host in (*KAFKA_HOSTS, "app-1"):
        names = op_names(fresh_run, host)
        assert names[:3] == [
            "Wait for cloud-init to finish",
            "Make apt wait for the dpkg lock",
            "Install base packages",
        ]
        assert fresh_run[host]["uploads"]["/etc/apt/apt.conf.d/90orderflow-lock-timeout"] == (
            'DPkg::Lock::Timeout "600";\n'
        )


@pytest.mark.parametrize(
    ("cloud_init", "ok"),
    [
        ("exit 0", True),
        ("exit 2", True),  # finished with recoverable errors: the host is usable
        ("exit 1", False),
        ("sleep 30", False),  # still running when the bound (1 s here) is reached
        (None, True),  # no cloud-init at all (containers, the real-host harness)
    ],
)
def test_the_cloud_init_wait_is_bounded_and_accepts_only_a_finished_boot(
    fake_deploy, tmp_path: Path, cloud_init: str | None, ok: bool
) -> None:
    report = fake_deploy(data={"cloud_init_timeout": 1})
    (command,) = find_op(report, "app-1", "Wait for cloud-init to finish")["commands"]
    tools = {"cloud-init": cloud_init} if cloud_init else {}
    if cloud_init is None:
        # Hide any real cloud-init of this machine behind a "command -v" that finds nothing.
        command = command.replace("command -v cloud-init", "command -v cloud-init-absent")
    result = run_snippet(command, tmp_path, tools)
    assert (result.returncode == 0) is ok, result.stderr
    if not ok:
        assert result.stderr.strip().startswith("cloud-init status --wait failed or timed out")


def test_docker_requires_the_data_mount_before_any_broker_starts(fresh_run: Report) -> None:
    for host in KAFKA_HOSTS:
        dropin = "/etc/systemd/system/docker.service.d/10-orderflow-kafka-data.conf"
        assert fresh_run[host]["uploads"][dropin] == "[Unit]\nRequiresMountsFor=/var/lib/kafka\n"
        names = op_names(fresh_run, host)
        order = [
            "Mount the Kafka data volume at boot",
            "Make Docker require the Kafka data volume's mount",
            "Reload systemd for Docker's mount requirement",
            START_KAFKA,
        ]
        assert [names.index(n) for n in order] == sorted(names.index(n) for n in order)
    assert "docker.service.d" not in str(fresh_run["app-1"]["uploads"])


def test_a_first_start_starts_every_broker_at_once_without_waiting(fresh_run: Report) -> None:
    # A lone broker cannot serve before a quorum of controllers exists: no waits, no serial.
    for host in KAFKA_HOSTS:
        assert RESTART_KAFKA not in op_names(fresh_run, host)
        start = find_op(fresh_run, host, START_KAFKA)
        assert start["serial"] is False
        assert start["commands"] == [
            "docker compose --project-directory /opt/kafka --project-name orderflow-kafka "
            "up -d --remove-orphans"
        ]


def converged(fresh_run: Report, changes: dict[str, dict[str, str]] | None = None) -> dict:
    """Host answers for a second deploy onto running brokers in the state ``fresh_run`` left."""
    changes = changes or {}
    return {
        host: {**RUNNING, **converged_responses(fresh_run, host), **changes.get(host, {})}
        for host in fresh_run
    }


def test_changed_settings_restart_running_brokers_one_at_a_time_each_waiting_in_sync(
    fake_deploy, fresh_run: Report
) -> None:
    # A new image for every broker: each .env differs from what the first run left.
    report = fake_deploy(
        host_responses=converged(fresh_run), data={"kafka_image": "apache/kafka:4.1.2"}
    )
    positions = set()
    for host in KAFKA_HOSTS:
        restart = find_op(report, host, RESTART_KAFKA)
        positions.add(restart["position"])
        assert restart["serial"] is True, "pyinfra runs a _serial op on one host after another"
        assert restart["changed"] is True
        before, up, after = restart["commands"]
        assert before == after and up.endswith("up -d --remove-orphans")
        ip = {"kafka-1": "10.42.128.11", "kafka-2": "10.42.129.12", "kafka-3": "10.42.130.13"}[host]
        assert f"--bootstrap-server {ip}:9092 --describe --under-replicated-partitions" in after
        assert "--unavailable-partitions" in after
        assert after.startswith("timeout 900 ")
        names = op_names(report, host)
        assert names.index(RESTART_KAFKA) < names.index(START_KAFKA)
    assert len(positions) == 1  # one operation: a host does wait + up + wait before the next


def test_unchanged_brokers_are_not_restarted_and_nothing_waits(
    fake_deploy, fresh_run: Report
) -> None:
    changes = {"kafka-2": sha1_answer_for("/opt/kafka/.env", "NODE_ID=9\n")}
    report = fake_deploy(host_responses=converged(fresh_run, changes))
    assert find_op(report, "kafka-2", RESTART_KAFKA)["commands"]  # its .env changed
    for host in ("kafka-1", "kafka-3"):
        restart = find_op(report, host, RESTART_KAFKA)
        assert restart["commands"] == [] and not restart["changed"], host


def test_a_new_broker_starts_before_the_running_ones_roll(fake_deploy, fresh_run: Report) -> None:
    # kafka-3 was replaced (a fresh instance, nothing running); kafka-1 and kafka-2 run and get
    # new settings. kafka-3 must start first, or their in-sync waits could never pass.
    hosts = converged(fresh_run)
    hosts["kafka-3"] = {}
    report = fake_deploy(host_responses=hosts, data={"kafka_image": "apache/kafka:4.1.2"})
    new_start = find_op(report, "kafka-3", START_KAFKA)
    assert RESTART_KAFKA not in op_names(report, "kafka-3")
    for host in ("kafka-1", "kafka-2"):
        assert new_start["position"] < find_op(report, host, RESTART_KAFKA)["position"]


FAKE_DOCKER = """
# The count is replaced, not rewritten in place: `timeout` may kill this script at any point,
# and a file truncated by `>` but not yet written would read as empty.
calls=$(( $(cat "$STATE/calls" 2>/dev/null || echo 0) + 1 ))
echo "$calls" > "$STATE/calls.$$" && mv "$STATE/calls.$$" "$STATE/calls"
case "$*" in
  *--under-replicated-partitions*)
    # Call 1: the broker is still starting (connection refused); then URPs until call N.
    [ "$calls" -eq 1 ] && exit 1
    [ "$calls" -lt "${URP_UNTIL:-0}" ] && echo "Topic: orders.v1 Partition: 0 Isr: 1,3"
    exit 0 ;;
  *--unavailable-partitions*) exit 0 ;;
esac
"""


@pytest.mark.parametrize(("urp_until", "ok"), [(6, True), (10_000, False)])
def test_the_rolling_wait_passes_only_once_the_broker_serves_with_nothing_under_replicated(
    fake_deploy, tmp_path: Path, urp_until: int, ok: bool
) -> None:
    report = fake_deploy(
        responses=RUNNING, data={"kafka_rolling_timeout": 3, "kafka_rolling_poll": 0.05}
    )
    wait, _, _ = find_op(report, "kafka-2", RESTART_KAFKA)["commands"]
    result = run_snippet(
        f"URP_UNTIL={urp_until}; export URP_UNTIL; {wait}", tmp_path, {"docker": FAKE_DOCKER}
    )
    assert (result.returncode == 0) is ok, result.stderr
    if ok:
        # refused, then URPs (calls 2..5 answered), then in sync: URP check + unavailable check.
        assert int((tmp_path / "calls").read_text()) >= 7
    else:
        assert result.returncode == 124  # timeout's exit status: the deploy stops here


DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_images_run_by_digest_when_one_is_pinned_next_to_the_tag(fake_deploy) -> None:
    report = fake_deploy(data={"kafka_image_digest": DIGEST, "console_image_digest": DIGEST})
    env = report["kafka-1"]["uploads"]["/opt/kafka/.env"]
    assert f"KAFKA_IMAGE=apache/kafka:4.1.1@{DIGEST}\n" in env
    console = report["app-1"]["uploads"]["/opt/redpanda-console/.env"]
    assert f"docker.redpanda.com/redpandadata/console:v3.7.3@{DIGEST}" in console


def test_without_a_digest_the_tag_alone_is_used(fresh_run: Report) -> None:
    assert "KAFKA_IMAGE=apache/kafka:4.1.1\n" in fresh_run["kafka-1"]["uploads"]["/opt/kafka/.env"]


@pytest.mark.parametrize(
    ("image", "digest", "message"),
    [
        ("apache/kafka:4.1.1", "sha256:abc", "is not a digest like sha256:<64 hex digits>"),
        ("apache/kafka:4.1.1", "md5:" + "0" * 32, "is not a digest"),
        ("apache/kafka:4.1.1", DIGEST.upper(), "is not a digest"),
        (f"apache/kafka:4.1.1@{DIGEST}", DIGEST, "already has a digest"),
    ],
)
def test_malformed_digests_stop_the_deploy_with_the_reason(image, digest, message) -> None:
    with pytest.raises(DeployError, match=message):
        pinned_image(image, digest, "kafka_image_digest")


@pytest.mark.parametrize(
    "responses",
    [
        {
            "/var/lib/cloud/instance/boot-finished": "user=root group=root mode=-rw-r--r-- atime=0 "
            "mtime=0 ctime=0 size=1 '/var/lib/cloud/instance/boot-finished'"
        },  # a later deploy
        {"command -v cloud-init": ""},  # no cloud-init: the real-host harness, containers
    ],
)
def test_a_finished_or_absent_cloud_init_is_not_waited_for(fake_deploy, responses) -> None:
    hosts = (*KAFKA_HOSTS, "app-1")
    # A host's own answers win over the fresh Ubuntu's ("command -v" finds everything there).
    report = fake_deploy(host_responses={host: responses for host in hosts})
    for host in hosts:
        assert "Wait for cloud-init to finish" not in op_names(report, host)
