"""deploy/inventory.py: host groups and data from the Pulumi outputs contract."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api.exceptions import InventoryError

from tests.deploy.conftest import REPO, SAMPLE_OUTPUTS

INVENTORY = REPO / "deploy" / "inventory.py"
PYINFRA = Path(sys.executable).with_name("pyinfra")


@pytest.fixture
def inventory_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    # The inventory pins AWS_REGION for the SSM ProxyCommand; monkeypatch restores it afterwards.
    monkeypatch.setenv("AWS_REGION", "unset-by-test")
    for name in ("ORDERFLOW_SSH_VIA", "ORDERFLOW_SSH_USER", "ORDERFLOW_SSH_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def load(monkeypatch: pytest.MonkeyPatch, outputs: Path) -> dict[str, Any]:
    """Execute the inventory like pyinfra does and return its module namespace."""
    monkeypatch.setenv("ORDERFLOW_PULUMI_OUTPUTS", str(outputs))
    return runpy.run_path(str(INVENTORY))


def sample() -> dict[str, Any]:
    return json.loads(SAMPLE_OUTPUTS.read_text())


def write(tmp_path: Path, outputs: dict[str, Any]) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return path


def hosts_of(group: tuple[list[tuple[str, dict]], dict]) -> dict[str, dict]:
    return dict(group[0])


def test_sample_gives_kafka_and_app_groups_with_host_data(
    inventory_env: pytest.MonkeyPatch,
) -> None:
    namespace = load(inventory_env, SAMPLE_OUTPUTS)
    kafka, app = hosts_of(namespace["kafka"]), hosts_of(namespace["app"])
    outputs = sample()

    assert list(kafka) == ["kafka-1", "kafka-2", "kafka-3"]
    assert list(app) == ["app-1"]
    for entry in outputs["hosts"]:
        data = (kafka if entry["role"] == "kafka" else app)[entry["name"]]
        assert data["private_ip"] == entry["private_ip"]
        assert data["instance_id"] == entry["instance_id"]
        assert data["az"] == entry["az"]
        # SSM by default: the SSH "host name" is the instance id, tunnelled by the ProxyCommand.
        assert data["ssh_hostname"] == entry["instance_id"]
        assert data["ssh_user"] == "ubuntu"
        assert "ssh_key" not in data
        if entry["role"] == "kafka":
            assert data["kafka_node_id"] == entry["node_id"]
            assert data["kafka_data_volume_id"] == entry["data_volume_id"]
    assert os.environ["AWS_REGION"] == outputs["region"]


def test_ssm_ssh_config_tunnels_instance_ids_through_session_manager(
    inventory_env: pytest.MonkeyPatch,
) -> None:
    data = hosts_of(load(inventory_env, SAMPLE_OUTPUTS)["kafka"])["kafka-1"]
    config = Path(data["ssh_config_file"]).read_text()
    assert "Host i-* mi-*" in config
    assert (
        "ProxyCommand aws ssm start-session --target %h "
        "--document-name AWS-StartSSHSession --parameters portNumber=%p"
    ) in config


def test_cluster_data_of_three_brokers(inventory_env: pytest.MonkeyPatch) -> None:
    namespace = load(inventory_env, SAMPLE_OUTPUTS)
    for group in ("kafka", "app"):
        data = namespace[group][1]
        assert data["bootstrap_servers"] == sample()["bootstrap_servers"]
        assert data["kafka_broker_count"] == 3
        assert data["kafka_replication_factor"] == 3
        assert data["kafka_min_isr"] == 2
        assert [broker["node_id"] for broker in data["kafka_hosts"]] == [1, 2, 3]
        # The sample keeps both UIs private (localhost URLs after port forwarding).
        assert data["dashboard_public"] is False and data["console_public"] is False
    assert hosts_of(namespace["app"])["app-1"]["ui_host"] is True


def test_single_broker_gets_replication_factor_one(
    inventory_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outputs = sample()
    outputs["hosts"] = [h for h in outputs["hosts"] if h["name"] in ("kafka-1", "app-1")]
    outputs["bootstrap_servers"] = "10.42.128.11:9092"
    namespace = load(inventory_env, write(tmp_path, outputs))
    data = namespace["kafka"][1]
    assert (data["kafka_replication_factor"], data["kafka_min_isr"]) == (1, 1)
    assert data["kafka_hosts"] == [{"node_id": 1, "private_ip": "10.42.128.11"}]


def test_public_mode_connects_directly_to_the_ui_host_and_through_ssm_to_the_rest(
    inventory_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outputs = sample()
    outputs["hosts"][3]["public_ip"] = "203.0.113.4"  # app-1 with sshEnabled: its Elastic IP
    inventory_env.setenv("ORDERFLOW_SSH_VIA", "public")
    inventory_env.setenv("ORDERFLOW_SSH_USER", "admin")
    inventory_env.setenv("ORDERFLOW_SSH_KEY", "~/.ssh/orderflow")
    namespace = load(inventory_env, write(tmp_path, outputs))
    app = hosts_of(namespace["app"])["app-1"]
    assert app["ssh_hostname"] == "203.0.113.4"
    assert (app["ssh_user"], app["ssh_key"]) == ("admin", "~/.ssh/orderflow")
    assert "ssh_config_file" not in app
    # Brokers have no public IP and no port 22 open: they fall back to SSH over SSM.
    for name, broker in hosts_of(namespace["kafka"]).items():
        entry = next(h for h in outputs["hosts"] if h["name"] == name)
        assert broker["ssh_hostname"] == entry["instance_id"]
        assert broker["ssh_config_file"].endswith("deploy/files/ssm-ssh-config")
        assert (broker["ssh_user"], broker["ssh_key"]) == ("admin", "~/.ssh/orderflow")
    assert os.environ["AWS_REGION"] == outputs["region"]  # for those SSM ProxyCommands


def test_public_mode_without_any_public_ip_says_what_to_set(
    inventory_env: pytest.MonkeyPatch,
) -> None:
    inventory_env.setenv("ORDERFLOW_SSH_VIA", "public")
    with pytest.raises(InventoryError, match=r"no host has a public IP: set sshEnabled"):
        load(inventory_env, SAMPLE_OUTPUTS)


def test_every_host_retries_its_connection_while_ssm_and_sshd_come_up(
    inventory_env: pytest.MonkeyPatch,
) -> None:
    namespace = load(inventory_env, SAMPLE_OUTPUTS)
    for group in ("kafka", "app"):
        for name, data in hosts_of(namespace[group]).items():
            assert data["ssh_connect_retries"] >= 3, name
            assert 0 < data["ssh_connect_retry_min_delay"] <= data["ssh_connect_retry_max_delay"]


def test_the_cluster_id_comes_from_the_stack_outputs(
    inventory_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outputs = sample()
    outputs["kafka_cluster_id"] = "AAAAAAAAAAAAAAAAAAAAAA"
    namespace = load(inventory_env, write(tmp_path, outputs))
    assert namespace["kafka"][1]["kafka_cluster_id"] == "AAAAAAAAAAAAAAAAAAAAAA"


def test_missing_outputs_file_says_what_to_run(
    inventory_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(InventoryError) as caught:
        load(inventory_env, tmp_path / "absent.json")
    message = str(caught.value)
    assert "\n" not in message
    assert (
        "run `pulumi up` and `pulumi stack output --json > .pulumi-outputs.json` first" in message
    )


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda o: o.pop("hosts"), "missing key 'hosts'"),
        (lambda o: o.pop("kafka_cluster_id"), "missing key 'kafka_cluster_id'"),
        (lambda o: o["hosts"][0].pop("private_ip"), "host entry lacks private_ip"),
        (lambda o: o["hosts"][0].update(role="db"), "unknown role 'db'"),
        (lambda o: o["hosts"][2].update(node_id=7), r"node ids must be 1..3, got \[1, 2, 7\]"),
        (lambda o: o.update(hosts=o["hosts"][:3]), "at least one kafka and one app host"),
    ],
)
def test_malformed_outputs_fail_with_the_reason(
    inventory_env: pytest.MonkeyPatch, tmp_path: Path, mutate: Any, expected: str
) -> None:
    outputs = sample()
    mutate(outputs)
    with pytest.raises(InventoryError, match=expected):
        load(inventory_env, write(tmp_path, outputs))


def test_not_json_fails_with_the_reason(inventory_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text("Current stack is dev:\n")
    with pytest.raises(InventoryError, match="cannot read Pulumi outputs"):
        load(inventory_env, path)


def run_pyinfra(outputs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORDERFLOW_PULUMI_OUTPUTS": str(outputs), "PYINFRA_PROGRESS": "off"}
    return subprocess.run(
        [str(PYINFRA), "deploy/inventory.py", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
        env=env,
    )


def test_pyinfra_cli_merges_group_data_into_every_host() -> None:
    result = run_pyinfra(SAMPLE_OUTPUTS, "debug-inventory", "--json")
    assert result.returncode == 0, result.stderr
    hosts = {host["name"]: host for host in json.loads(result.stdout)}
    assert set(hosts) == {"kafka-1", "kafka-2", "kafka-3", "app-1"}
    assert "kafka" in hosts["kafka-2"]["groups"] and "app" not in hosts["kafka-2"]["groups"]
    assert "app" in hosts["app-1"]["groups"]
    kafka, app = hosts["kafka-2"]["data"], hosts["app-1"]["data"]
    assert kafka["_sudo"] is True and app["_sudo"] is True  # group_data/all.py
    assert kafka["kafka_image"] == "apache/kafka:4.1.1"  # group_data/kafka.py
    assert kafka["kafka_node_id"] == 2  # inventory host data
    assert app["orderflow_user"] == "orderflow"  # group_data/app.py
    assert "kafka_image" not in app


def test_pyinfra_cli_reports_a_missing_outputs_file_in_one_line(tmp_path: Path) -> None:
    result = run_pyinfra(tmp_path / "absent.json", "debug-inventory")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1
    assert "run `pulumi up` and `pulumi stack output --json > .pulumi-outputs.json`" in errors[0]
    assert "Traceback" not in result.stderr
