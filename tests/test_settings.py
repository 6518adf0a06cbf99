"""The one settings object: sources, validation, secrets."""

from __future__ import annotations

import pytest

from processors.errors import SettingsError
from processors.kafka.clients import connection_config
from processors.settings import DAY_MS, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in __import__("os").environ if n.startswith("ORDERFLOW_")]:
        monkeypatch.delenv(name)


def test_defaults_are_the_documented_topics_and_retention():
    settings = load_settings()
    assert settings.all_topics == ["orders.v1", "orders.retry", "orders.dlq", "orders.processed"]
    assert settings.retention_dlq_ms >= 14 * DAY_MS
    assert settings.retention_retry_ms >= 7 * DAY_MS
    assert settings.processing_guarantee == "exactly-once"


def test_systemd_credentials_are_read_and_environment_wins(monkeypatch, tmp_path):
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "orderflow_sasl_password").write_text("from-load-credential-0123\n")
    (credentials / "orderflow_sasl_username").write_text("main")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    monkeypatch.setenv("ORDERFLOW_SECURITY_PROTOCOL", "SASL_SSL")
    settings = load_settings()
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == "from-load-credential-0123"
    assert settings.sasl_username == "main"
    monkeypatch.setenv("ORDERFLOW_SASL_USERNAME", "retry")
    assert load_settings().sasl_username == "retry"
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="needs sasl_username and sasl_password"):
        load_settings()


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("ORDERFLOW_PARTITIONS", "6")
    monkeypatch.setenv("ORDERFLOW_TOPIC_PROCESSED", "")
    settings = load_settings()
    assert settings.partitions == 6
    assert settings.all_topics == ["orders.v1", "orders.retry", "orders.dlq"]


def test_config_file_is_read_and_environment_wins(monkeypatch, tmp_path):
    config = tmp_path / "custom.toml"
    config.write_text('bootstrap_servers = "kafka-1:9092"\npartitions = 12\n')
    monkeypatch.setenv("ORDERFLOW_CONFIG", str(config))
    monkeypatch.setenv("ORDERFLOW_PARTITIONS", "4")
    settings = load_settings()
    assert settings.bootstrap_servers == "kafka-1:9092"
    assert settings.partitions == 4


def test_missing_config_file_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("ORDERFLOW_CONFIG", "/nonexistent/orderflow.toml")
    with pytest.raises(SettingsError, match="ORDERFLOW_CONFIG: no such file"):
        load_settings()


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("ORDERFLOW_PARTITIONS", "zero", "ORDERFLOW_PARTITIONS: Input should be a valid integer"),
        (
            "ORDERFLOW_PARTITIONS",
            "0",
            "ORDERFLOW_PARTITIONS: Input should be greater than or equal to 1",
        ),
        ("ORDERFLOW_SECURITY_PROTOCOL", "TLS", "ORDERFLOW_SECURITY_PROTOCOL: Input should be"),
        ("ORDERFLOW_RETENTION_DLQ_MS", "1000", "ORDERFLOW_RETENTION_DLQ_MS"),
        ("ORDERFLOW_MAX_ATTEMPTS", "0", "ORDERFLOW_MAX_ATTEMPTS"),
        ("ORDERFLOW_BACKOFF_INITIAL_MS", "-5", "ORDERFLOW_BACKOFF_INITIAL_MS"),
    ],
)
def test_invalid_setting_names_the_key(monkeypatch, env, value, expected):
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("invalid setting ")
    assert expected in message
    assert "\n" not in message
    assert caught.value.exit_code == 2


def test_contradictory_settings_are_rejected():
    with pytest.raises(SettingsError, match="needs sasl_username and sasl_password"):
        load_settings(security_protocol="SASL_SSL")
    with pytest.raises(SettingsError, match="topic names must be distinct"):
        load_settings(topic_retry="orders.v1")


def test_password_never_appears_in_repr_or_errors():
    settings = load_settings(
        security_protocol="SASL_SSL", sasl_username="alice", sasl_password="s3cret-pw"
    )
    assert "s3cret-pw" not in repr(settings)
    assert "s3cret-pw" not in str(settings.model_dump())
    assert connection_config(settings)["sasl.password"] == "s3cret-pw"
    assert connection_config(settings)["sasl.mechanism"] == "SCRAM-SHA-256"
