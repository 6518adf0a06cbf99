"""deploy/files/*-compose.yaml and the env files the deploy renders for them.

Compose interpolation (``${VAR:-default}``, ``${VAR:?error}``) is reproduced here so the files
can be checked without a Docker engine; the apache/kafka image's env → property mapping too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.localkafka.config import broker_settings
from tests.deploy.conftest import REPO, SAMPLE_OUTPUTS, Report

KAFKA_COMPOSE = REPO / "deploy" / "files" / "kafka-compose.yaml"
CONSOLE_COMPOSE = REPO / "deploy" / "files" / "console-compose.yaml"
KAFKA_VARIABLES = {
    "KAFKA_IMAGE",
    "NODE_ID",
    "CLUSTER_ID",
    "ADVERTISED_HOST",
    "CLIENT_PORT",
    "CONTROLLER_PORT",
    "CONTROLLER_QUORUM_VOTERS",
    "BIND_ADDRESS",
    "REPLICATION_FACTOR",
    "MIN_ISR",
    "DATA_DIR",
    "HEAP_SIZE",
}
CONSOLE_PLAIN_VARIABLES = {"CONSOLE_IMAGE", "KAFKA_BROKERS", "BIND_ADDRESS", "CONSOLE_PORT"}
CONSOLE_VARIABLES = CONSOLE_PLAIN_VARIABLES | {
    # A secured cluster (kafka_security=sasl_ssl): Console's own principal, TLS and the CA.
    "KAFKA_SASL_ENABLED",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_TLS_ENABLED",
    "KAFKA_TLS_CAFILEPATH",
    "CA_FILE",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


class MissingVariable(Exception):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution, applied to every string of a parsed compose file."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match[1], match[2], match[3]
        current = env.get(name)
        unset = current is None or (
            operator is not None and operator.startswith(":") and not current
        )
        if operator and operator.endswith("?") and unset:
            raise MissingVariable(f"{name}: {argument}")
        if operator and operator.endswith("-") and unset:
            return argument
        return current or ""

    return _VARIABLE.sub(substitute, value)


def variables(path: Path) -> set[str]:
    return {match[0] for match in _VARIABLE.findall(path.read_text())}


def parse_env(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")]
    return {key: value for key, value in pairs}


def kafka_properties(environment: dict[str, str]) -> dict[str, str]:
    """The server properties the apache/kafka image derives from KAFKA_* variables."""
    properties = {}
    for key, value in environment.items():
        if key.startswith("KAFKA_") and key not in ("KAFKA_HEAP_OPTS",):
            name = key.removeprefix("KAFKA_").lower()
            name = name.replace("___", "\0").replace("__", "\1").replace("_", ".")
            properties[name.replace("\0", "-").replace("\1", "_")] = str(value)
    return properties


def resolved(path: Path, env: dict[str, str]) -> dict[str, Any]:
    return interpolate(yaml.safe_load(path.read_text()), env)


def published_addresses(compose: dict[str, Any]) -> list[str]:
    """The host address of every published port (short syntax HOST:PUBLISHED:TARGET)."""
    addresses = []
    for service in compose["services"].values():
        for port in service.get("ports", []):
            parts = str(port).split(":")
            addresses.append(parts[0] if len(parts) == 3 else "")  # "" = all interfaces
    return addresses


def test_kafka_compose_uses_exactly_the_documented_variables() -> None:
    assert variables(KAFKA_COMPOSE) == KAFKA_VARIABLES


def test_console_compose_uses_exactly_the_documented_variables() -> None:
    assert variables(CONSOLE_COMPOSE) == CONSOLE_VARIABLES


def test_kafka_defaults_give_one_loopback_node() -> None:
    compose = resolved(KAFKA_COMPOSE, {"CLUSTER_ID": "ZljhLFr_RvuBvx_LI3XmUg"})
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == "apache/kafka:4.1.1"
    assert kafka["ports"] == ["127.0.0.1:9092:9092", "127.0.0.1:9093:9093"]
    properties = kafka_properties(kafka["environment"])
    assert properties["node.id"] == "1"
    assert properties["process.roles"] == "broker,controller"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert properties["advertised.listeners"] == (
        "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    )
    assert properties["offsets.topic.replication.factor"] == "1"
    assert properties["transaction.state.log.min.isr"] == "1"
    assert properties["log.dirs"] == "/var/lib/kafka/data"
    assert kafka["volumes"] == ["kafka-data:/var/lib/kafka/data"]


@pytest.mark.parametrize(("rf", "min_isr"), [(1, 1), (3, 2)])
def test_kafka_compose_carries_the_shared_broker_settings(rf: int, min_isr: int) -> None:
    """The compose file, the local nodes and the jars runtime share ``broker_settings``."""
    env = {"CLUSTER_ID": "x", "REPLICATION_FACTOR": str(rf), "MIN_ISR": str(min_isr)}
    properties = kafka_properties(resolved(KAFKA_COMPOSE, env)["services"]["kafka"]["environment"])
    shared = broker_settings(rf, min_isr)
    assert {key: properties.get(key) for key in shared} == shared


def test_kafka_compose_refuses_to_start_without_a_cluster_id() -> None:
    with pytest.raises(MissingVariable, match="CLUSTER_ID"):
        resolved(KAFKA_COMPOSE, {})


def test_console_compose_refuses_to_start_without_brokers() -> None:
    with pytest.raises(MissingVariable, match="KAFKA_BROKERS"):
        resolved(CONSOLE_COMPOSE, {})


@pytest.mark.parametrize("path", [KAFKA_COMPOSE, CONSOLE_COMPOSE], ids=lambda p: p.name)
def test_no_port_is_published_on_all_interfaces_by_default(path: Path) -> None:
    env = {"CLUSTER_ID": "x", "KAFKA_BROKERS": "127.0.0.1:9092"}
    addresses = published_addresses(resolved(path, env))
    assert addresses and set(addresses) == {"127.0.0.1"}


def test_services_drop_privileges() -> None:
    for path in (KAFKA_COMPOSE, CONSOLE_COMPOSE):
        for service in yaml.safe_load(path.read_text())["services"].values():
            assert "no-new-privileges:true" in service["security_opt"]
            assert service["cap_drop"] == ["ALL"]
            assert "privileged" not in service


def test_every_broker_gets_its_own_env_file(fresh_run: Report) -> None:
    envs = {
        host: parse_env(fresh_run[host]["uploads"]["/opt/kafka/.env"])
        for host in ("kafka-1", "kafka-2", "kafka-3")
    }
    for number, (host, env) in enumerate(sorted(envs.items()), start=1):
        assert set(env) == KAFKA_VARIABLES, "the env file sets every variable of the compose file"
        private_ip = {
            "kafka-1": "10.42.128.11",
            "kafka-2": "10.42.129.12",
            "kafka-3": "10.42.130.13",
        }[host]
        assert env["NODE_ID"] == str(number)
        assert env["ADVERTISED_HOST"] == env["BIND_ADDRESS"] == private_ip
    # Shared by the whole cluster:
    for key in ("CLUSTER_ID", "CONTROLLER_QUORUM_VOTERS", "REPLICATION_FACTOR", "MIN_ISR"):
        assert len({env[key] for env in envs.values()}) == 1, key
    assert envs["kafka-1"]["CONTROLLER_QUORUM_VOTERS"] == (
        "1@10.42.128.11:9093,2@10.42.129.12:9093,3@10.42.130.13:9093"
    )


def test_three_node_cluster_is_durable(fresh_run: Report) -> None:
    env = parse_env(fresh_run["kafka-3"]["uploads"]["/opt/kafka/.env"])
    kafka = resolved(KAFKA_COMPOSE, env)["services"]["kafka"]
    properties = kafka_properties(kafka["environment"])
    assert properties["default.replication.factor"] == "3"
    assert properties["min.insync.replicas"] == "2"
    assert properties["offsets.topic.replication.factor"] == "3"
    assert properties["transaction.state.log.replication.factor"] == "3"
    assert properties["transaction.state.log.min.isr"] == "2"
    assert properties["unclean.leader.election.enable"] == "false"
    assert properties["auto.create.topics.enable"] == "false"
    assert properties["node.id"] == "3"
    assert properties["advertised.listeners"].startswith("PLAINTEXT://10.42.130.13:9092,")
    assert kafka["ports"] == ["10.42.130.13:9092:9092", "10.42.130.13:9093:9093"]
    assert kafka["volumes"] == ["/var/lib/kafka/data:/var/lib/kafka/data"]
    assert kafka["environment"]["KAFKA_HEAP_OPTS"] == "-Xms1g -Xmx1g"


def test_private_console_binds_loopback(fresh_run: Report) -> None:
    env = parse_env(fresh_run["app-1"]["uploads"]["/opt/redpanda-console/.env"])
    assert set(env) == CONSOLE_PLAIN_VARIABLES
    console = resolved(CONSOLE_COMPOSE, env)["services"]["console"]
    assert console["ports"] == ["127.0.0.1:8080:8080"]
    # The plaintext default: no SASL, no TLS, no CA mounted.
    assert console["environment"]["KAFKA_SASL_ENABLED"] == "false"
    assert console["environment"]["KAFKA_TLS_ENABLED"] == "false"
    assert console["volumes"] == ["/dev/null:/etc/orderflow-kafka-ca.pem:ro"]
    assert console["environment"]["KAFKA_BROKERS"] == (
        "10.42.128.11:9092,10.42.129.12:9092,10.42.130.13:9092"
    )


def test_uploaded_compose_files_are_the_repository_files(fresh_run: Report) -> None:
    assert fresh_run["kafka-1"]["uploads"]["/opt/kafka/compose.yaml"] == KAFKA_COMPOSE.read_text()
    assert fresh_run["app-1"]["uploads"]["/opt/redpanda-console/compose.yaml"] == (
        CONSOLE_COMPOSE.read_text()
    )


def test_single_broker_stack_renders_replication_factor_one(
    fake_deploy: Callable[..., Report], tmp_path: Path
) -> None:
    outputs = json.loads(SAMPLE_OUTPUTS.read_text())
    outputs["hosts"] = [h for h in outputs["hosts"] if h["name"] in ("kafka-1", "app-1")]
    outputs["bootstrap_servers"] = "10.42.128.11:9092"
    path = tmp_path / "one-broker.json"
    path.write_text(json.dumps(outputs))
    report = fake_deploy(outputs=path)
    env = parse_env(report["kafka-1"]["uploads"]["/opt/kafka/.env"])
    assert (env["REPLICATION_FACTOR"], env["MIN_ISR"]) == ("1", "1")
    assert env["CONTROLLER_QUORUM_VOTERS"] == "1@10.42.128.11:9093"
    settings = parse_env(report["app-1"]["uploads"]["/etc/orderflow/orderflow.env"])
    assert settings["ORDERFLOW_REPLICATION_FACTOR"] == "1"
