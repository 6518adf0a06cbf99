"""The `orderflow` root command: help everywhere, one-line errors, exit codes."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from processors.cli import SUBCOMMANDS, cli


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, prog_name="orderflow")


def test_root_help_lists_subcommands():
    result = run("--help")
    assert result.exit_code == 0
    assert "orderflow" in result.output


def command_paths() -> list[tuple[str, ...]]:
    """Every command and subcommand, e.g. ("dlq", "replay"), walking the click groups."""
    paths: list[tuple[str, ...]] = []

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        paths.append(path)
        if isinstance(command, click.Group):
            for name in command.list_commands(None):  # type: ignore[arg-type]
                walk(command.get_command(None, name), (*path, name))  # type: ignore[arg-type]

    for name in SUBCOMMANDS:
        command = cli.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None, f"subcommand {name} does not load"
        walk(command, (name,))
    return paths


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_every_command_has_help(path):
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert f"orderflow {' '.join(path)}" in result.output


def test_unknown_subcommand_is_a_usage_error():
    result = run("frobnicate")
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.output


def test_invalid_setting_is_one_line_exit_2_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-c", "from processors.cli import main; main()", "topics", "describe"],
        env={"ORDERFLOW_PARTITIONS": "-1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "orderflow: error: invalid setting ORDERFLOW_PARTITIONS: "
        "Input should be greater than or equal to 1"
    ]
