"""No generated password appears in any log of the run.

Runs after the other modules of tests/security (pytest orders modules by name): by then every
CLI run and processor of those tests has left its output in the shared log dir, and the 3-node
cluster's broker logs were copied there. The session cluster's own logs are read in place.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.settings import Settings
from tests.security.conftest import SecureCluster
from tests.security.support import orderflow

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_no_password_in_any_log(
    secure: SecureCluster, names: Settings, password_registry: dict[str, str]
) -> None:
    # Runs of its own, so the grep never looks at nothing: a success, a failure, status, help.
    for args in (("topics", "create"), ("status",), ("main", "--help"), ("dlq", "--help")):
        orderflow(secure, secure.env("admin", names), *args)
    wrong = secure.env("operator", names, ORDERFLOW_SASL_USERNAME="admin")
    assert orderflow(secure, wrong, "dlq", "list").returncode != 0

    layout = secure.manager.recorded_layout()
    assert layout is not None
    files = [p for p in secure.log_dir.iterdir() if p.is_file()]
    for node in layout.nodes:
        files += [secure.manager.log_file(node), secure.manager.console_log(node)]
    texts = {path: path.read_text(errors="replace") for path in files if path.exists()}
    assert any(p.name == "server.log" and len(t) > 10_000 for p, t in texts.items())
    assert sum(p.name.startswith("cli-") for p in texts) >= 5
    passwords = {**password_registry, **secure.passwords()}
    assert len(passwords) >= 6
    leaks = [
        f"{user}'s password in {path}"
        for user, password in passwords.items()
        for path, text in texts.items()
        if password in text
    ]
    assert not leaks, leaks
    print(
        f"grepped {len(texts)} logs ({sum(map(len, texts.values()))} chars) for "
        f"{len(passwords)} passwords: none found"
    )


def test_files_that_must_hold_a_password_are_private(secure: SecureCluster) -> None:
    """The only places a password lives: scram.json, the client files, server.properties."""
    layout = secure.manager.recorded_layout()
    assert layout is not None
    passwords = secure.passwords().values()
    holders = [
        path
        for path in Path(secure.manager.state_dir).rglob("*")
        if path.is_file()
        and "data" not in path.relative_to(secure.manager.state_dir).parts
        and any(p in path.read_text(errors="replace") for p in passwords)
    ]
    assert holders
    assert {p.name for p in holders} <= {
        "scram.json",
        "server.properties",
        *(f"{u}.env" for u in secure.secrets.passwords()),
    }
    assert all(p.stat().st_mode & 0o077 == 0 for p in holders), holders
