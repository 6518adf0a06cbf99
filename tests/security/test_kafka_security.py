"""The secured broker settings shared by the local cluster and the VM deploy (pure)."""

from __future__ import annotations

import pytest

from deploy.localkafka.broker_security import (
    check_secret,
    scram_format_arguments,
    scram_jaas,
    secure_broker_properties,
)
from processors.errors import SettingsError

SECRET = "s3cret-s3cret-s3cret"


def props() -> dict[str, str]:
    return secure_broker_properties(
        client_bind="127.0.0.1:9092", controller_bind="127.0.0.1:9093",
        advertised_client="127.0.0.1:9092", keystore="/k/node-1.pem", truststore="/k/ca.pem",
        broker_password=SECRET, node_principals=["node-1", "node-2"],
    )  # fmt: skip


def test_no_plaintext_listener_and_deny_by_default() -> None:
    p = props()
    assert p["listener.security.protocol.map"] == "CLIENT:SASL_SSL,CONTROLLER:SSL"
    assert "PLAINTEXT" not in "".join(p.values())
    assert p["listener.name.controller.ssl.client.auth"] == "required"
    assert p["allow.everyone.if.no.acl.found"] == "false"
    assert p["authorizer.class.name"].endswith("StandardAuthorizer")
    assert p["super.users"] == "User:broker;User:node-1;User:node-2"
    assert p["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert p["ssl.endpoint.identification.algorithm"] == "https"


def test_scram_users_for_format() -> None:
    args = scram_format_arguments({"main": SECRET, "broker": SECRET + "x"})
    assert args == [
        "--add-scram", f"SCRAM-SHA-512=[name=broker,password={SECRET}x]",
        "--add-scram", f"SCRAM-SHA-512=[name=main,password={SECRET}]",
    ]  # fmt: skip


@pytest.mark.parametrize("password", ['with"quote-1234567', "short", "with space 123456789", ""])
def test_unsafe_passwords_are_refused_without_echoing_them(password: str) -> None:
    with pytest.raises(SettingsError) as caught:
        scram_jaas("main", password)
    assert "main" in str(caught.value)
    assert not password or password not in str(caught.value)


def test_unsafe_user_names_are_refused() -> None:
    with pytest.raises(SettingsError):
        check_secret("a,b=c", SECRET)
