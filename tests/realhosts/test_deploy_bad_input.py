"""Bad input to the real deploy: one clear line each, no traceback, and no host touched."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from deploy.testhosts.lab import Lab, TestHost
from tests.realhosts.conftest import BAD_INPUT_SUBNET
from tests.realhosts.deploy_run import DeployResult, run_deploy, write_outputs

# The first real-host test may build the rootfs (3-5 min of debootstrap) in its setup.
pytestmark = [pytest.mark.realhosts, pytest.mark.slow, pytest.mark.timeout(2400)]

# Bad input fails while connecting or preparing: well before anything would be installed.
BAD_INPUT_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def hosts(rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    state = tmp_path_factory.mktemp("bad-input")
    # Its own bridge and range: it may run beside the end-to-end lab.
    with Lab(state / "lab", name="ofbad", subnet=BAD_INPUT_SUBNET, rootfs=rootfs) as lab:
        broker = lab.start("kafka-1", 1)
        bare = lab.start("app-1", 2, prepare=["rm -f /usr/bin/python3 /usr/bin/python3.*"])
        yield lab, broker, bare, state
    assert lab.leftovers() == []


def _fails_with(result: DeployResult, message: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.output, result.output[-4000:]
    errors = [line for line in result.output.splitlines() if line.startswith("--> pyinfra error")]
    assert len(errors) == 1 and message in errors[0], result.output[-4000:]


def _untouched(lab: Lab, host: TestHost) -> None:
    leftovers = "ls -d /etc/orderflow /opt/orderflow /opt/kafka /var/lib/kafka 2>/dev/null"
    assert lab.ssh(host, f"{leftovers}; getent passwd orderflow kafka; true") == ""


def test_an_unreachable_host_stops_the_deploy_before_any_change(hosts: tuple) -> None:
    lab, broker, bare, state = hosts
    ghost = SimpleNamespace(name="kafka-2", address=lab.address(30))  # nothing answers there
    outputs = write_outputs(state / "unreachable.json", [broker, ghost], [bare])

    result = run_deploy(lab, outputs, timeout=BAD_INPUT_TIMEOUT_S)

    _fails_with(result, "cannot reach kafka-2: every host is needed, none changed")
    assert "[kafka-2] Could not connect" in result.output
    _untouched(lab, broker)


def test_a_wrong_ssh_key_names_the_hosts_it_could_not_log_in_to(hosts: tuple) -> None:
    lab, broker, bare, state = hosts
    wrong = state / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    outputs = write_outputs(state / "key.json", [broker], [bare])

    result = run_deploy(lab, outputs, ssh_key=wrong, timeout=BAD_INPUT_TIMEOUT_S)

    assert result.returncode != 0 and "Traceback" not in result.output, result.output[-4000:]
    for name in ("kafka-1", "app-1"):
        assert any(
            line.strip().startswith(f"[{name}]") and "Authentication" in line
            for line in result.output.splitlines()
        ), result.output[-4000:]
    _untouched(lab, broker)


def test_a_host_without_python3_is_named_before_any_change(hosts: tuple) -> None:
    lab, broker, bare, state = hosts
    outputs = write_outputs(state / "python.json", [broker], [bare])

    result = run_deploy(lab, outputs, timeout=BAD_INPUT_TIMEOUT_S)

    _fails_with(result, "app-1 has no python3: install it first")
    _untouched(lab, broker)


def test_the_docker_runtime_on_debian_12_says_why_it_cannot_work(hosts: tuple) -> None:
    """As far as Docker goes here: Debian 12 has no Compose v2 package (and no image could be
    pulled without egress), so the docker runtime stops with one line before any change."""
    lab, broker, bare, state = hosts
    outputs = write_outputs(state / "docker.json", [broker], [bare])

    result = run_deploy(lab, outputs, "kafka_runtime=docker", timeout=BAD_INPUT_TIMEOUT_S)

    _fails_with(result, "kafka-1: Debian 12 packages no Docker Compose v2")
    _untouched(lab, broker)


def test_a_bootstrap_list_that_does_not_match_the_brokers_is_refused(hosts: tuple) -> None:
    lab, broker, bare, state = hosts
    outputs = write_outputs(
        state / "count.json",
        [broker],
        [bare],
        bootstrap_servers=f"{broker.address}:9092,{lab.address(31)}:9092,{lab.address(32)}:9092",
    )

    result = run_deploy(lab, outputs, timeout=BAD_INPUT_TIMEOUT_S)

    _fails_with(result, "bootstrap_servers lists 3 broker(s)")
    assert "but the outputs have 1 kafka host(s)" in result.output
    _untouched(lab, broker)
