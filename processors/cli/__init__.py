"""``orderflow``: the one command line. Each subcommand parses arguments and calls one library
function; an ``OrderflowError`` becomes one line on stderr and a non-zero exit code."""

from __future__ import annotations

import importlib
import sys

import click

from processors import __version__
from processors.errors import OrderflowError

# name -> "module:attribute" of a click command; imported only when used, so `--help` is fast
# and one broken area cannot take the whole CLI down.
SUBCOMMANDS: dict[str, str] = {
    "kafka": "processors.cli.kafka:kafka",
    "topics": "processors.cli.topics:topics",
    "main": "processors.cli.run:main_processor",
    "retry": "processors.cli.run:retry_processor",
    "produce": "processors.cli.produce:produce",
    "dlq": "processors.cli.dlq:dlq",
    "dashboard": "processors.cli.dashboard:dashboard",
    "up": "processors.cli.stack:up",
    "down": "processors.cli.stack:down",
    "status": "processors.cli.stack:status",
    "supervise": "processors.cli.stack:supervise",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in SUBCOMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # that area is not built yet
                return None
            raise
        return getattr(module, attribute)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except OrderflowError as exc:
            click.echo(f"orderflow: error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="orderflow")
def cli() -> None:
    """orderflow: Kafka main → retry → dead-letter-queue processing for order events."""


def main() -> None:
    try:
        cli.main(prog_name="orderflow")
    except KeyboardInterrupt:
        click.echo("orderflow: interrupted", err=True)
        sys.exit(130)
