"""``orderflow produce``: one order from flags, a JSON file or stdin, or ``--count N`` generated.

Everything is validated before anything is sent: an invalid order prints one line naming each
failing field and exits 2 with nothing sent. The exit code is non-zero if any order was not
delivered (1) or the run was interrupted (130).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from processors.core.order import Order, parse_order
from processors.errors import InvalidOrderError
from processors.kafka.access import check_access
from processors.orders_gen import SCENARIOS
from processors.producer import (
    DEFAULT_DELIVERY_TIMEOUT_S,
    GeneratedItem,
    ProduceSummary,
    generate_orders,
    produce_one,
    produce_orders,
)
from processors.settings import Settings, load_settings

_ORDER_FLAGS = ("order_id", "customer_id", "items", "currency", "total", "created_at", "fail")


def _item(text: str) -> dict[str, str]:
    parts = text.split(":")
    if len(parts) != 3:
        raise InvalidOrderError(
            f"--item {text!r}: expected SKU:QUANTITY:UNIT_PRICE, e.g. MUG:2:12.50"
        )
    sku, quantity, unit_price = parts
    return {"sku": sku, "quantity": quantity, "unit_price": unit_price}


def _order_from_flags(flags: dict[str, Any]) -> Order:
    items = [_item(text) for text in flags["items"]]
    data: dict[str, Any] = {
        "order_id": flags["order_id"] or f"ord-{uuid.uuid4().hex[:16]}",
        "customer_id": flags["customer_id"],
        "items": items,
        "currency": flags["currency"],
        "created_at": flags["created_at"] or datetime.now(UTC).isoformat(),
    }
    if flags["total"] is not None:
        data["total"] = flags["total"]
    else:  # the sum of the items, when every item is well-formed enough to add up
        try:
            data["total"] = str(sum(Decimal(i["unit_price"]) * int(i["quantity"]) for i in items))
        except (InvalidOperation, ValueError):
            data["total"] = "0"
    fail = flags["fail"]
    if fail == "permanent":
        data["simulate"] = {"error": "permanent"}
    elif fail is not None:
        data["simulate"] = {"error": "transient", "fail_attempts": fail}
    return parse_order(data)


def _orders_from_text(text: str | bytes, origin: str) -> list[Order]:
    """One order, a JSON array of orders, or JSON Lines. All are validated before any is sent."""
    try:
        document = json.loads(text)
        documents = document if isinstance(document, list) else [document]
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raw = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
        lines = [line for line in raw.splitlines() if line.strip()]
        if len(lines) < 2:
            raise InvalidOrderError(f"{origin}: not valid JSON: {exc}") from None
        documents = []
        for number, line in enumerate(lines, 1):
            try:
                documents.append(json.loads(line))
            except json.JSONDecodeError as line_exc:
                raise InvalidOrderError(
                    f"{origin} line {number}: not valid JSON: {line_exc}"
                ) from None
    if not documents:
        raise InvalidOrderError(f"{origin}: no order in it")
    orders, problems = [], []
    for index, document in enumerate(documents):
        if not isinstance(document, dict):
            problems.append(f"order {index + 1}: expected a JSON object")
            continue
        try:
            orders.append(parse_order(document))
        except InvalidOrderError as exc:
            problems.append(f"order {index + 1}: {exc}" if len(documents) > 1 else str(exc))
    if problems:
        raise InvalidOrderError("; ".join(problems))
    return orders


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]producing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed [red]{task.fields[failed]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _send_many(
    settings: Settings, items: Iterable[GeneratedItem], total: int, **kwargs: Any
) -> ProduceSummary:
    with _progress(Console(stderr=True)) as bar:
        task = bar.add_task("produce", total=total, failed=0)

        next_update = 0.0

        def update(delivered: int, failed: int) -> None:
            nonlocal next_update
            now = time.monotonic()
            if now >= next_update:  # redrawing per record would cost more than producing it
                next_update = now + 0.1
                bar.update(task, completed=delivered + failed, failed=failed)

        summary = produce_orders(settings, items, progress=update, **kwargs)
        bar.update(task, completed=summary.delivered + summary.failed, failed=summary.failed)
        return summary


def _report(summary: ProduceSummary, requested: int) -> None:
    click.echo(
        f"delivered {summary.delivered} of {requested}, failed {summary.failed}"
        f" in {summary.elapsed_s:.1f} s ({summary.rate:.0f}/s)"
    )
    for error in summary.errors:
        click.echo(f"  error: {error}", err=True)
    if summary.failed_keys:
        shown = ", ".join(summary.failed_keys[:10])
        more = f" and {len(summary.failed_keys) - 10} more" if len(summary.failed_keys) > 10 else ""
        click.echo(f"  not delivered: {shown}{more}", err=True)
    not_sent = requested - summary.delivered - summary.failed
    if not_sent > 0:
        click.echo(f"  not sent: {not_sent}", err=True)


@click.command()
@click.option(
    "--file",
    "file_",
    type=click.File("rb"),
    help="Orders as JSON (object, array or JSON Lines); - reads stdin.",
)
@click.option("--order-id", help="Order id  [default: a new one]")
@click.option("--customer-id", default="cus-cli", show_default=True)
@click.option(
    "--item",
    "items",
    multiple=True,
    metavar="SKU:QTY:PRICE",
    help="An order line; repeat for more.",
)
@click.option("--currency", default="EUR", show_default=True, help="ISO 4217 code.")
@click.option("--total", help="Order total  [default: the sum of the items]")
@click.option("--created-at", help="RFC 3339 time  [default: now]")
@click.option(
    "--fail",
    type=str,
    default=None,
    metavar="N|permanent",
    help="Simulate failures: fail the first N attempts (transient), or 'permanent'.",
)
@click.option("--count", type=click.IntRange(min=1), help="Generate and send N orders.")
@click.option("--scenario", type=click.Choice(SCENARIOS), default="mixed", show_default=True)
@click.option("--seed", type=int, help="Reproducible generated orders.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Max orders per second.")
@click.option("--topic", help="Target topic  [default: ORDERFLOW_TOPIC_MAIN]")
@click.option("--event-id", help="ce_id of a single order  [default: a new UUID]")
@click.option("--traceparent", help="W3C traceparent of a single order  [default: a new trace]")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=DEFAULT_DELIVERY_TIMEOUT_S,
    show_default=True,
    help="Seconds to wait for each acknowledgement before counting the order as failed.",
)
def produce(
    file_: IO[bytes] | None,
    count: int | None,
    scenario: str,
    seed: int | None,
    rate: float | None,
    topic: str | None,
    event_id: str | None,
    traceparent: str | None,
    timeout: float,
    **flags: Any,
) -> None:
    """Send orders to orders.v1 (idempotent, acks=all, every delivery checked).

    \b
    orderflow produce --item MUG:2:12.50 --item BOOK:1:39.90 --currency EUR
    orderflow produce --item MUG:1:12.50 --fail 2          # fails twice, then succeeds
    orderflow produce --file order.json                    # or: ... | orderflow produce --file -
    orderflow produce --count 1000 --rate 200 --scenario mixed --seed 7
    """
    if flags["fail"] not in (None, "permanent"):
        if not flags["fail"].isdigit():
            raise InvalidOrderError(f"--fail {flags['fail']!r}: expected a number or 'permanent'")
        flags["fail"] = int(flags["fail"])
    flagged = bool(flags["items"]) or any(
        flags[name] is not None for name in ("order_id", "total", "created_at", "fail")
    )
    if sum((count is not None, file_ is not None, flagged)) > 1:
        raise click.UsageError("choose one of: order flags (--item …), --file, --count")
    # Failures are reported per order below; librdkafka's connection chatter adds nothing.
    logging.getLogger("processors.kafka.rdkafka").setLevel(logging.CRITICAL)
    settings = load_settings()
    check_access(settings)
    send = {"topic": topic, "delivery_timeout_s": timeout}

    if count is not None:
        items = generate_orders(count, scenario, seed=seed)  # type: ignore[arg-type]
        summary = _send_many(settings, items, count, rate=rate, **send)
        _report(summary, count)
        sys.exit(130 if summary.interrupted else 0 if summary.ok else 1)

    if flagged:
        if not flags["items"]:
            raise InvalidOrderError("items: give at least one --item SKU:QTY:PRICE")
        orders = [_order_from_flags(flags)]
    elif file_ is not None:
        name = getattr(file_, "name", "-")
        orders = _orders_from_text(file_.read(), "stdin" if name in ("-", "<stdin>") else str(name))
    elif not sys.stdin.isatty():
        orders = _orders_from_text(sys.stdin.buffer.read(), "stdin")
    else:
        raise click.UsageError(
            "give an order with --item …, --file FILE (or - for stdin), or --count N"
        )

    if len(orders) == 1:
        delivery = produce_one(
            settings, orders[0], event_id=event_id, traceparent=traceparent, **send
        )
        click.echo(
            f"delivered {delivery.key} to {delivery.topic}[{delivery.partition}]@{delivery.offset}"
            f" ce_id={delivery.event_id} traceparent={delivery.traceparent}"
        )
        return
    if event_id or traceparent:
        raise click.UsageError("--event-id and --traceparent apply to a single order only")
    summary = _send_many(settings, orders, len(orders), rate=rate, **send)
    _report(summary, len(orders))
    sys.exit(130 if summary.interrupted else 0 if summary.ok else 1)
