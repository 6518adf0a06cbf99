"""Rendering of the local cluster's layout and config files (pure, no broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.localkafka import jars
from deploy.localkafka.config import (
    Layout,
    Node,
    broker_command,
    fixed_layout,
    layout_on_ports,
    log4j2_properties,
    meta_problem,
    parse_meta_properties,
    server_properties,
)
from processors.errors import LocalKafkaError


def props(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_one_node_uses_9092_and_9093() -> None:
    layout = fixed_layout(1)
    assert layout.nodes == (Node(1, 9092, 9093),)
    assert layout.bootstrap_servers == "127.0.0.1:9092"
    assert layout.quorum_voters == "1@127.0.0.1:9093"


def test_three_nodes_use_consecutive_port_pairs() -> None:
    layout = fixed_layout(3)
    assert [(n.client_port, n.controller_port) for n in layout.nodes] == [
        (9092, 9093),
        (9094, 9095),
        (9096, 9097),
    ]
    assert layout.quorum_voters == "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"


def test_base_port_moves_every_port() -> None:
    assert fixed_layout(3, 30000).nodes[2] == Node(3, 30004, 30005)


@pytest.mark.parametrize(
    ("clients", "controllers"),
    [([1000, 1000], [1001, 1002]), ([1000], [1000]), ([70000], [1001]), ([1000], [])],
)
def test_bad_ports_are_refused(clients: list[int], controllers: list[int]) -> None:
    with pytest.raises(LocalKafkaError):
        layout_on_ports(clients, controllers)


def test_zero_brokers_is_refused() -> None:
    with pytest.raises(LocalKafkaError, match="at least 1"):
        fixed_layout(0)


@pytest.mark.parametrize(("brokers", "rf", "min_isr"), [(1, 1, 1), (3, 3, 2)])
def test_internal_topics_fit_the_node_count(brokers: int, rf: int, min_isr: int) -> None:
    layout = fixed_layout(brokers, 40000)
    config = props(server_properties(layout, layout.nodes[-1], Path("/data")))
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
        "default.replication.factor",
    ):
        assert config[key] == str(rf), key
    for key in (
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.min.isr",
        "min.insync.replicas",
    ):
        assert config[key] == str(min_isr), key


def test_server_properties_of_a_cluster_node() -> None:
    layout = fixed_layout(3, 40000)
    config = props(server_properties(layout, layout.nodes[1], Path("/state/node-2/data")))
    assert config["node.id"] == "2"
    assert config["process.roles"] == "broker,controller"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:40002,CONTROLLER://127.0.0.1:40003"
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:40002"
    assert config["controller.quorum.voters"] == layout.quorum_voters
    assert config["log.dirs"] == "/state/node-2/data"
    assert config["auto.create.topics.enable"] == "false"
    assert config["group.initial.rebalance.delay.ms"] == "0"
    assert config["log.cleaner.dedupe.buffer.size"] == "2097152"
    assert "offset.metadata.max.bytes" not in config  # Kafka's default stays
    assert "controller.quorum.bootstrap.servers" not in config  # static quorum only


def test_extra_config_overrides_defaults() -> None:
    layout = Layout(fixed_layout(1, 40000).nodes, extra_config={"num.partitions": "7"})
    assert props(server_properties(layout, layout.nodes[0], Path("/d")))["num.partitions"] == "7"


def test_log4j_writes_to_the_node_log_file() -> None:
    text = log4j2_properties(Path("/state/node-1/server.log"))
    assert "appender.file.fileName=/state/node-1/server.log" in text
    assert "rootLogger.level=INFO" in text


def test_broker_command_caps_the_heap_and_names_its_properties() -> None:
    argv = broker_command(
        "/usr/bin/java", Path("/jars"), Path("/s/node-1/server.properties"),
        Path("/s/node-1/log4j2.properties"), Path("/s/node-1/tmp"),
    )  # fmt: skip
    assert argv[0] == "/usr/bin/java"
    assert "-Xmx512m" in argv and "-Xms256m" in argv
    assert argv[-2:] == ["kafka.Kafka", "/s/node-1/server.properties"]
    assert argv[argv.index("-cp") + 1] == "/jars/*"
    assert "-Dlog4j2.configurationFile=/s/node-1/log4j2.properties" in argv


def test_layout_round_trips_through_json(tmp_path: Path) -> None:
    layout = Layout(fixed_layout(3, 40000).nodes, "abc", "jar", {"k": "v"})
    assert Layout.from_json(layout.to_json(), tmp_path / "cluster.json") == layout


def test_unreadable_layout_names_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(LocalKafkaError, match=r"cluster\.json.*down --purge"):
        Layout.from_json("{not json", tmp_path / "cluster.json")


META = "version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=1\ndirectory.id=x\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (META, None),
        ("\x00\x01garbage", "has no valid version"),
        ("version=1\nnode.id=1\n", "lacks cluster.id or node.id"),
        (META.replace("AAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBB"), "belongs to cluster"),
        (META.replace("node.id=1", "node.id=2"), "is for node 2"),
    ],
)
def test_meta_properties_are_checked(text: str, problem: str | None) -> None:
    found = meta_problem(parse_meta_properties(text), Node(1, 1, 2), "AAAAAAAAAAAAAAAAAAAAAA")
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)


def test_pom_pins_kafka_4_1_1_with_the_slf4j_binding() -> None:
    assert jars.kafka_version() == "4.1.1"
    pom = jars.POM.read_text()
    assert "<artifactId>kafka_2.13</artifactId>" in pom
    assert "<artifactId>log4j-slf4j-impl</artifactId>" in pom
    assert "<packaging>pom</packaging>" in pom


def test_jvm_options_default_to_a_cheap_start_and_can_be_replaced() -> None:
    paths = (Path("/jars"), Path("/p"), Path("/l"), Path("/t"))
    assert "-XX:TieredStopAtLevel=1" in broker_command("java", *paths)
    plain = broker_command("java", *paths, jvm_options=())
    assert not any(arg.startswith("-XX:") for arg in plain)
    assert "-Xmx512m" in plain
