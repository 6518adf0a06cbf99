"""The output contract as pure functions, checked against deploy/stack-outputs.sample.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from orderflow_infra.outputs import (
    CONTRACT_KEYS,
    HOST_KEYS,
    Exposure,
    KafkaAccess,
    bootstrap_servers,
    contract,
    host_record,
    ssh_command,
)

SAMPLE_PATH = Path(__file__).resolve().parents[2] / "deploy" / "stack-outputs.sample.json"


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    return json.loads(SAMPLE_PATH.read_text())


def kafka_access(sample: dict[str, Any]) -> KafkaAccess:
    return KafkaAccess(sample["kafka_secret_arns"], sample["kafka_ca_certificate"])


def test_sample_has_exactly_the_contract_keys(sample: dict[str, Any]) -> None:
    assert set(sample) == set(CONTRACT_KEYS)
    assert all(tuple(host) == HOST_KEYS for host in sample["hosts"])


def test_sample_is_exactly_what_contract_renders_for_its_hosts(sample: dict[str, Any]) -> None:
    # Keeps every string in the sample (commands, URLs, bootstrap) in lockstep with the code.
    rendered = contract(
        sample["region"],
        sample["hosts"],
        Exposure(),
        "orderflow-dev-sessions",
        sample["kafka_cluster_id"],
        kafka=kafka_access(sample),
    )
    assert rendered == sample


def test_host_record_turns_aws_empty_public_ip_into_null() -> None:
    record = host_record("app-1", "app", "i-1", "10.0.0.5", "", "eu-west-1a")
    assert record["public_ip"] is None
    assert record["node_id"] is None and record["data_volume_id"] is None
    assert tuple(record) == HOST_KEYS


def test_bootstrap_servers_lists_brokers_in_node_order_and_skips_apps() -> None:
    hosts = [
        host_record("kafka-2", "kafka", "i-2", "10.0.1.2", None, "a", 2, "vol-2"),
        host_record("app-1", "app", "i-9", "10.0.0.9", None, "a"),
        host_record("kafka-1", "kafka", "i-1", "10.0.0.1", None, "b", 1, "vol-1"),
    ]
    assert bootstrap_servers(hosts) == "10.0.0.1:9092,10.0.1.2:9092"


def test_uis_are_on_localhost_unless_the_dashboard_has_its_https_load_balancer(sample) -> None:
    args = (sample["region"], sample["hosts"], Exposure(), "doc", "ZljhLFr_RvuBvx_LI3XmUg")
    private = contract(*args, kafka=kafka_access(sample))
    assert (private["dashboard_url"], private["console_url"]) == (
        "http://localhost:8501",
        "http://localhost:8080",
    )
    public = contract(*args, dashboard_url="https://lb.example", kafka=kafka_access(sample))
    assert (public["dashboard_url"], public["console_url"]) == (
        "https://lb.example",
        "http://localhost:8080",
    )


def test_shell_sessions_use_the_stacks_session_preferences(sample) -> None:
    for command in sample["ssm_commands"]["sessions"].values():
        assert command.endswith(" --document-name orderflow-dev-sessions")
    for command in sample["ssm_commands"]["port_forwarding"].values():
        assert "--document-name AWS-StartPortForwardingSession" in command


def test_ssh_is_direct_only_with_ssh_enabled_and_a_public_ip() -> None:
    public = host_record("app-1", "app", "i-1", "10.0.0.5", "198.51.100.4", "a")
    broker = host_record("kafka-1", "kafka", "i-2", "10.0.128.5", None, "a", 1, "vol-1")
    assert ssh_command(public, "eu-west-1", direct=True) == "ssh ubuntu@198.51.100.4"
    tunnelled = ssh_command(broker, "eu-west-1", direct=True)
    assert tunnelled.endswith(" ubuntu@i-2")
    assert "--document-name AWS-StartSSHSession" in tunnelled
    assert "--region eu-west-1" in tunnelled
    assert ssh_command(public, "eu-west-1", direct=False).endswith(" ubuntu@i-1")


def test_each_host_reads_the_secrets_of_its_class_and_the_ui_host_those_of_the_uis(sample) -> None:
    hosts = [
        host_record("kafka-1", "kafka", "i-1", "10.0.0.1", None, "a", 1, "vol-1"),
        host_record("app-1", "app", "i-2", "10.0.0.2", None, "a"),
        host_record("app-2", "app", "i-3", "10.0.0.3", None, "b"),
    ]
    rendered = contract("eu-west-1", hosts, Exposure(), "doc", "id", kafka=kafka_access(sample))
    assert rendered["kafka_secret_readers"] == {
        "kafka-1": ["broker", "admin"],
        "app-1": ["main", "retry", "operator", "console"],
        "app-2": ["main", "retry"],
    }
    # Every principal has its secret, and the CA key too; nobody's host reads producer or it.
    assert set(rendered["kafka_secret_arns"]) == {
        "broker", "main", "retry", "producer", "operator", "admin", "console", "ca-key",
    }  # fmt: skip
    readable = {item for items in rendered["kafka_secret_readers"].values() for item in items}
    assert readable == set(rendered["kafka_secret_arns"]) - {"producer", "ca-key"}
