"""deploy/deploy.py run for real against @fake hosts: 3 brokers + 1 app host of the sample stack.

The second-run scenarios answer the facts with the state the first run left behind, to prove
that services restart only when what they run changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import (
    REPO,
    SAMPLE_OUTPUTS,
    Report,
    converged_responses,
    find_op,
    op_names,
)

KAFKA_HOSTS = ("kafka-1", "kafka-2", "kafka-3")
APP_RESTARTS = (
    "Restart the processors (code, settings or unit changed)",
    "Restart the dashboard (code, settings or unit changed)",
)


def executed(report: Report, host: str, name: str) -> bool:
    return find_op(report, host, name)["changed"] is True


def uploads(report: Report, host: str) -> list[str]:
    return [
        command
        for op in report[host]["ops"]
        for command in op["commands"]
        if command.startswith("FileUploadCommand(")
    ]


def test_hosts_get_only_their_roles(fresh_run: Report) -> None:
    for host in KAFKA_HOSTS:
        names = op_names(fresh_run, host)
        assert (
            "Start the Kafka node (recreated only when its compose file or settings changed)"
            in (names)
        )
        assert not any("orderflow" in name and "unit" in name for name in names)
        assert "kafka" in fresh_run[host]["groups"]
    names = op_names(fresh_run, "app-1")
    assert "Install the orderflow-main@.service unit" in names
    assert not any("Kafka" in name for name in names)
    for host in (*KAFKA_HOSTS, "app-1"):
        assert op_names(fresh_run, host)[:5] == [
            "Wait for cloud-init to finish",
            "Make apt wait for the dpkg lock",
            "Install base packages",
            "Create the orderflow system group",
            "Create the orderflow system user",
        ]
        assert "Install Docker engine and compose plugin" in op_names(fresh_run, host)


def test_every_operation_is_named_and_runs_with_sudo(fresh_run: Report) -> None:
    for host, result in fresh_run.items():
        for op in result["ops"]:
            label = op["name"].split(" | ", 1)[-1]
            # An unnamed pyinfra operation is labelled with its function, e.g. "files.put".
            assert " " in label and not label.startswith(("files.", "server.", "apt.")), label
            assert op["sudo"] is True, (host, label)


def test_docker_comes_from_ubuntu_packages(fresh_run: Report) -> None:
    op = find_op(fresh_run, "kafka-1", "Install Docker engine and compose plugin")
    assert op["commands"][-1].endswith("install docker.io docker-compose-v2")


def test_kafka_volume_is_formatted_only_when_blank_and_mounted(fresh_run: Report) -> None:
    for number, host in enumerate(KAFKA_HOSTS, start=1):
        device = f"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0a1b2c3d4e5f6000{number}"
        fmt = find_op(fresh_run, host, "Format the Kafka data volume")
        assert f"blkid {device} || mkfs.ext4 -q -L kafka-data {device}" in fmt["commands"]
        fstab = find_op(fresh_run, host, "Mount the Kafka data volume at boot")["commands"]
        assert fstab == [
            f"echo '{device} /var/lib/kafka ext4 defaults,noatime,nofail 0 2' >> /etc/fstab"
        ]
        mount = find_op(fresh_run, host, "Mount the Kafka data volume")["commands"]
        assert mount == [f"mount -t ext4 -o noatime {device} /var/lib/kafka"]
        data_dir = find_op(fresh_run, host, "Create the Kafka data directory on the volume")
        assert "chown 1000:1000 /var/lib/kafka/data" in data_dir["commands"]
        names = op_names(fresh_run, host)
        assert names.index("Mount the Kafka data volume") < names.index(
            "Create the Kafka data directory on the volume"
        )


def test_kafka_starts_with_compose(fresh_run: Report) -> None:
    for host in KAFKA_HOSTS:
        start = find_op(
            fresh_run,
            host,
            "Start the Kafka node (recreated only when its compose file or settings changed)",
        )
        assert start["commands"] == [
            "docker compose --project-directory /opt/kafka --project-name orderflow-kafka "
            "up -d --remove-orphans"
        ]
        env = find_op(fresh_run, host, "Render this node's Kafka settings")
        assert "chmod 600 /opt/kafka/.env" in env["commands"]


def test_every_host_waits_for_every_broker_after_all_kafka_work(fresh_run: Report) -> None:
    waits = {
        host: find_op(fresh_run, host, "Wait until every broker serves clients")
        for host in fresh_run
    }
    assert len({op["position"] for op in waits.values()}) == 1, "one operation on all hosts"
    for op in waits.values():
        assert [command.split("/dev/tcp/")[1].split(")")[0] for command in op["commands"]] == [
            "10.42.128.11/9092",
            "10.42.129.12/9092",
            "10.42.130.13/9092",
        ]
    barrier = waits["app-1"]["position"]
    for host in KAFKA_HOSTS:
        assert all(
            op["position"] < barrier for op in fresh_run[host]["ops"] if "kafka.py" in op["name"]
        )
    assert all(
        op["position"] > barrier
        for op in fresh_run["app-1"]["ops"]
        if "app.py" in op["name"] or "console.py" in op["name"]
    )


def test_app_installs_the_uploaded_wheel_into_the_venv(fresh_run: Report, fake_wheel: Any) -> None:
    wheel = "/opt/orderflow/dist/orderflow-0.1.0-py3-none-any.whl"
    upload = find_op(fresh_run, "app-1", "Upload the orderflow wheel")
    assert f"FileUploadCommand({fake_wheel}, {wheel})" in upload["commands"]
    lock = REPO / "deploy" / "requirements.lock"
    assert fresh_run["app-1"]["uploads"]["/opt/orderflow/dist/requirements.lock"] == (
        lock.read_text()
    )
    install = find_op(fresh_run, "app-1", "Install orderflow into the virtualenv")["commands"]
    wheel_digest = hashlib.sha256(fake_wheel.read_bytes()).hexdigest()
    digest = hashlib.sha256(wheel_digest.encode() + lock.read_bytes()).hexdigest()
    assert install == [
        "/opt/orderflow/venv/bin/pip install --quiet --no-cache-dir --require-hashes "
        "-r /opt/orderflow/dist/requirements.lock",
        f"/opt/orderflow/venv/bin/pip install --quiet --no-cache-dir --no-deps --force-reinstall "
        f"{wheel}",
        f"echo {digest} > /opt/orderflow/venv/.orderflow-wheel.sha256",
    ]
    assert find_op(fresh_run, "app-1", "Create the orderflow virtualenv")["commands"] == [
        "python3 -m venv /opt/orderflow/venv"
    ]


def test_app_services_are_enabled_and_started(fresh_run: Report) -> None:
    for unit in ("orderflow-main@1", "orderflow-retry@1", "orderflow-dashboard"):
        op = find_op(fresh_run, "app-1", f"Run {unit}.service at boot")
        assert op["commands"] == [
            f"systemctl start {unit}.service",
            f"systemctl enable {unit}.service",
        ]
    assert executed(fresh_run, "app-1", "Reload systemd units")


def test_no_service_runs_as_root(fresh_run: Report) -> None:
    for path, content in fresh_run["app-1"]["uploads"].items():
        if path.endswith(".service"):
            user = "orderflow-dashboard" if "dashboard" in path else "orderflow"
            assert f"\nUser={user}\n" in content, path
            assert "User=root" not in content, path
    user = find_op(fresh_run, "app-1", "Create the orderflow system user")["commands"][0]
    assert user == "useradd -d /var/lib/orderflow -s /usr/sbin/nologin -g orderflow -r -M orderflow"


def test_console_runs_from_its_compose_project(fresh_run: Report) -> None:
    start = find_op(
        fresh_run,
        "app-1",
        "Start Redpanda Console (recreated only when its compose file or settings changed)",
    )
    assert start["commands"] == [
        "docker compose --project-directory /opt/redpanda-console "
        "--project-name orderflow-console up -d --remove-orphans"
    ]


def test_more_instances_are_a_group_data_change(fake_deploy: Callable[..., Report]) -> None:
    report = fake_deploy(data={"orderflow_main_instances": 2, "orderflow_retry_instances": 3})
    names = op_names(report, "app-1")
    for unit in ("main@1", "main@2", "retry@1", "retry@2", "retry@3"):
        assert f"Run orderflow-{unit}.service at boot" in names
    assert "Run orderflow-main@3.service at boot" not in names


# --- second runs ----------------------------------------------------------------------------


def second_run(
    fake_deploy: Callable[..., Report],
    fresh_run: Report,
    changes: dict[str, dict[str, Any]] | None = None,
) -> Report:
    """Deploy again onto hosts in the state ``fresh_run`` left, with ``changes[host]`` answering
    some facts differently (same matchers as ``converged_responses``)."""
    changes = changes or {}
    return fake_deploy(
        host_responses={
            host: {**converged_responses(fresh_run, host), **changes.get(host, {})}
            for host in fresh_run
        }
    )


def sha1_answer(path: str, content: str) -> dict[str, str]:
    return {f"sha1sum {path} 2>": f"{hashlib.sha1(content.encode()).hexdigest()}  {path}"}


@pytest.fixture(scope="module")
def unchanged_run(fake_deploy: Callable[..., Report], fresh_run: Report) -> Report:
    return second_run(fake_deploy, fresh_run)


def test_second_run_changes_nothing_and_restarts_nothing(unchanged_run: Report) -> None:
    for host in (*KAFKA_HOSTS, "app-1"):
        assert uploads(unchanged_run, host) == [], host
        names = op_names(unchanged_run, host)
        assert "Format the Kafka data volume" not in names
        commands = unchanged_run[host]["commands"]
        assert not any(command.startswith(("mount ", "systemctl start")) for command in commands)
    assert "Install orderflow into the virtualenv" not in op_names(unchanged_run, "app-1")
    for name in ("Reload systemd units", *APP_RESTARTS):
        assert not executed(unchanged_run, "app-1", name), name
    assert not executed(unchanged_run, "kafka-1", "Reload chrony's time sources")


def test_second_run_still_lets_compose_reconcile_kafka(unchanged_run: Report) -> None:
    # Compose itself recreates a container only if its configuration changed, and starts it
    # if it is down, so the command runs every time (it is how a crashed node comes back).
    assert executed(
        unchanged_run,
        "kafka-2",
        "Start the Kafka node (recreated only when its compose file or settings changed)",
    )


def test_changed_settings_restart_processors_and_dashboard_only(
    fake_deploy: Callable[..., Report], fresh_run: Report
) -> None:
    report = second_run(
        fake_deploy,
        fresh_run,
        {"app-1": sha1_answer("/etc/orderflow/orderflow.env", "ORDERFLOW_PARTITIONS=6\n")},
    )
    changed = uploads(report, "app-1")
    assert len(changed) == 1 and "/etc/orderflow/orderflow.env" in changed[0]
    for name in APP_RESTARTS:
        assert executed(report, "app-1", name), name
    assert not executed(report, "app-1", "Reload systemd units")
    assert "Install orderflow into the virtualenv" not in op_names(report, "app-1")


def test_changed_processor_unit_reloads_systemd_and_restarts_processors_only(
    fake_deploy: Callable[..., Report], fresh_run: Report
) -> None:
    unit = "/etc/systemd/system/orderflow-main@.service"
    report = second_run(fake_deploy, fresh_run, {"app-1": sha1_answer(unit, "[Service]\n")})
    assert len(uploads(report, "app-1")) == 1 and unit in uploads(report, "app-1")[0]
    assert executed(report, "app-1", "Reload systemd units")
    assert executed(report, "app-1", APP_RESTARTS[0])
    assert not executed(report, "app-1", APP_RESTARTS[1])


def test_new_code_is_installed_and_restarts_everything(
    fake_deploy: Callable[..., Report], fresh_run: Report
) -> None:
    marker = "cat /opt/orderflow/venv/.orderflow-wheel.sha256"
    report = second_run(fake_deploy, fresh_run, {"app-1": {marker: "0" * 64}})
    assert "Install orderflow into the virtualenv" in op_names(report, "app-1")
    for name in APP_RESTARTS:
        assert executed(report, "app-1", name), name
    assert not executed(report, "app-1", "Reload systemd units")


def test_changed_kafka_settings_upload_only_that_nodes_env(
    fake_deploy: Callable[..., Report], fresh_run: Report
) -> None:
    report = second_run(
        fake_deploy, fresh_run, {"kafka-2": sha1_answer("/opt/kafka/.env", "NODE_ID=9\n")}
    )
    assert (
        len(uploads(report, "kafka-2")) == 1 and "/opt/kafka/.env" in uploads(report, "kafka-2")[0]
    )
    assert uploads(report, "kafka-1") == uploads(report, "kafka-3") == []


# --- other stack shapes ---------------------------------------------------------------------


def stack(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    outputs = json.loads(SAMPLE_OUTPUTS.read_text())
    change(outputs)
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return path


def test_public_ui_binds_the_private_ip_behind_a_generated_password(
    fake_deploy: Callable[..., Report], tmp_path: Path
) -> None:
    def open_ui(outputs: dict[str, Any]) -> None:
        outputs["hosts"][3]["public_ip"] = "203.0.113.4"
        outputs["dashboard_url"] = "http://203.0.113.4:8501"
        outputs["console_url"] = "http://203.0.113.4:8080"

    report = fake_deploy(outputs=stack(tmp_path, open_ui))
    unit = report["app-1"]["uploads"]["/etc/systemd/system/orderflow-dashboard.service"]
    assert (
        "ExecStart=/opt/orderflow/venv/bin/orderflow dashboard --address 10.42.128.21 --port 8501 "
        "--secrets /etc/orderflow/dashboard-secrets.toml\n"
    ) in unit
    password = find_op(report, "app-1", "Generate the dashboard password")["commands"]
    assert "$(openssl rand -hex 16)" in password[0] and password[0].startswith("umask 027 && ")
    # Readable by the dashboard's own user, not by the processors'.
    assert password[1] == "chown root:orderflow-dashboard /etc/orderflow/dashboard-secrets.toml"
    console = report["app-1"]["uploads"]["/opt/redpanda-console/.env"]
    assert "BIND_ADDRESS=10.42.128.21\n" in console


def test_second_app_host_runs_processors_but_no_ui(
    fake_deploy: Callable[..., Report], tmp_path: Path
) -> None:
    def two_apps(outputs: dict[str, Any]) -> None:
        second = {**outputs["hosts"][3], "name": "app-2", "instance_id": "i-0a1b2c3d4e5f60005"}
        outputs["hosts"].append({**second, "private_ip": "10.42.129.22", "az": "eu-central-1b"})

    report = fake_deploy(outputs=stack(tmp_path, two_apps))
    assert "Run orderflow-dashboard.service at boot" in op_names(report, "app-1")
    names = op_names(report, "app-2")
    assert "Run orderflow-main@1.service at boot" in names
    assert "Run orderflow-dashboard.service at boot" not in names
    assert not any("Redpanda" in name for name in names)
    topics = "Create the orderflow topics (once, from one app host)"
    # _run_once: pyinfra gives the operation to the first host that reaches it, only.
    ran = [host for host in ("app-1", "app-2") if topics in op_names(report, host)]
    assert len(ran) == 1
