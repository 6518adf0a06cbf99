"""The secured broker's settings, in one place for the local cluster and the VM deploy.

Pure: strings in, ``server.properties`` keys out. The shape:

- ``CLIENT`` listener: SASL_SSL with SCRAM-SHA-512, for applications and between brokers
  (brokers authenticate as ``BROKER_USER``, a super user).
- ``CONTROLLER`` listener: TLS with client certificates (SCRAM cannot work there: the
  credentials live in the metadata the controllers serve). A node's principal is its
  certificate's CN (``node-1``…), mapped by ``ssl.principal.mapping.rules``; nodes are super users.
- ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``: a principal may do only
  what an ACL grants it (``processors.acls``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from processors.errors import SettingsError

SCRAM_MECHANISM = "SCRAM-SHA-512"
BROKER_USER = "broker"
CLIENT_LISTENER = "CLIENT"
CONTROLLER_LISTENER = "CONTROLLER"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# Passwords end up inside a JAAS string and a StorageTool argument: keep them to a safe alphabet.
_SAFE_SECRET = re.compile(r"^[A-Za-z0-9_.~+/=-]{16,256}$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_secret(name: str, password: str) -> None:
    """Raise ``SettingsError`` (naming the user, never the value) for an unusable password."""
    if not _SAFE_NAME.match(name):
        raise SettingsError(f"SCRAM user name {name!r} must match {_SAFE_NAME.pattern}")
    if not _SAFE_SECRET.match(password):
        raise SettingsError(
            f"the password of SCRAM user {name} must be 16-256 characters of A-Z a-z 0-9 _.~+/=-"
        )


def scram_jaas(username: str, password: str) -> str:
    check_secret(username, password)
    return (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{username}" password="{password}";'
    )


def scram_format_arguments(passwords: Mapping[str, str]) -> list[str]:
    """``kafka-storage format`` arguments creating every user (one per line in an @file)."""
    lines = []
    for name, password in sorted(passwords.items()):
        check_secret(name, password)
        lines += ["--add-scram", f"{SCRAM_MECHANISM}=[name={name},password={password}]"]
    return lines


def secure_broker_properties(
    *,
    client_bind: str,
    controller_bind: str,
    advertised_client: str,
    keystore: str,
    truststore: str,
    broker_password: str,
    node_principals: Sequence[str],
) -> dict[str, str]:
    """Listener, TLS, SASL and authorizer keys of one secured combined broker+controller node.

    ``client_bind``/``controller_bind``/``advertised_client`` are ``host:port``; ``keystore`` a
    PEM file with the node's key and certificate chain; ``truststore`` the CA's PEM file.
    """
    client, controller = CLIENT_LISTENER, CONTROLLER_LISTENER
    prefix = f"listener.name.{client.lower()}"
    super_users = [f"User:{BROKER_USER}", *(f"User:{name}" for name in node_principals)]
    return {
        "listeners": f"{client}://{client_bind},{controller}://{controller_bind}",
        "advertised.listeners": f"{client}://{advertised_client}",
        "inter.broker.listener.name": client,
        "controller.listener.names": controller,
        "listener.security.protocol.map": f"{client}:SASL_SSL,{controller}:SSL",
        f"{prefix}.sasl.enabled.mechanisms": SCRAM_MECHANISM,
        f"{prefix}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": scram_jaas(
            BROKER_USER, broker_password
        ),
        "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
        f"listener.name.{controller.lower()}.ssl.client.auth": "required",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": keystore,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": truststore,
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+)$/$1/,DEFAULT",
        "authorizer.class.name": AUTHORIZER,
        "allow.everyone.if.no.acl.found": "false",
        "super.users": ";".join(super_users),
    }
