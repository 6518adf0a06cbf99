"""``python -m bench [--quick] [--only NAME]… [--bootstrap HOST:PORT]`` (``make bench``)."""

from __future__ import annotations

import sys

import click

from bench import docs, sidebyside
from bench.runner import BENCHMARKS, run_benchmarks


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--quick", is_flag=True, help="Smaller sizes: minutes instead of about half an hour.")
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
@click.option(
    "--case",
    "cases",
    multiple=True,
    type=click.Choice(sidebyside.CASES),
    help="side-by-side: run only this case (repeatable; default all).",
)
@click.option(
    "--docs/--no-docs",
    "write_docs",
    default=None,
    help="Write the side-by-side figures, plot and raw JSON into docs/benchmarks.md "
    "(default: on for a full run of every case, off otherwise).",
)
def main(
    quick: bool,
    only: tuple[str, ...],
    bootstrap: str | None,
    cases: tuple[str, ...],
    write_docs: bool | None,
) -> None:
    """Measure orderflow side by side with bare workers, throughput, retry lateness, dashboard
    refresh cost and kill -9 recovery against a real broker; print tables and write
    bench/results/latest.json."""
    if write_docs is None:
        write_docs = not quick and not cases
    status = run_benchmarks(
        quick=quick,
        only=only,
        bootstrap=bootstrap,
        cases=cases,
        docs_page=docs.PAGE if write_docs else None,
    )
    sys.exit(status)


main()
