from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from dashboard import launch
from dashboard.auth import AuthConfig
from processors.cli import cli
from processors.errors import SettingsError


def test_command_is_headless_without_usage_stats() -> None:
    command = launch.streamlit_command("127.0.0.1", 8600)
    assert command[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert Path(command[4]) == launch.APP_PATH and launch.APP_PATH.is_file()
    pairs = dict(zip(command[5::2], command[6::2], strict=True))
    assert pairs["--server.address"] == "127.0.0.1"
    assert pairs["--server.port"] == "8600"
    assert pairs["--server.headless"] == "true"
    assert pairs["--browser.gatherUsageStats"] == "false"
    assert "--secrets.files" not in pairs


def test_command_passes_secrets_file(tmp_path: Path) -> None:
    command = launch.streamlit_command("0.0.0.0", 8501, tmp_path / "s.toml")
    assert command[-2:] == ["--secrets.files", str(tmp_path / "s.toml")]


def test_check_bind() -> None:
    launch.check_bind("127.0.0.1", AuthConfig("none"))
    launch.check_bind("0.0.0.0", AuthConfig("password"))
    launch.check_bind("0.0.0.0", AuthConfig("oidc"))
    with pytest.raises(SettingsError, match="without auth"):
        launch.check_bind("0.0.0.0", AuthConfig("none"))


def test_resolve_auth_from_default_locations(tmp_path: Path) -> None:
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    assert launch.resolve_auth(None, cwd, home).mode == "none"
    (cwd / ".streamlit").mkdir(parents=True)
    (cwd / ".streamlit" / "secrets.toml").write_text('[auth]\npassword = "pw"\n')
    assert launch.resolve_auth(None, cwd, home).mode == "password"


def test_resolve_auth_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        launch.resolve_auth(tmp_path / "nope.toml", tmp_path, tmp_path)


def test_cli_refuses_open_dashboard_on_all_interfaces(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("[other]\nx = 1\n")
    result = CliRunner().invoke(
        cli, ["dashboard", "--address", "0.0.0.0", "--secrets", str(secrets)]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "orderflow: error: refusing to serve the dashboard on 0.0.0.0 without auth: set [auth] "
        "password or OIDC in .streamlit/secrets.toml, or bind to 127.0.0.1"
    ]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


@pytest.mark.slow
def test_sigterm_to_the_command_stops_streamlit_too(tmp_path: Path) -> None:
    """``orderflow down`` and test fixtures stop the dashboard by the CLI's pid."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/_stcore/health"
    command = subprocess.Popen(
        [sys.executable, "-m", "processors", "dashboard", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _healthy(url):
            assert command.poll() is None and time.monotonic() < deadline, "never became healthy"
            time.sleep(0.3)
        command.send_signal(signal.SIGTERM)
        assert command.wait(timeout=15) == 0
        assert not _healthy(url), "Streamlit still serving after the command exited"
    finally:
        command.kill()
