"""``orderflow dashboard``: serve the Streamlit dashboard (see docs/dashboard.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from processors.settings import load_settings


@click.command()
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback needs auth in secrets.toml.",
)
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--secrets",
    "secrets_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="secrets.toml holding [auth] (default: Streamlit's .streamlit/secrets.toml lookup).",
)
def dashboard(address: str, port: int, secrets_file: Path | None) -> None:
    """Serve the dashboard: live flow, produce form, topic browser, DLQ redrive, order trace."""
    from dashboard.launch import run_dashboard

    load_settings()  # fail here, in one line, rather than on the first page load
    sys.exit(run_dashboard(address, port, secrets_file, cwd=Path.cwd(), home=Path.home()))
