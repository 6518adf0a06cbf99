"""The systemd units and the settings file the deploy renders for the app host."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from processors.settings import Settings
from tests.deploy.conftest import Report

UNITS = (
    "/etc/systemd/system/orderflow-main@.service",
    "/etc/systemd/system/orderflow-retry@.service",
    "/etc/systemd/system/orderflow-dashboard.service",
)
SETTINGS_FILE = "/etc/orderflow/orderflow.env"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
}
# Who runs each unit, and the one directory it may write.
RUNS_AS = {
    "orderflow-main@.service": ("orderflow", "/var/lib/orderflow"),
    "orderflow-retry@.service": ("orderflow", "/var/lib/orderflow"),
    "orderflow-dashboard.service": ("orderflow-dashboard", "/var/lib/orderflow-dashboard"),
}


def parse_unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def all_environment_lines(text: str) -> dict[str, str]:
    return dict(
        line.removeprefix("Environment=").split("=", 1)
        for line in text.splitlines()
        if line.startswith("Environment=")
    )


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.rsplit("/", 1)[-1])
def test_unit_runs_unprivileged_hardened_and_gives_up_on_bad_config(
    fresh_run: Report, unit: str
) -> None:
    text = fresh_run["app-1"]["uploads"][unit]
    parsed = parse_unit(text)
    service = parsed["Service"]
    user, writable = RUNS_AS[unit.rsplit("/", 1)[-1]]
    assert service["User"] == service["Group"] == user
    assert service["ReadWritePaths"] == writable
    for directive, value in HARDENING.items():
        assert service[directive] == value, directive
    assert service["EnvironmentFile"] == SETTINGS_FILE
    assert service["Restart"] == "on-failure"
    assert int(service["RestartSec"]) > 0
    # Exit code 2 is orderflow's "invalid settings": restarting cannot fix it.
    assert service["RestartPreventExitStatus"] == "2"
    assert int(parsed["Unit"]["StartLimitBurst"]) <= 10
    assert int(parsed["Unit"]["StartLimitIntervalSec"]) >= 60
    assert parsed["Install"]["WantedBy"] == "multi-user.target"
    assert service["ExecStart"].startswith("/opt/orderflow/venv/bin/orderflow ")


def test_processor_units_are_instance_templates_with_stable_ids(fresh_run: Report) -> None:
    uploads = fresh_run["app-1"]["uploads"]
    for unit, command in (("main", "main"), ("retry", "retry")):
        text = uploads[f"/etc/systemd/system/orderflow-{unit}@.service"]
        service = parse_unit(text)["Service"]
        assert service["ExecStart"] == f"/opt/orderflow/venv/bin/orderflow {command}"
        env = all_environment_lines(text)
        # host + instance; the processors prefix their role (orderflow-main-…, orderflow-retry-…).
        assert env["ORDERFLOW_INSTANCE_ID"] == "%H-%i"
        assert env["ORDERFLOW_STATE_DIR"] == "/var/lib/orderflow/%p-%i"
        assert service["StateDirectory"] == "orderflow orderflow/%p-%i"
        # systemd's watchdog backs up the processor's own (60 s): pings from a healthy loop.
        assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
        assert int(service["WatchdogSec"]) > 60


def test_the_dashboard_is_a_plain_exec_service(fresh_run: Report) -> None:
    text = fresh_run["app-1"]["uploads"]["/etc/systemd/system/orderflow-dashboard.service"]
    service = parse_unit(text)["Service"]
    assert service["Type"] == "exec" and "WatchdogSec" not in service


def test_the_dashboard_has_its_own_user_and_state_apart_from_the_processors(
    fresh_run: Report,
) -> None:
    text = fresh_run["app-1"]["uploads"]["/etc/systemd/system/orderflow-dashboard.service"]
    service = parse_unit(text)["Service"]
    assert service["StateDirectory"] == "orderflow-dashboard"
    assert all_environment_lines(text)["ORDERFLOW_STATE_DIR"] == "/var/lib/orderflow-dashboard"
    commands = [c for op in fresh_run["app-1"]["ops"] for c in op["commands"]]
    assert any(
        c.startswith("useradd") and c.endswith(" orderflow-dashboard") and "nologin" in c
        for c in commands
    ), commands
    # Only the UI host has it.
    assert not any("orderflow-dashboard" in c for op in fresh_run["kafka-1"]["ops"]
                   for c in op["commands"])  # fmt: skip


def test_private_dashboard_listens_on_loopback_only(fresh_run: Report) -> None:
    text = fresh_run["app-1"]["uploads"]["/etc/systemd/system/orderflow-dashboard.service"]
    assert parse_unit(text)["Service"]["ExecStart"] == (
        "/opt/orderflow/venv/bin/orderflow dashboard --address 127.0.0.1 --port 8501"
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.rsplit("/", 1)[-1])
def test_systemd_analyze_verify_accepts_the_unit(
    fresh_run: Report, unit: str, tmp_path: Path
) -> None:
    name = unit.rsplit("/", 1)[-1].replace("@.service", "@1.service")
    # verify checks that ExecStart exists: point it at this venv's real orderflow command.
    text = fresh_run["app-1"]["uploads"][unit].replace(
        "/opt/orderflow/venv/bin/orderflow", str(Path(sys.executable).with_name("orderflow"))
    )
    path = tmp_path / name
    path.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 even for unknown keys or bad values; it reports them on stderr.
    complaints = [line for line in result.stderr.splitlines() if name in line]
    assert result.returncode == 0 and not complaints, result.stderr


def test_systemd_analyze_verify_catches_a_bad_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt directive is reported."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    path = tmp_path / "broken.service"
    path.write_text("[Service]\nExecStart=/bin/true\nRestart=sometimes\n")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, check=False
    )
    assert "broken.service" in result.stderr


def settings_lines(fresh_run: Report) -> dict[str, str]:
    text = fresh_run["app-1"]["uploads"][SETTINGS_FILE]
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def test_settings_file_points_at_the_cluster(fresh_run: Report) -> None:
    settings = settings_lines(fresh_run)
    assert settings["ORDERFLOW_BOOTSTRAP_SERVERS"] == (
        "10.42.128.11:9092,10.42.129.12:9092,10.42.130.13:9092"
    )
    assert settings["ORDERFLOW_REPLICATION_FACTOR"] == "3"


def test_settings_file_is_valid_for_orderflow(
    fresh_run: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in settings_lines(fresh_run).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ORDERFLOW_CONFIG", "/nonexistent/orderflow.toml")
    settings = Settings()
    assert settings.bootstrap_servers.startswith("10.42.128.11:9092")
    assert settings.replication_factor == 3
    for key in settings_lines(fresh_run):
        field = key.removeprefix("ORDERFLOW_").lower()
        assert field in Settings.model_fields, f"{key} is not an orderflow setting"


def test_settings_file_is_readable_by_the_service_user_only(fresh_run: Report) -> None:
    op = next(
        op
        for op in fresh_run["app-1"]["ops"]
        if op["name"].endswith("Render the orderflow settings file")
    )
    assert f"chown root:orderflow {SETTINGS_FILE}" in op["commands"]
    assert f"chmod 640 {SETTINGS_FILE}" in op["commands"]
