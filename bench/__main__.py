"""``python -m bench [--quick] [--only NAME]… [--bootstrap HOST:PORT]`` (``make bench``)."""

from __future__ import annotations

import sys

import click

from bench.runner import BENCHMARKS, run_benchmarks


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--quick", is_flag=True, help="Smaller sizes: about 3 minutes instead of about 10.")
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(list(BENCHMARKS)),
    help="Run only this benchmark (repeatable).",
)
@click.option(
    "--bootstrap",
    metavar="HOST:PORT",
    help="Use this broker instead of starting a local jar broker on free ports.",
)
def main(quick: bool, only: tuple[str, ...], bootstrap: str | None) -> None:
    """Measure throughput, retry lateness, dashboard refresh cost and kill -9 recovery against
    a real broker; print tables and write bench/results/latest.json."""
    sys.exit(run_benchmarks(quick=quick, only=only, bootstrap=bootstrap))


main()
