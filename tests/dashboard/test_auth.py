from __future__ import annotations

from pathlib import Path

import pytest

from dashboard import auth
from processors.errors import SettingsError

OIDC = {"redirect_uri": "http://h/oauth2callback", "cookie_secret": "s"}


@pytest.mark.parametrize(
    ("secrets", "mode", "provider"),
    [
        ({}, "none", None),
        ({"auth": "oops"}, "none", None),
        ({"auth": {"password": ""}}, "none", None),
        ({"auth": {"password": "pw"}}, "password", None),
        ({"auth": {**OIDC, "client_id": "c"}}, "oidc", None),
        ({"auth": {**OIDC, "google": {"client_id": "c"}}}, "oidc", "google"),
        ({"auth": {**OIDC, "client_id": "c", "password": "pw"}}, "oidc", None),
        ({"auth": {**OIDC, "password": "pw"}}, "password", None),  # OIDC without a provider
    ],
)
def test_auth_config(secrets: dict, mode: str, provider: str | None) -> None:
    config = auth.auth_config(secrets)
    assert (config.mode, config.provider) == (mode, provider)
    assert config.required == (mode != "none")


def test_password_matches() -> None:
    assert auth.password_matches("s3cret", "s3cret")
    assert not auth.password_matches("s3cre", "s3cret")
    assert not auth.password_matches("", "s3cret")
    assert auth.password_matches("é", "é")


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("::", False),
        ("dashboard.example", False),
    ],
)
def test_is_loopback(address: str, loopback: bool) -> None:
    assert auth.is_loopback(address) is loopback


def test_read_secrets_files_merges_later_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text('[auth]\npassword = "one"\n[other]\nx = 1\n')
    second.write_text('[auth]\npassword = "two"\n')
    merged = auth.read_secrets_files([first, tmp_path / "missing.toml", second])
    assert merged == {"auth": {"password": "two"}, "other": {"x": 1}}


def test_read_secrets_files_bad_toml_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "secrets.toml"
    bad.write_text("[auth\n")
    with pytest.raises(SettingsError, match="cannot read secrets file"):
        auth.read_secrets_files([bad])


def test_default_secrets_files_order(tmp_path: Path) -> None:
    paths = auth.default_secrets_files(tmp_path / "cwd", tmp_path / "home", tmp_path / "app")
    assert paths[0].parent.parent.name == "home" and paths[-1].parent.parent.name == "app"
