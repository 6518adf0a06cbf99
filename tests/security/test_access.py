"""Which librdkafka error texts become which one-line access error (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from processors.kafka.access import cause, denied
from processors.settings import Settings

SASL = Settings.model_construct(
    bootstrap_servers="127.0.0.1:9092", security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512", sasl_username="main", ssl_ca_location=Path("/ca.pem"),
)  # fmt: skip
PLAIN = Settings.model_construct(bootstrap_servers="127.0.0.1:9092")


@pytest.mark.parametrize(
    ("settings", "text", "expected"),
    [
        (SASL, "SASL authentication error: Authentication failed during authentication due to "
         "invalid credentials with SASL mechanism SCRAM-SHA-512", "rejected user main"),
        (SASL, "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed",
         "not signed by a trusted CA (ORDERFLOW_SSL_CA_LOCATION=/ca.pem)"),
        (PLAIN, "127.0.0.1:9092/bootstrap: Disconnected: connection closed by peer: receive 0 "
         "after POLLIN (after 1ms in state APIVERSION_QUERY)", "a PLAINTEXT client (no user)"),
        (PLAIN.model_copy(update={"security_protocol": "SSL"}),
         "Disconnected: SSL connection closed by peer (after 0ms in state UP)", "expects SASL"),
    ],
)  # fmt: skip
def test_access_causes(settings: Settings, text: str, expected: str) -> None:
    line = cause(settings, text)
    assert line is not None and expected in line and "\n" not in line


@pytest.mark.parametrize(
    "text", ["Connect to ipv4#127.0.0.1:9092 failed: Connection refused", "1/1 brokers are down"]
)
def test_other_failures_are_not_access_problems(text: str) -> None:
    assert cause(SASL, text) is None


def test_denials_name_principal_operation_and_resource() -> None:
    err = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    assert denied(SASL, err, "WRITE", "orders.dlq") == (
        "user main (SCRAM-SHA-512) is not allowed to WRITE topic orders.dlq "
        "(TOPIC_AUTHORIZATION_FAILED)"
    )
    group = KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED)
    assert "READ group g1" in (denied(SASL, group, "READ", "g1") or "")
    assert denied(SASL, KafkaError(KafkaError._TIMED_OUT), "WRITE", "x") is None
