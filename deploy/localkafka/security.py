"""The secrets of a secured local cluster: certificates, SCRAM passwords, client settings files.

Under the state dir (dirs 0700, files 0600; nothing here is ever logged)::

    security/ca.pem, ca.key, node-<id>.pem   see ``deploy.localkafka.certs``
    security/scram.json                      {user: password}, generated once, reused
    clients/<principal>.env                  ORDERFLOW_* lines for one principal
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import SecretStr

from deploy.localkafka.broker_security import BROKER_USER, SCRAM_MECHANISM, scram_format_arguments
from deploy.localkafka.certs import (
    CA_CERT,
    NodeIdentity,
    ensure_certificates,
    node_file,
    write_private,
)
from deploy.localkafka.config import Layout, Node
from processors.acls import ROLES
from processors.errors import LocalKafkaError
from processors.settings import Settings

SCRAM_FILE = "scram.json"
USERS: tuple[str, ...] = (BROKER_USER, *ROLES)


class ClusterSecrets:
    """Paths and contents of one state dir's secrets."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / "security"
        self.clients_dir = state_dir / "clients"

    @property
    def ca_file(self) -> Path:
        return self.directory / CA_CERT

    def keystore(self, node: Node) -> Path:
        return node_file(self.directory, node.name)

    def client_env(self, user: str) -> Path:
        return self.clients_dir / f"{user}.env"

    def ensure(self, layout: Layout, *, renew_certs: bool = False) -> bool:
        """Create what is missing (certificates, passwords); True if certificates were issued."""
        issued = ensure_certificates(
            self.directory, [NodeIdentity(node.name) for node in layout.nodes], renew=renew_certs
        )
        self.passwords()
        return issued

    def passwords(self) -> dict[str, str]:
        """Every user's password, generated on first use and kept in ``scram.json``."""
        path = self.directory / SCRAM_FILE
        stored: dict[str, str] = {}
        if path.is_file():
            try:
                stored = {str(k): str(v) for k, v in json.loads(path.read_text()).items()}
            except (ValueError, AttributeError) as exc:
                raise LocalKafkaError(
                    f"unreadable {path} ({type(exc).__name__}); "
                    "`orderflow kafka down --purge` starts over"
                ) from None
        missing = [user for user in USERS if user not in stored]
        if missing:
            stored |= {user: secrets.token_urlsafe(24) for user in missing}
            self.directory.mkdir(parents=True, exist_ok=True)
            write_private(path, json.dumps(stored, indent=2) + "\n")
        return stored

    def format_arguments_file(self, path: Path) -> Path:
        """An ``@file`` for ``kafka-storage format`` creating every SCRAM user (0600).

        The passwords go through a file, not the command line other local users can read.
        """
        lines = scram_format_arguments(self.passwords())
        write_private(path, "\n".join(lines) + "\n")
        return path

    def settings(self, user: str, bootstrap_servers: str, **overrides: object) -> Settings:
        """Client settings authenticating as ``user`` (the broker super user included)."""
        return Settings.model_construct(
            bootstrap_servers=bootstrap_servers,
            security_protocol="SASL_SSL",
            sasl_mechanism=SCRAM_MECHANISM,
            sasl_username=user,
            sasl_password=SecretStr(self.passwords()[user]),
            ssl_ca_location=self.ca_file,
            **overrides,
        )

    def write_client_files(self, bootstrap_servers: str, users: Iterable[str] = ROLES) -> Path:
        """``clients/<user>.env`` for each application principal; returns the directory."""
        passwords = self.passwords()
        self.clients_dir.mkdir(parents=True, exist_ok=True)
        self.clients_dir.chmod(0o700)
        for user in users:
            write_private(self.client_env(user), client_env(user, passwords[user], {
                "BOOTSTRAP_SERVERS": bootstrap_servers,
                "SSL_CA_LOCATION": str(self.ca_file),
            }))  # fmt: skip
        return self.clients_dir


def client_env(user: str, password: str, extra: Mapping[str, str]) -> str:
    values = {
        "SECURITY_PROTOCOL": "SASL_SSL",
        "SASL_MECHANISM": SCRAM_MECHANISM,
        "SASL_USERNAME": user,
        "SASL_PASSWORD": password,
        **extra,
    }
    header = f"# orderflow client settings for SCRAM user {user}; keep private (mode 0600)\n"
    return header + "".join(f"ORDERFLOW_{key}={value}\n" for key, value in values.items())
