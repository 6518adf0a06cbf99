"""The secured VM deploy (``kafka_security: sasl_ssl``): its secrets on this machine, and the
broker settings and client files they give.

The secrets are the operator's, created once on the deploying machine and kept outside the
repository: ``orderflow_secrets_dir`` (``ORDERFLOW_SECRETS_DIR``, default
``~/.config/orderflow/<kafka_cluster_id>/``) holds ``security/ca.pem``, ``ca.key``,
``node-<id>.pem`` (certificates for the brokers' private IPs) and ``security/scram.json`` (one
password per SCRAM user), written by the same code as the local secured cluster
(``deploy.localkafka.security``, ``deploy.localkafka.certs``): dirs 0700, files 0600. An
operator may put their own ``scram.json`` there before the first deploy.

Secrets only ever travel as uploaded file contents (mode 0600), never in an operation's name
or command, which pyinfra prints.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pyinfra.api.exceptions import DeployError

from deploy.localkafka.broker_security import (
    BROKER_USER,
    SCRAM_MECHANISM,
    scram_format_arguments,
    scram_jaas,
    secure_broker_properties,
)
from deploy.localkafka.certs import CA_CERT, NodeIdentity, ensure_certificates, node_file
from deploy.localkafka.security import ClusterSecrets
from processors.errors import OrderflowError

MODES = ("plaintext", "sasl_ssl")
# On the brokers (jars runtime): the node's key + chain and the CA, owned by the kafka user.
BROKER_TLS_DIR = "/etc/kafka/tls"
BROKER_KEYSTORE = f"{BROKER_TLS_DIR}/node.pem"
BROKER_TRUSTSTORE = f"{BROKER_TLS_DIR}/ca.pem"


def node_name(node_id: int) -> str:
    """The node's TLS principal (its certificate's CN), as on the local cluster."""
    return f"node-{node_id}"


def secured(data: Any) -> bool:
    """True for ``kafka_security: sasl_ssl``; a ``DeployError`` for an unknown mode."""
    mode = getattr(data, "kafka_security", None) or "plaintext"
    if mode not in MODES:
        raise DeployError(f"kafka_security must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "sasl_ssl" and getattr(data, "kafka_runtime", "docker") != "jars":
        raise DeployError(
            "kafka_security=sasl_ssl needs kafka_runtime=jars "
            "(the docker runtime's compose file has PLAINTEXT listeners only)"
        )
    return mode == "sasl_ssl"


def secrets_dir(data: Any) -> Path:
    configured = getattr(data, "orderflow_secrets_dir", None)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".config" / "orderflow" / str(data.kafka_cluster_id)


@functools.cache
def _ensured(directory: Path, nodes: tuple[tuple[int, str], ...]) -> ClusterSecrets:
    """Create what is missing under ``directory``, once per deploy (every host asks)."""
    cluster = ClusterSecrets(directory)
    try:
        ensure_certificates(
            cluster.directory, [NodeIdentity(node_name(node_id), (ip,)) for node_id, ip in nodes]
        )
        cluster.passwords()
    except (OrderflowError, OSError) as exc:
        raise DeployError(f"cannot prepare the Kafka secrets in {directory}: {exc}") from None
    return cluster


def cluster_secrets(data: Any) -> ClusterSecrets:
    hosts: Sequence[Mapping] = data.kafka_hosts
    nodes = tuple(sorted((int(h["node_id"]), str(h["private_ip"])) for h in hosts))
    return _ensured(secrets_dir(data), nodes)


def ca_file(data: Any) -> Path:
    return cluster_secrets(data).directory / CA_CERT


def keystore_file(data: Any, node_id: int) -> Path:
    return node_file(cluster_secrets(data).directory, node_name(node_id))


def broker_properties(data: Any) -> dict[str, str]:
    """This broker's secured listener, TLS, SASL and authorizer keys: the local cluster's own
    ``secure_broker_properties``, bound to the host's private IP."""
    client = f"{data.private_ip}:{data.kafka_client_port}"
    return secure_broker_properties(
        client_bind=client,
        controller_bind=f"{data.private_ip}:{data.kafka_controller_port}",
        advertised_client=client,
        keystore=BROKER_KEYSTORE,
        truststore=BROKER_TRUSTSTORE,
        broker_password=password(data, BROKER_USER),
        node_principals=[node_name(int(h["node_id"])) for h in data.kafka_hosts],
    )


def admin_client_properties(data: Any) -> dict[str, str]:
    """What a Kafka admin tool on a broker host needs to sign in as the broker user."""
    return {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": SCRAM_MECHANISM,
        "sasl.jaas.config": scram_jaas(BROKER_USER, password(data, BROKER_USER)),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": BROKER_TRUSTSTORE,
    }


def scram_format_file(data: Any) -> str:
    """``kafka-storage format`` arguments creating every SCRAM user, one per line (an @file)."""
    return "\n".join(scram_format_arguments(cluster_secrets(data).passwords())) + "\n"


# The systemd credential (``LoadCredential=<name>:<file>``) processors.settings reads.
PASSWORD_CREDENTIAL = "orderflow_sasl_password"


def client_settings(user: str, ca_location: str) -> str:
    """An ``EnvironmentFile`` signing in as SCRAM user ``user``, without its password (that one
    is a systemd credential, ``password``)."""
    values = {
        "SECURITY_PROTOCOL": "SASL_SSL",
        "SASL_MECHANISM": SCRAM_MECHANISM,
        "SASL_USERNAME": user,
        "SSL_CA_LOCATION": ca_location,
    }
    header = f"# Managed by pyinfra: Kafka principal {user} (its password: {PASSWORD_CREDENTIAL})\n"
    return header + "".join(f"ORDERFLOW_{key}={value}\n" for key, value in values.items())


def password(data: Any, user: str) -> str:
    return cluster_secrets(data).passwords()[user]


def console_settings(data: Any, ca_location: str) -> dict[str, str]:
    """Redpanda Console's Kafka client variables: its own read-only ``console`` principal."""
    return {
        "KAFKA_SASL_ENABLED": "true",
        "KAFKA_SASL_MECHANISM": SCRAM_MECHANISM,
        "KAFKA_SASL_USERNAME": "console",
        "KAFKA_SASL_PASSWORD": password(data, "console"),
        "KAFKA_TLS_ENABLED": "true",
        "KAFKA_TLS_CAFILEPATH": ca_location,
    }
