"""Start the dashboard: ``streamlit run dashboard/app.py`` as a child process.

The child inherits the environment, so the ``ORDERFLOW_*`` settings reach the app, which loads
them once per process. An open dashboard (no auth in the secrets) only ever listens on loopback.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path

from dashboard.auth import (
    AuthConfig,
    auth_config,
    default_secrets_files,
    is_loopback,
    read_secrets_files,
)
from processors.errors import SettingsError

log = logging.getLogger(__name__)

APP_PATH = Path(__file__).with_name("app.py")


def resolve_auth(secrets_file: Path | None, cwd: Path, home: Path) -> AuthConfig:
    """The auth mode the app will see: from ``secrets_file`` if given, else Streamlit's defaults."""
    if secrets_file is not None:
        if not secrets_file.is_file():
            raise SettingsError(f"secrets file not found: {secrets_file}")
        paths = [secrets_file]
    else:
        paths = default_secrets_files(cwd, home, APP_PATH.parent)
    return auth_config(read_secrets_files(paths))


def check_bind(address: str, auth: AuthConfig) -> None:
    """Refuse a non-loopback address unless a password or OIDC login protects every page."""
    if not auth.required and not is_loopback(address):
        raise SettingsError(
            f"refusing to serve the dashboard on {address} without auth: set [auth] password "
            "or OIDC in .streamlit/secrets.toml, or bind to 127.0.0.1"
        )


def streamlit_command(address: str, port: int, secrets_file: Path | None = None) -> list[str]:
    """The exact ``streamlit run`` command line: headless, no usage statistics, no file watcher."""
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]
    if secrets_file is not None:
        command += ["--secrets.files", str(secrets_file)]
    return command


def run_dashboard(address: str, port: int, secrets_file: Path | None, cwd: Path, home: Path) -> int:
    """Check the bind address against the auth mode, then run Streamlit until it exits.

    Returns Streamlit's exit code. Raises ``SettingsError`` before starting anything when an
    open dashboard would listen beyond loopback or the secrets file is unreadable.
    """
    auth = resolve_auth(secrets_file, cwd, home)
    check_bind(address, auth)
    command = streamlit_command(address, port, secrets_file)
    log.info("dashboard address=%s port=%d auth=%s", address, port, auth.mode)
    return _run_forwarding_signals(command)


def _run_forwarding_signals(command: list[str]) -> int:
    """Run ``command``; SIGTERM/SIGHUP sent to this process are passed on to it, so stopping
    ``orderflow dashboard`` by its pid never leaves Streamlit running."""
    with subprocess.Popen(command) as child:

        def forward(signum: int, _frame: object) -> None:
            child.send_signal(signum)

        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
        try:
            while True:
                try:
                    return child.wait()
                except KeyboardInterrupt:  # the terminal sent SIGINT to both; wait for Streamlit
                    child.send_signal(signal.SIGINT)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
