"""``orderflow topics create|describe``: orderflow's topics, with explicit configuration."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from processors.kafka.access import check_access
from processors.kafka.topics import describe_topics, provision, raise_on_drift
from processors.settings import Settings, load_settings

bootstrap_option = click.option(
    "--bootstrap-servers", default=None, help="Override ORDERFLOW_BOOTSTRAP_SERVERS."
)


def _settings(**overrides: Any) -> Settings:
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    check_access(settings)
    return settings


@click.group()
def topics() -> None:
    """Create and inspect orders.v1, orders.retry, orders.dlq, orders.processed and the
    redrive ledger orders.dlq.redriven."""


@topics.command()
@click.option(
    "--partitions",
    type=click.IntRange(1, 1000),
    default=None,
    help="Override ORDERFLOW_PARTITIONS.",
)
@click.option(
    "--replication-factor", type=click.IntRange(1, 10), default=None,
    help="Override ORDERFLOW_REPLICATION_FACTOR (3 on a 3-broker cluster).",
)  # fmt: skip
@bootstrap_option
def create(
    partitions: int | None, replication_factor: int | None, bootstrap_servers: str | None
) -> None:
    """Create the missing topics; check existing ones. Exit 1 on drift (nothing is altered)."""
    settings = _settings(
        partitions=partitions,
        replication_factor=replication_factor,
        bootstrap_servers=bootstrap_servers,
    )
    reports = provision(settings)
    width = max(len(r.name) for r in reports)
    for report in reports:
        line = f"{report.name.ljust(width)}  {report.status}"
        if report.differences:
            line += ": " + "; ".join(report.differences)
        click.echo(line)
    raise_on_drift(reports)


@topics.command()
@bootstrap_option
@click.pass_context
def describe(ctx: click.Context, bootstrap_servers: str | None) -> None:
    """Partitions, replication, leaders/ISR, config and watermarks. Exit 1 if any topic is
    missing or drifted."""
    settings = _settings(bootstrap_servers=bootstrap_servers)
    states = describe_topics(settings)
    console = Console(soft_wrap=True, highlight=False)
    healthy = True
    for state in states:
        spec = state.spec
        if not state.exists:
            healthy = False
            console.print(f"[bold]{spec.name}[/]: missing (run `orderflow topics create`)")
            continue
        rf = "/".join(str(v) for v in sorted(state.replication_factors))
        console.print(
            f"[bold]{spec.name}[/]: {len(state.partitions)} partitions, replication factor {rf}, "
            f"high watermark total {state.high_watermark_total}, "
            f"stored offsets {state.stored_offsets}"
        )
        config = ", ".join(f"{k}={v}" for k, v in state.config.items())
        console.print(f"  config: {config}")
        table = Table("partition", "leader", "replicas", "isr", "low", "high", box=None)
        for p in state.partitions:
            isr_note = "" if set(p.isr) == set(p.replicas) else " (under-replicated)"
            table.add_row(
                str(p.partition),
                str(p.leader) if p.leader >= 0 else "none",
                ",".join(map(str, p.replicas)),
                ",".join(map(str, p.isr)) + isr_note,
                str(p.low),
                str(p.high),
            )
        console.print(table)
        if state.differences:
            healthy = False
            console.print(f"  [red]drift[/]: {'; '.join(state.differences)}")
    ctx.exit(0 if healthy else 1)
