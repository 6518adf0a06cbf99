"""Who may open the dashboard: the auth mode read from Streamlit secrets, and the password check.

Pure: no Streamlit import, so the CLI can decide whether a non-loopback address is allowed
before it starts anything. Two modes, from the ``[auth]`` section of ``secrets.toml``:

- **OIDC** when ``[auth]`` holds ``redirect_uri`` and ``cookie_secret`` plus a provider
  (``client_id`` directly in ``[auth]``, or an ``[auth.<name>]`` table): pages call ``st.login``.
- **password** when ``[auth] password = "…"`` is set: compared in constant time.

With neither, the dashboard is open and must only listen on a loopback address.
"""

from __future__ import annotations

import hmac
import ipaddress
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from processors.errors import SettingsError

AuthMode = Literal["oidc", "password", "none"]


@dataclass(frozen=True)
class AuthConfig:
    """The auth mode in force. ``provider`` is the OIDC provider name (``None`` = default)."""

    mode: AuthMode
    provider: str | None = None

    @property
    def required(self) -> bool:
        return self.mode != "none"


def auth_config(secrets: Mapping[str, Any]) -> AuthConfig:
    """Read the auth mode from a secrets mapping (``st.secrets`` or a parsed ``secrets.toml``).

    OIDC wins when both are configured. A present but empty password counts as not configured.
    """
    section = secrets.get("auth")
    if not isinstance(section, Mapping):
        return AuthConfig("none")
    if "redirect_uri" in section and "cookie_secret" in section:
        if "client_id" in section:
            return AuthConfig("oidc")
        for name, value in section.items():
            if isinstance(value, Mapping) and "client_id" in value:
                return AuthConfig("oidc", provider=str(name))
    password = section.get("password")
    if isinstance(password, str) and password:
        return AuthConfig("password")
    return AuthConfig("none")


KAFKA_SECTION = "kafka"


def kafka_overrides(secrets: Mapping[str, Any]) -> dict[str, Any]:
    """Settings from the ``[kafka]`` section of ``secrets.toml`` (e.g. ``sasl_username``,
    ``sasl_password``, ``ssl_ca_location``), so the dashboard's Kafka credentials can live with
    its other secrets instead of the environment. Unknown keys are ignored by the settings."""
    section = secrets.get(KAFKA_SECTION)
    if not isinstance(section, Mapping):
        return {}
    return {str(key): value for key, value in section.items() if value is not None}


def password_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, so response time does not reveal how much of a guess matched."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def is_loopback(address: str) -> bool:
    """True for ``localhost`` and any loopback IPv4/IPv6 address; false for names and wildcards."""
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def default_secrets_files(cwd: Path, home: Path, app_dir: Path) -> list[Path]:
    """Where Streamlit looks for ``secrets.toml`` by default, lowest precedence first."""
    return [
        home / ".streamlit" / "secrets.toml",
        cwd / ".streamlit" / "secrets.toml",
        app_dir / ".streamlit" / "secrets.toml",
    ]


def read_secrets_files(paths: Iterable[Path]) -> dict[str, Any]:
    """Merge the existing files (later ones win per top-level key, as in Streamlit).

    Raises ``SettingsError`` naming the file when one is not valid TOML.
    """
    merged: dict[str, Any] = {}
    for path in paths:
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read secrets file {path}: {exc}") from None
        merged.update(data)
    return merged
