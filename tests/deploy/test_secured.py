"""The secured VM deploy (``kafka_security=sasl_ssl``), on pyinfra's fake connector.

One deploy of the sample stack (3 brokers on the jars runtime, 1 app host) with the secrets in
a temporary directory standing for the operator's ``~/.config/orderflow/<stack>/``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from pyinfra.api.exceptions import DeployError

from deploy.localkafka.broker_security import secure_broker_properties
from deploy.localkafka.config import broker_settings
from deploy.localkafka.security import USERS
from deploy.tasks import security
from processors.settings import load_settings
from tests.deploy.conftest import Report, converged_responses, find_op, op_names
from tests.deploy.test_deploy import executed, uploads

BROKERS = {"kafka-1": "10.42.128.11", "kafka-2": "10.42.129.12", "kafka-3": "10.42.130.13"}
CREDENTIALS = "/etc/orderflow/credentials"


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("operator-secrets")


@pytest.fixture(scope="module")
def secured_run(fake_deploy: Callable[..., Report], secrets_dir: Path) -> Report:
    return fake_deploy(
        data={
            "kafka_security": "sasl_ssl",
            "kafka_runtime": "jars",
            "orderflow_secrets_dir": str(secrets_dir),
        }
    )


@pytest.fixture(scope="module")
def passwords(secured_run: Report, secrets_dir: Path) -> dict[str, str]:
    return json.loads((secrets_dir / "security" / "scram.json").read_text())


def properties(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if line and line[0] != "#"]
    return {key: value for key, value in pairs}


def file_commands(report: Report, host: str, path: str) -> set[str]:
    """The chmod/chown commands the deploy ran for ``path``."""
    return {
        command
        for op in report[host]["ops"]
        for command in op["commands"]
        if re.fullmatch(rf"(chmod \d+|chown \S+) {re.escape(path)}", command)
    }


def test_secrets_stay_on_the_deploying_machine_private(
    secured_run: Report, secrets_dir: Path, passwords: dict[str, str]
) -> None:
    directory = secrets_dir / "security"
    assert set(passwords) == set(USERS) and "console" in passwords
    assert directory.stat().st_mode & 0o777 == 0o700
    for path in directory.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path


@pytest.mark.parametrize("host", sorted(BROKERS))
def test_brokers_get_the_local_secured_settings(
    secured_run: Report, passwords: dict[str, str], host: str
) -> None:
    ip = BROKERS[host]
    props = properties(secured_run[host]["uploads"]["/etc/kafka/server.properties"])
    expected = secure_broker_properties(
        client_bind=f"{ip}:9092",
        controller_bind=f"{ip}:9093",
        advertised_client=f"{ip}:9092",
        keystore="/etc/kafka/tls/node.pem",
        truststore="/etc/kafka/tls/ca.pem",
        broker_password=passwords["broker"],
        node_principals=["node-1", "node-2", "node-3"],
    )
    shared = {k: v for k, v in broker_settings(3, 2).items() if k not in expected}
    assert props.items() >= {**shared, **expected}.items()
    assert props["listener.security.protocol.map"] == "CLIENT:SASL_SSL,CONTROLLER:SSL"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert "PLAINTEXT" not in props["listeners"]
    # It holds the broker's password: the kafka user's alone.
    assert file_commands(secured_run, host, "/etc/kafka/server.properties") == {
        "chmod 600 /etc/kafka/server.properties",
        "chown kafka:kafka /etc/kafka/server.properties",
    }


@pytest.mark.parametrize("host", sorted(BROKERS))
def test_each_broker_gets_its_own_certificate_0600(secured_run: Report, host: str) -> None:
    uploads = secured_run[host]["uploads"]
    leaf = x509.load_pem_x509_certificates(uploads["/etc/kafka/tls/node.pem"].encode())[0]
    assert "PRIVATE KEY" in uploads["/etc/kafka/tls/node.pem"]
    node = f"node-{host.removeprefix('kafka-')}"
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == node
    addresses = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in addresses.get_values_for_type(x509.IPAddress)] == [BROKERS[host]]
    for path in ("/etc/kafka/tls/node.pem", "/etc/kafka/tls/ca.pem"):
        assert file_commands(secured_run, host, path) == {
            f"chmod 600 {path}",
            f"chown kafka:kafka {path}",
        }


def test_scram_users_are_created_at_format_time_from_a_private_file(
    secured_run: Report, passwords: dict[str, str]
) -> None:
    args = secured_run["kafka-1"]["uploads"]["/etc/kafka/scram-users.args"]
    for user, password in passwords.items():
        assert f"SCRAM-SHA-512=[name={user},password={password}]" in args
    assert file_commands(secured_run, "kafka-1", "/etc/kafka/scram-users.args") == {
        "chmod 600 /etc/kafka/scram-users.args",
        "chown kafka:kafka /etc/kafka/scram-users.args",
    }
    (command,) = find_op(
        secured_run, "kafka-1", "Format this node's Kafka storage with its SCRAM users "
        "(once: an existing log is never touched)",
    )["commands"]  # fmt: skip
    assert "kafka.tools.StorageTool format" in command
    assert "@/etc/kafka/scram-users.args" in command
    assert "rm -f /etc/kafka/scram-users.args" in command


@pytest.mark.parametrize(
    ("unit", "principal"),
    [
        ("orderflow-main@.service", "main"),
        ("orderflow-retry@.service", "retry"),
        ("orderflow-dashboard.service", "operator"),
    ],
)
def test_each_unit_signs_in_as_its_own_principal(
    secured_run: Report,
    passwords: dict[str, str],
    secrets_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    unit: str,
    principal: str,
) -> None:
    uploads = secured_run["app-1"]["uploads"]
    env_file, password_file = (
        f"{CREDENTIALS}/{principal}.env",
        f"{CREDENTIALS}/{principal}.password",
    )
    unit_text = uploads[f"/etc/systemd/system/{unit}"]
    assert f"\nEnvironmentFile={env_file}\n" in unit_text
    assert f"\nLoadCredential=orderflow_sasl_password:{password_file}\n" in unit_text
    # Root's: systemd reads them for the unit; the other units (same user) cannot.
    for path in (env_file, password_file):
        assert file_commands(secured_run, "app-1", path) == {
            f"chmod 600 {path}",
            f"chown root:root {path}",
        }
    assert "PASSWORD" not in uploads[env_file]
    assert uploads[password_file] == passwords[principal]
    # What systemd hands the process is what the settings read: its environment files, and
    # the credential in $CREDENTIALS_DIRECTORY (the CA at its local path here).
    monkeypatch.delenv("ORDERFLOW_CONFIG", raising=False)
    for text in (uploads["/etc/orderflow/orderflow.env"], uploads[env_file]):
        for key, value in properties(text).items():
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("ORDERFLOW_SSL_CA_LOCATION", str(secrets_dir / "security" / "ca.pem"))
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "orderflow_sasl_password").write_text(uploads[password_file])
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    settings = load_settings()
    assert settings.security_protocol == "SASL_SSL"
    assert settings.sasl_mechanism == "SCRAM-SHA-512"
    assert settings.sasl_username == principal
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == passwords[principal]
    assert properties(uploads[env_file])["ORDERFLOW_SSL_CA_LOCATION"] == "/etc/orderflow/tls/ca.pem"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize(
    "unit", ["orderflow-main@.service", "orderflow-retry@.service", "orderflow-dashboard.service"]
)
def test_systemd_analyze_verify_accepts_the_secured_unit(
    secured_run: Report, unit: str, tmp_path: Path
) -> None:
    name = unit.replace("@.service", "@1.service")
    text = secured_run["app-1"]["uploads"][f"/etc/systemd/system/{unit}"].replace(
        "/opt/orderflow/venv/bin/orderflow", str(Path(sys.executable).with_name("orderflow"))
    )
    assert "LoadCredential=" in text
    (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / name)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    complaints = [line for line in result.stderr.splitlines() if name in line]
    assert result.returncode == 0 and not complaints, result.stderr


def test_topics_are_created_as_admin_and_acls_set_as_the_broker_once(
    secured_run: Report,
) -> None:
    names = op_names(secured_run, "app-1")
    acls = "Set the ACLs of every principal (once, from one app host)"
    topics = "Create the orderflow topics (once, from one app host)"
    assert names.index(acls) < names.index(topics)
    (acl_command,) = find_op(secured_run, "app-1", acls)["commands"]
    assert "orderflow kafka acls" in acl_command
    broker_env, broker_password = f"{CREDENTIALS}/broker.env", f"{CREDENTIALS}/broker.password"
    assert f"-p EnvironmentFile={broker_env}" in acl_command
    assert f"-p LoadCredential=orderflow_sasl_password:{broker_password}" in acl_command
    assert acl_command.endswith(f"rm -f {broker_env} {broker_password}; exit $rc")
    assert find_op(secured_run, "app-1", acls)["run_once"]
    for path in (broker_env, broker_password):
        assert file_commands(secured_run, "app-1", path) == {
            f"chmod 600 {path}",
            f"chown root:root {path}",
        }
    (topics_command,) = find_op(secured_run, "app-1", topics)["commands"]
    assert f"-p EnvironmentFile={CREDENTIALS}/admin.env" in topics_command
    assert f"-p LoadCredential=orderflow_sasl_password:{CREDENTIALS}/admin.password" in (
        topics_command
    )


def test_console_uses_its_own_read_only_principal(
    secured_run: Report, passwords: dict[str, str]
) -> None:
    from tests.deploy.test_compose import CONSOLE_COMPOSE, parse_env, resolved

    env = parse_env(secured_run["app-1"]["uploads"]["/opt/redpanda-console/.env"])
    console = resolved(CONSOLE_COMPOSE, env)["services"]["console"]
    environment = console["environment"]
    assert environment["KAFKA_SASL_ENABLED"] == "true"
    assert environment["KAFKA_SASL_USERNAME"] == "console"
    assert environment["KAFKA_SASL_PASSWORD"] == passwords["console"]
    assert environment["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert environment["KAFKA_TLS_ENABLED"] == "true"
    assert console["volumes"] == [
        f"/etc/orderflow/tls/ca.pem:{environment['KAFKA_TLS_CAFILEPATH']}:ro"
    ]
    assert file_commands(secured_run, "app-1", "/opt/redpanda-console/.env") == {
        "chmod 600 /opt/redpanda-console/.env",
        "chown root:root /opt/redpanda-console/.env",
    }


def test_no_password_in_any_logged_operation(
    secured_run: Report, passwords: dict[str, str]
) -> None:
    """pyinfra prints operation names and commands: the secrets travel only as file contents."""
    logged: list[str] = []
    for report in secured_run.values():
        for op in report["ops"]:
            logged += [op["name"], *op["commands"]]
        logged += report["commands"]
    text = "\n".join(logged)
    leaked = [user for user, password in passwords.items() if password in text]
    assert not leaked, f"passwords of {leaked} appear in operation names or commands"
    assert "PRIVATE KEY" not in text


def test_a_second_secured_run_reuses_the_secrets_and_restarts_nothing(
    fake_deploy: Callable[..., Report], secured_run: Report, secrets_dir: Path
) -> None:
    """Hosts in the state the first run left (the broker's credentials gone again from app-1,
    every broker formatted): the secrets are reused, only the broker's credentials travel
    again, for the ACL step, and the app units are not restarted."""
    meta = "/var/lib/kafka/data/meta.properties"
    formatted = {
        f"test -L {meta} )": f"user=kafka group=kafka mode=-rw-r--r-- atime=0 mtime=0 ctime=0 "
        f"size=1 '{meta}'"
    }
    host_responses = {}
    for host in secured_run:
        converged = converged_responses(secured_run, host)
        host_responses[host] = {
            **{k: v for k, v in converged.items() if f"{CREDENTIALS}/broker." not in k},
            **(formatted if host in BROKERS else {}),
        }
    again = fake_deploy(
        host_responses=host_responses,
        data={
            "kafka_security": "sasl_ssl",
            "kafka_runtime": "jars",
            "orderflow_secrets_dir": str(secrets_dir),
        },
    )
    for host in BROKERS:
        # The jars' directory sync is not modelled by converged_responses: leave the jars out.
        sent = [u for u in uploads(again, host) if "/opt/kafka/kafka-" not in u]
        assert sent == [], host  # the same certificates, settings and SCRAM users
        names = op_names(again, host)
        assert not [name for name in names if name.startswith("Format this node")], host
    sent = uploads(again, "app-1")
    assert len(sent) == 2 and all(f"{CREDENTIALS}/broker." in u for u in sent), sent
    assert executed(again, "app-1", "Set the ACLs of every principal (once, from one app host)")
    for name in (
        "Restart the processors (code, settings or unit changed)",
        "Restart the dashboard (code, settings or unit changed)",
    ):
        assert not executed(again, "app-1", name), name


def test_plaintext_stays_the_default(fresh_run: Report) -> None:
    uploads = fresh_run["app-1"]["uploads"]
    assert not [path for path in uploads if path.startswith(CREDENTIALS)]
    assert (
        "EnvironmentFile=" + CREDENTIALS
        not in uploads["/etc/systemd/system/orderflow-main@.service"]
    )
    assert "ORDERFLOW_SECURITY_PROTOCOL" not in uploads["/etc/orderflow/orderflow.env"]
    assert not any("kafka acls" in name for name in op_names(fresh_run, "app-1"))
    assert not [path for path in fresh_run["kafka-1"]["uploads"] if "/tls/" in path]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kafka_security": "tls", "kafka_runtime": "jars"}, "kafka_security must be one of"),
        ({"kafka_security": "sasl_ssl", "kafka_runtime": "docker"}, "needs kafka_runtime=jars"),
    ],
)
def test_unusable_security_modes_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(DeployError, match=message):
        security.secured(SimpleNamespace(**data))


def test_plaintext_needs_no_secrets() -> None:
    assert security.secured(SimpleNamespace(kafka_security="plaintext")) is False
    assert security.secured(SimpleNamespace(kafka_security=None)) is False


def test_the_jars_broker_requires_its_data_mount(secured_run: Report) -> None:
    for host in BROKERS:
        unit = secured_run[host]["uploads"]["/etc/systemd/system/kafka.service"]
        assert "\nRequiresMountsFor=/var/lib/kafka/" in unit, unit
