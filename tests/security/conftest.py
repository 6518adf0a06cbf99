"""A secured local cluster (SASL_SSL, SCRAM-SHA-512, TLS, ACLs) started once for these tests.

``secure`` gives each test its principals' settings for its own topic and group names, with the
ACLs of every principal set for exactly those names. Every log a test writes goes under
``SecureCluster.log_dir``, which ``test_zz_no_password_in_logs`` greps for every password.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.localkafka import LocalKafka, layout_on_ports
from deploy.localkafka.net import free_ports
from processors.acls import all_grants
from processors.kafka.acls import apply_grants
from processors.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
_NAMES = (
    "topic_main", "topic_retry", "topic_dlq", "topic_processed", "group_main", "group_retry",
    "state_dir", "commit_interval_s", "bootstrap_servers",
)  # fmt: skip


class SecureCluster:
    """A running secured cluster and the secrets it generated."""

    def __init__(self, manager: LocalKafka, bootstrap: str, log_dir: Path) -> None:
        self.manager = manager
        self.secrets = manager.secrets
        self.bootstrap = bootstrap
        self.log_dir = log_dir

    def as_user(self, user: str, names: Settings) -> Settings:
        """``names`` (topics, groups, …) authenticating as ``user``."""
        creds = self.secrets.settings(user, self.bootstrap)
        fields = {
            "security_protocol", "sasl_mechanism", "sasl_username", "sasl_password",
            "ssl_ca_location", "bootstrap_servers",
        }  # fmt: skip
        return names.model_copy(update={name: getattr(creds, name) for name in fields})

    def grant(self, names: Settings) -> None:
        apply_grants(self.secrets.settings("broker", self.bootstrap), all_grants(names))

    def env(self, user: str | None, names: Settings, **extra: str) -> dict[str, str]:
        """A child process's environment: ``names`` and (if ``user``) that user's client file."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
        for name in _NAMES:
            env[f"ORDERFLOW_{name.upper()}"] = str(getattr(names, name))
        env["ORDERFLOW_BOOTSTRAP_SERVERS"] = self.bootstrap
        if user is not None:
            env |= read_env_file(self.secrets.client_env(user))
        env["PYTHONPATH"] = str(ROOT)
        return env | extra

    def passwords(self) -> dict[str, str]:
        return self.secrets.passwords()


def read_env_file(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@contextlib.contextmanager
def secured_cluster(brokers: int, log_dir: Path) -> Iterator[SecureCluster]:
    """A secured jar cluster of ``brokers`` nodes on free ports; stopped and purged on exit.

    Its node logs are copied to ``log_dir`` first, for the password grep.
    """
    with tempfile.TemporaryDirectory(prefix="orderflow-secure-kafka-") as tmp:
        ports = free_ports(2 * brokers)
        layout = dataclasses.replace(layout_on_ports(ports[:brokers], ports[brokers:]), secure=True)
        manager = LocalKafka(Path(tmp))
        try:
            result = manager.up(layout, timeout_s=300)  # only catches a hang: 2 cores, busy
            yield SecureCluster(manager, result.layout.bootstrap_servers, log_dir)
        finally:
            manager.down(timeout_s=20)
            for node in layout.nodes:
                for log in (manager.log_file(node), manager.console_log(node)):
                    if log.exists():
                        shutil.copy(log, log_dir / f"kafka-{brokers}n-{node.name}-{log.name}")
            manager.down(purge=True, timeout_s=20)


@pytest.fixture(scope="session")
def security_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("security-logs")


@pytest.fixture(scope="session")
def password_registry() -> dict[str, str]:
    """Every password any secured cluster of this session generated (name -> password)."""
    return {}


@pytest.fixture(scope="session")
def secure_cluster(
    security_log_dir: Path, password_registry: dict[str, str]
) -> Iterator[SecureCluster]:
    with secured_cluster(1, security_log_dir) as cluster:
        password_registry.update({f"1n-{k}": v for k, v in cluster.passwords().items()})
        yield cluster


@pytest.fixture
def names(unique: str, tmp_path: Path) -> Settings:
    """Topic and group names no other test uses (no connection settings)."""
    return Settings.model_construct(
        topic_main=f"s-{unique}.orders.v1",
        topic_retry=f"s-{unique}.orders.retry",
        topic_dlq=f"s-{unique}.orders.dlq",
        topic_processed=f"s-{unique}.orders.processed",
        group_main=f"g-{unique}-main",
        group_retry=f"g-{unique}-retry",
        state_dir=tmp_path / "state",
        commit_interval_s=0.2,
    )


@pytest.fixture
def secure(secure_cluster: SecureCluster, names: Settings) -> SecureCluster:
    """The session's secured cluster with every principal's ACLs set for this test's names."""
    secure_cluster.grant(names)
    return secure_cluster
