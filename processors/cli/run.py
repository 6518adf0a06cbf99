"""``orderflow main`` and ``orderflow retry``: run a processor until SIGTERM/SIGINT."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from processors.settings import Settings, load_settings


def _options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--metrics-port",
            type=click.IntRange(0, 65535),
            help="Serve Prometheus metrics on this port (127.0.0.1 unless ORDERFLOW_METRICS_HOST).",
        ),
        click.option(
            "--instance-id",
            help="Stable, unique id of this instance (transactional id). Default: hostname-pid.",
        ),
        click.option("--handler", help="Order handler as package.module:function."),
        click.option(
            "--processing-guarantee",
            type=click.Choice(["exactly-once", "at-least-once"]),
            help="Delivery guarantee (default: exactly-once).",
        ),
        click.option("--log-format", type=click.Choice(["text", "json"]), help="Log line format."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _settings(**options: Any) -> Settings:
    return load_settings(**{k: v for k, v in options.items() if v is not None})


def _run(role: str, settings: Settings) -> None:
    from processors import logs
    from processors.kafka.access import check_access

    logs.configure(settings.log_format, settings.log_level)
    check_access(settings)  # wrong credentials: one line and exit, never a restart loop
    if role == "main":
        from processors.main import run
    else:
        from processors.retry import run
    run(settings)


@click.command("main")
@_options
def main_processor(**options: Any) -> None:
    """Consume new orders, process them, route failures to retry or the DLQ."""
    _run("main", _settings(**options))


@click.command("retry")
@_options
def retry_processor(**options: Any) -> None:
    """Consume the retry topic; process each record no earlier than its due time."""
    _run("retry", _settings(**options))
