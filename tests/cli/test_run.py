"""``orderflow main`` / ``orderflow retry``: options override settings; start-up errors are one
line and an exit code, before any Kafka client exists (and, with a broker, for missing topics)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from processors.cli import cli
from processors.cli.run import _settings


@pytest.mark.parametrize("name", ["main", "retry"])
def test_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    for option in ("--metrics-port", "--instance-id", "--handler", "--processing-guarantee"):
        assert option in result.output


def test_options_override_settings() -> None:
    settings = _settings(metrics_port=9400, instance_id="i-7", handler=None, log_format="json")
    assert (settings.metrics_port, settings.instance_id, settings.log_format) == (
        9400,
        "i-7",
        "json",
    )
    assert settings.handler == "processors.handler:handle_order"


@pytest.mark.parametrize("name", ["main", "retry"])
def test_bad_handler_is_one_line_exit_2(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--handler", "no_such_pkg_xyz.mod:fn"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("orderflow: error: ORDERFLOW_HANDLER: cannot import")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("role", ["main", "retry"])
def test_module_entry_points_report_bad_settings(role: str, tmp_path) -> None:
    env = {"ORDERFLOW_MAX_ATTEMPTS": "0", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", f"processors.{role}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "orderflow: error: invalid setting ORDERFLOW_MAX_ATTEMPTS: "
        "Input should be greater than or equal to 1"
    ]


@pytest.mark.kafka
@pytest.mark.parametrize("role", ["main", "retry"])
def test_missing_topics_are_one_line(role: str, kafka_settings, tmp_path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "ORDERFLOW_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "ORDERFLOW_TOPIC_MAIN": kafka_settings.topic_main,
        "ORDERFLOW_TOPIC_RETRY": kafka_settings.topic_retry,
        "ORDERFLOW_STATE_DIR": str(tmp_path / "state"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", f"processors.{role}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("orderflow: error: ") and "not found on the broker" in last
    assert "Traceback" not in proc.stderr
