"""Run the selected benchmarks against one broker and record what they measured."""

from __future__ import annotations

import contextlib
import logging
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import (
    dashboard_refresh,
    instructions,
    kill_recovery,
    ledger,
    retry_lateness,
    sidebyside,
    throughput,
)
from bench import docs as bench_docs
from bench.broker import own_broker
from bench.report import LATEST, Result, ResultsFile
from bench.support import RDKAFKA_LOGGER, BenchError, Context, load_average, machine
from processors.errors import OrderflowError


@dataclass(frozen=True)
class Benchmark:
    run: Callable[[Context, Any], Result]
    full: Any
    quick: Any
    default: bool = True  # False: only when named with ``--only``


BENCHMARKS: dict[str, Benchmark] = {
    sidebyside.NAME: Benchmark(sidebyside.run, sidebyside.FULL, sidebyside.QUICK),
    throughput.NAME: Benchmark(throughput.run, throughput.FULL, throughput.QUICK),
    retry_lateness.NAME: Benchmark(retry_lateness.run, retry_lateness.FULL, retry_lateness.QUICK),
    dashboard_refresh.NAME: Benchmark(
        dashboard_refresh.run, dashboard_refresh.FULL, dashboard_refresh.QUICK
    ),
    kill_recovery.NAME: Benchmark(kill_recovery.run, kill_recovery.FULL, kill_recovery.QUICK),
    ledger.NAME: Benchmark(ledger.run, ledger.FULL, ledger.QUICK),
    instructions.NAME: Benchmark(
        instructions.run, instructions.FULL, instructions.QUICK, default=False
    ),
}


def selected(only: Sequence[str]) -> list[str]:
    """The benchmarks to run, in their usual order: all, or those named with ``--only``."""
    return [
        name for name, bench in BENCHMARKS.items() if name in only or (not only and bench.default)
    ]


@contextlib.contextmanager
def broker(bootstrap: str | None, console: Console) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    with contextlib.ExitStack() as stack:
        with console.status("starting a local Kafka broker on free ports…") as status:

            def progress(step: str) -> None:
                status.update(f"local Kafka: {step}")

            address = stack.enter_context(own_broker(progress=progress))
        console.print(f"local Kafka broker at {address} (stopped and removed at the end)")
        try:
            yield address
        finally:
            # The dashboard functions' pooled clients outlive the broker until exit; their
            # "connection refused" lines would only be noise.
            RDKAFKA_LOGGER.setLevel(logging.CRITICAL)
            console.print("stopping the local Kafka broker…")


def run_benchmarks(
    *,
    quick: bool,
    only: Sequence[str] = (),
    bootstrap: str | None = None,
    results_path: Path = LATEST,
    console: Console | None = None,
    cases: Sequence[str] = (),
    docs_page: Path | None = None,
) -> int:
    """Run the benchmarks; return the exit status (1 if any failed). ``cases`` narrows the
    side-by-side benchmark; ``docs_page``: write its figures, plot and raw JSON there."""
    console = console or Console(width=None if sys.stdout.isatty() else 150)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    names = selected(only)
    started = time.monotonic()
    before = machine()
    console.print(
        f"[bold]orderflow benchmarks[/bold] ({'quick' if quick else 'full'}): {', '.join(names)}\n"
        f"machine: {before['cpus']} CPUs, {before['memory_gib']} GiB; "
        f"before the run: {before['uptime']}"
    )
    results = ResultsFile(
        results_path,
        {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": shlex.join([Path(sys.executable).name, "-m", "bench", *sys.argv[1:]]),
            "quick": quick,
            "benchmarks": names,
            "broker": bootstrap or "own local jar broker (1 node, KRaft)",
            "machine": before,
        },
    )
    failures = 0
    try:
        with (
            broker(bootstrap, console) as address,
            tempfile.TemporaryDirectory(prefix="orderflow-bench-") as workdir,
        ):
            ctx = Context(bootstrap=address, workdir=Path(workdir))
            for name in names:
                bench = BENCHMARKS[name]
                params = bench.quick if quick else bench.full
                if name == sidebyside.NAME:
                    params = sidebyside.with_cases(params, cases)
                load = [round(x, 2) for x in load_average()]
                began = time.monotonic()
                console.rule(name)
                try:
                    result = bench.run(ctx, params)
                except Exception as exc:
                    failures += 1
                    if not isinstance(exc, BenchError | OrderflowError):
                        console.print_exception()
                    message = f"{type(exc).__name__}: {exc}"
                    console.print(f"[bold red]{name} failed:[/bold red] {message}")
                    results.append(None, name, ok=False, error=message, load_average_before=load)
                    continue
                seconds = time.monotonic() - began
                result.print(console)
                console.print(f"  [dim]{name}: {seconds:.0f} s, load before {load}[/dim]")
                failures += 0 if result.ok else 1
                results.append(result, name, seconds=round(seconds, 1), load_average_before=load)
    finally:
        results.finish(
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
            seconds=round(time.monotonic() - started, 1),
            load_average_after=[round(x, 2) for x in load_average()],
        )
    ran_side_by_side = any(
        r["benchmark"] == sidebyside.NAME and "cases" in r for r in results.document["results"]
    )
    if docs_page is not None and ran_side_by_side:
        bench_docs.write(
            results.document,
            page=docs_page,
            plot=docs_page.parent / bench_docs.PLOT.relative_to(bench_docs.DOCS),
            raw=docs_page.parent / bench_docs.RAW.relative_to(bench_docs.DOCS),
        )
        console.print(f"side-by-side figures, plot and raw JSON written into {docs_page}")
    console.print(
        f"total {time.monotonic() - started:.0f} s; results in {results_path}"
        + (f"; [bold red]{failures} failed[/bold red]" if failures else "")
    )
    return 1 if failures else 0
