"""`orderflow kafka …` on bad input: one clear error line and a non-zero exit, no traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from deploy.localkafka import Layout, layout_on_ports
from deploy.localkafka.config import LAYOUT_FILE
from deploy.localkafka.net import free_ports, port_is_free
from processors.cli import cli


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def assert_one_error_line(result: Result, *fragments: str) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("orderflow: error:")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.rstrip().endswith(errors[0])
    for fragment in fragments:
        assert fragment in errors[0]
    return errors[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_port_taken(tmp_path: Path, taken_port: int) -> None:
    result = run("kafka", "up", "--port", str(taken_port), "--state-dir", str(tmp_path))
    assert_one_error_line(result, f"port {taken_port}", "already in use")
    assert result.exit_code == 1


def test_missing_java(tmp_path: Path) -> None:
    [port] = free_ports(1)
    while not (port_is_free(port) and port_is_free(port + 1)):
        [port] = free_ports(1)
    env = {"PATH": str(tmp_path / "empty-bin")}
    result = run("kafka", "up", "--port", str(port), "--state-dir", str(tmp_path), env=env)
    assert_one_error_line(result, "Java 17+ not found", "apt-get install openjdk-17-jre-headless")


def test_corrupt_data_dir(tmp_path: Path) -> None:
    """Needs Java and the jars (fetched once) but starts no broker: the check comes first."""
    ports = free_ports(2)
    layout = Layout(layout_on_ports([ports[0]], [ports[1]]).nodes, "AAAAAAAAAAAAAAAAAAAAAA")
    state = tmp_path / "kafka"
    data = state / "node-1" / "data"
    data.mkdir(parents=True)
    (state / LAYOUT_FILE).write_text(layout.to_json())
    (data / "meta.properties").write_text("this is not a properties file \x00\x01")
    result = run("kafka", "up", "--state-dir", str(state))
    assert_one_error_line(result, f"corrupt data directory {data}", "orderflow kafka down --purge")
    assert not (state / "node-1" / "kafka.pid").exists()
    purged = run("kafka", "down", "--purge", "--state-dir", str(state))
    assert purged.exit_code == 0, purged.output
    assert not data.exists()


def test_corrupt_layout_file(tmp_path: Path) -> None:
    (tmp_path / LAYOUT_FILE).write_text("{")
    result = run("kafka", "status", "--state-dir", str(tmp_path))
    assert_one_error_line(result, "cluster.json", "down --purge")


def test_status_and_logs_without_a_cluster(tmp_path: Path) -> None:
    status = run("kafka", "status", "--state-dir", str(tmp_path))
    assert status.exit_code == 1 and "no local Kafka" in status.output
    logs = run("kafka", "logs", "--state-dir", str(tmp_path))
    assert_one_error_line(logs, "no local Kafka")
    down = run("kafka", "down", "--state-dir", str(tmp_path))
    assert down.exit_code == 0 and "nothing to do" in down.output


def test_unknown_subcommand_and_bad_broker_count() -> None:
    assert run("kafka", "sideways").exit_code == 2
    result = run("kafka", "up", "--brokers", "2")
    assert result.exit_code == 2 and "'2' is not one of '1', '3'" in result.output


def test_docker_without_an_engine(tmp_path: Path) -> None:
    # No engine here (and no docker command on this PATH): a clear error, nothing started.
    env = {"PATH": str(tmp_path / "empty-bin")}
    result = run("kafka", "up", "--docker", "--state-dir", str(tmp_path), env=env)
    assert_one_error_line(result, "--docker needs a reachable Docker engine")


def test_fetch_without_maven_names_what_to_install(tmp_path: Path) -> None:
    result = run("kafka", "fetch", "--cache-dir", str(tmp_path), env={"PATH": str(tmp_path)})
    assert_one_error_line(result, "Maven")


@pytest.mark.kafka
def test_fetch_is_a_no_op_once_cached(kafka_bootstrap: str) -> None:
    # The session broker has fetched the jars into the default cache by now (or uses Docker /
    # an external broker, in which case this fetch does the work once).
    run("kafka", "fetch")
    result = run("kafka", "fetch", env={"PATH": ""})  # no Maven reachable: must not need it
    assert result.exit_code == 0, result.output
    assert "already cached" in result.output
