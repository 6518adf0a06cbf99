"""The `orderflow` root command: help everywhere, one-line errors, exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from processors.cli import SUBCOMMANDS, cli


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def test_root_help_lists_subcommands():
    result = run("--help")
    assert result.exit_code == 0
    assert "orderflow" in result.output


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_built_subcommand_has_help(name):
    command = cli.get_command(None, name)  # type: ignore[arg-type]
    if command is None:
        pytest.skip(f"{name} is not built in this checkout")
    result = run(name, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


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
