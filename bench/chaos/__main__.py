"""``python -m bench.chaos [--seed N] [--orders N] …`` (``make chaos``): see docs/reliability.md."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from bench.chaos.run import ChaosConfig, run_chaos, table
from processors.errors import OrderflowError

DEFAULTS = ChaosConfig()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True)
@click.option("--orders", type=click.IntRange(1), default=DEFAULTS.orders, show_default=True)
@click.option("--brokers", type=click.Choice(["1", "3"]), default="3", show_default=True)
@click.option("--processor-kills", type=click.IntRange(0), default=DEFAULTS.processor_kills,
              show_default=True)  # fmt: skip
@click.option("--broker-kills", type=click.IntRange(0), default=DEFAULTS.broker_kills,
              show_default=True)  # fmt: skip
@click.option("--broker-pauses", type=click.IntRange(0), default=DEFAULTS.broker_pauses,
              show_default=True)  # fmt: skip
@click.option("--rate", type=click.FloatRange(1), default=DEFAULTS.rate, show_default=True,
              help="Orders per second (lower if broker faults need longer).")  # fmt: skip
@click.option("--at-least-once", is_flag=True, help="Run the processors at-least-once.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("artifacts/chaos"),
              show_default=True, help="Logs, state and the JSON report go here.")  # fmt: skip
def main(
    seed: int,
    orders: int,
    brokers: str,
    processor_kills: int,
    broker_kills: int,
    broker_pauses: int,
    rate: float,
    at_least_once: bool,
    out: Path,
) -> None:
    """Kill and restart processors, kill and pause brokers while orders flow, then account for
    every order. Exit 0 only if none is lost, duplicated or misrouted and every outcome is
    visible within 120 s of the last fault."""
    config = ChaosConfig(
        seed=seed,
        orders=orders,
        brokers=int(brokers),
        processor_kills=processor_kills,
        broker_kills=broker_kills if brokers == "3" else 0,
        broker_pauses=broker_pauses if brokers == "3" else 0,
        rate=rate,
        guarantee="at-least-once" if at_least_once else "exactly-once",
    )
    workdir = out / f"seed-{seed}-{time.strftime('%Y%m%dT%H%M%S')}"
    try:
        report = run_chaos(config, workdir, say=lambda line: click.echo(line, err=True))
    except OrderflowError as exc:  # no Java, a cluster that did not start, …
        click.echo(f"chaos: error: {exc}", err=True)
        sys.exit(2)
    click.echo(table(report))
    path = out / f"seed-{seed}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    click.echo(f"report: {path} (logs under {workdir})")
    sys.exit(0 if report["ok"] else 1)


main()
