"""``orderflow dlq stats|list|inspect|export|replay``: look at dead letters and send them back.

Every subcommand takes the same filters. ``list`` and ``inspect`` read from the end of the DLQ
(bounded); ``stats``, ``export`` and ``replay`` read the whole DLQ once, with a progress bar.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.syntax import Syntax
from rich.table import Table

from processors import dlq as lib
from processors.core import headers as h
from processors.core.routing import DlqReason
from processors.errors import OrderflowError
from processors.kafka import tail
from processors.kafka.access import check_access, raise_if_topic_denied
from processors.settings import Settings, load_settings

_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
# Exit code of a replay that finished but refused some records (loop guard, no target).
EXIT_REFUSED = 3


def _when(text: str | None, now_ms: int) -> int | None:
    """``15m``/``2h``/``7d`` ago, or an RFC 3339 time, as epoch ms."""
    if text is None:
        return None
    match = _DURATION.fullmatch(text.strip())
    if match:
        return now_ms - int(match.group(1)) * _UNIT_MS[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: expected a duration like 30m, 2h, 7d or a time like 2026-01-31T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The shared filter options; the command receives a ``DlqFilter`` as ``flt``."""
    options = [
        click.option(
            "--reason",
            help="x-dlq-reason, e.g. " + ", ".join(r.value for r in DlqReason) + ".",
        ),
        click.option("--error-class", help="Substring of x-error-class (case-insensitive)."),
        click.option(
            "--category",
            help="x-error-category: transient, permanent, validation, deserialization, unknown.",
        ),
        click.option("--order-id", help="Order id or record key (exact)."),
        click.option("--since", help="Dead-lettered at or after: 30m, 2h, 7d or an RFC 3339 time."),
        click.option("--until", help="Dead-lettered before: 30m, 2h, 7d or an RFC 3339 time."),
        click.option("--partition", type=click.IntRange(min=0), help="DLQ partition."),
        click.option("--offset", type=click.IntRange(min=0), help="DLQ offset."),
        click.option(
            "--state",
            type=click.Choice(lib.STATES),
            help="pending: never redriven; redriven: listed in the redrive ledger.",
        ),
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        now_ms = int(time.time() * 1000)
        flt = lib.DlqFilter(
            reason=kwargs.pop("reason"),
            error_class=kwargs.pop("error_class"),
            error_category=kwargs.pop("category"),
            order_id=kwargs.pop("order_id"),
            since_ms=_when(kwargs.pop("since"), now_ms),
            until_ms=_when(kwargs.pop("until"), now_ms),
            partition=kwargs.pop("partition"),
            offset=kwargs.pop("offset"),
            state=kwargs.pop("state"),
        )
        return command(flt=flt, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _settings() -> Settings:
    """The settings, once the DLQ topic is known to exist (else a one-line error, exit 1)."""
    # Errors reach the user through our own messages; librdkafka's connection chatter adds nothing.
    logging.getLogger("processors.kafka.rdkafka").setLevel(logging.CRITICAL)
    settings = load_settings()
    check_access(settings)
    if not tail.watermarks(settings, [settings.topic_dlq])[settings.topic_dlq]:
        raise_if_topic_denied(settings, settings.topic_dlq, "READ")
        raise OrderflowError(f"topic {settings.topic_dlq} does not exist")
    return settings


def _bar(label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("offsets"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )


def _ledger(settings: Settings, *, quiet: bool = False) -> lib.Ledger:
    """The redrive ledger, read once for the command, with a progress bar and notes on what
    it skipped (``quiet``: neither)."""
    if quiet:
        return lib.read_ledger(settings)
    topic = settings.topic_redriven
    size = sum(high - low for low, high in tail.watermarks(settings, [topic])[topic].values())
    with _bar("reading ledger") as bar:
        task = bar.add_task("ledger", total=size)
        ledger = lib.read_ledger(settings, progress=lambda n: bar.advance(task, n))
    if ledger.missing:
        click.echo(
            f"note: no redrive ledger ({topic}): every dead letter counts as pending;"
            " `orderflow topics create` provisions it",
            err=True,
        )
    if ledger.garbage or ledger.stale:
        click.echo(
            f"note: ledger entries skipped: {ledger.garbage} unreadable,"
            f" {ledger.stale} for dead letters retention removed",
            err=True,
        )
    return ledger


def _redrive_text(entry: lib.Redrive | None) -> str:
    if entry is None:
        return "-"
    again = f" (×{entry.count})" if entry.count > 1 else ""
    return f"{_time(entry.at_ms)} run {entry.run_id} → {entry.landed}{again}"


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _age(ms: int, now_ms: int) -> str:
    seconds = max(0, now_ms - ms) // 1000
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@click.group()
def dlq() -> None:
    """Inspect, export and replay dead letters (topic ORDERFLOW_TOPIC_DLQ)."""


@dlq.command()
@filter_options
def stats(flt: lib.DlqFilter) -> None:
    """Counts by reason, error class, category and age (reads the whole DLQ once)."""
    settings = _settings()
    now_ms = int(time.time() * 1000)
    ledger = _ledger(settings)
    with _bar("reading DLQ") as bar:
        task = bar.add_task("scan", total=lib.dlq_size(settings, flt))
        result = lib.dlq_stats(
            settings, flt, now_ms=now_ms, progress=lambda n: bar.advance(task, n), ledger=ledger
        )
    console = Console()
    console.print(
        f"[bold]{result.total}[/] dead letters in {escape(settings.topic_dlq)}"
        f" ({escape(flt.describe())}): [bold]{result.pending} pending[/] (left to do),"
        f" {result.redriven} redriven ({result.failed_again} of them dead-lettered again)"
    )
    console.print(
        f"carrying x-replay-count ≥ 1: {result.replayed}, at the replay limit:"
        f" {result.at_replay_limit}"
    )
    if result.total:
        console.print(
            f"oldest {_time(result.oldest_ms)} ({_age(result.oldest_ms or 0, now_ms)} ago),"
            f" newest {_time(result.newest_ms)} ({_age(result.newest_ms or 0, now_ms)} ago)"
        )
    for title, counts in (
        ("reason", result.by_reason),
        ("error class", result.by_error_class),
        ("category", result.by_category),
        ("age", result.by_age),
        ("partition", result.by_partition),
        ("redrive run", result.by_run),
    ):
        table = Table(title=f"by {title}", title_justify="left")
        table.add_column(title)
        table.add_column("count", justify="right")
        for name, count in counts.items():
            table.add_row(escape(str(name)), str(count))
        console.print(table)


@dlq.command("list")
@filter_options
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--max-scan",
    type=click.IntRange(min=1),
    default=lib.DEFAULT_MAX_SCAN,
    show_default=True,
    help="Read at most this many DLQ offsets from the end.",
)
def list_(flt: lib.DlqFilter, limit: int, max_scan: int) -> None:
    """The newest dead letters matching the filters, newest first."""
    settings = _settings()
    ledger = _ledger(settings)
    relapses: dict[str, str] = {}

    def seen(letter: lib.DeadLetter) -> None:
        if letter.replay_of:
            relapses[letter.replay_of] = f"{letter.partition}:{letter.offset}"

    letters, complete = lib.search_dead_letters(
        settings, flt, limit, max_scan=max_scan, redriven=ledger, seen=seen
    )
    now_ms = int(time.time() * 1000)
    table = Table(title=f"{settings.topic_dlq} ({flt.describe()})", title_justify="left")
    table.add_column("p:offset", no_wrap=True, min_width=8)
    table.add_column("order id", no_wrap=True, min_width=20)
    table.add_column("reason", no_wrap=True, max_width=22)
    table.add_column("error class", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("message", no_wrap=True, overflow="ellipsis", ratio=1)
    table.add_column("att", no_wrap=True, justify="right")
    table.add_column("age", no_wrap=True, justify="right")
    table.add_column("rp", no_wrap=True, justify="right")
    table.add_column("state", no_wrap=True)
    table.add_column("redriven: when, run → where; outcome", overflow="fold", ratio=1)
    for d in letters:
        entry = ledger.get(d.ref)
        redrive = _redrive_text(entry)
        if d.ref in relapses:
            redrive += f"; dead-lettered again {relapses[d.ref]}"
        elif entry is not None:
            redrive += "; not dead-lettered again"
        table.add_row(
            f"{d.partition}:{d.offset}",
            escape(d.order_id or "-"),
            escape(d.reason or "-"),
            escape((d.error_class or "-").rsplit(".", 1)[-1]),
            escape((d.error_message or "")[:80]),
            str(d.attempts if d.attempts is not None else "-"),
            _age(d.failed_at, now_ms),
            str(d.replay_count if d.replay_count is not None else "?"),
            "pending" if entry is None else "redriven",
            escape(redrive),
        )
    console = Console()
    console.print(table)
    shown_pending = sum(d.ref not in ledger for d in letters)
    console.print(f"shown: {shown_pending} pending, {len(letters) - shown_pending} redriven")
    if not letters:
        console.print("no dead letter matches")
    if not complete:
        console.print(f"[yellow]searched only the newest {max_scan} offsets; raise --max-scan")


@dlq.command()
@click.argument("location", required=False, metavar="[PARTITION:OFFSET]")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print the record as one JSON object.")
def inspect(location: str | None, flt: lib.DlqFilter, as_json: bool) -> None:
    """One dead letter in full: context, every header, payload, stack trace.

    Give PARTITION:OFFSET, or filters (the newest match is shown).
    """
    settings = _settings()
    if location:
        partition, _, offset = location.partition(":")
        if not (partition.isdigit() and offset.isdigit()):
            raise click.BadParameter(f"{location!r}: expected PARTITION:OFFSET, e.g. 0:42")
        letter = lib.get_dead_letter(settings, int(partition), int(offset))
    else:
        found = lib.list_dead_letters(settings, flt, 1)
        letter = found[0] if found else None
    if letter is None:
        click.echo("no such dead letter", err=True)
        sys.exit(1)
    entry = _ledger(settings, quiet=True).get(letter.ref)
    if as_json:
        obj = letter.to_json() | {"redrive": lib.redrive_json(entry)}
        click.echo(json.dumps(obj, ensure_ascii=False, indent=2))
        return
    _show(letter, entry)


def _show(d: lib.DeadLetter, entry: lib.Redrive | None) -> None:
    console = Console()
    now_ms = int(time.time() * 1000)
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    rows = [
        ("dead letter", d.ref),
        ("order id", d.order_id or "-"),
        ("event id", d.event_id or "-"),
        ("reason", d.reason or "-"),
        ("error", f"{d.error_class or '-'} ({d.error_category or '-'})"),
        ("message", d.error_message or "-"),
        ("attempts", f"{d.attempts if d.attempts is not None else '-'} of {d.max_attempts or '-'}"),
        ("first failure", _time(d.first_failure_at)),
        ("last failure", _time(d.last_failure_at)),
        ("dead-lettered", f"{_time(d.dlq_at)} ({_age(d.failed_at, now_ms)} ago)"),
        (
            "original",
            f"{d.original_topic or '-'}[{d.original_partition}]@{d.original_offset}"
            f" at {_time(d.original_timestamp)}",
        ),
        (
            "replays",
            f"{d.replay_count if d.replay_count is not None else '?'} (of {d.replay_of or '-'})",
        ),
        ("processor", f"{d.processor or '-'} group {d.consumer_group or '-'}"),
        ("state", "pending" if entry is None else f"redriven {_redrive_text(entry)}"),
    ]
    for name, value in rows:
        summary.add_row(name, escape(value))
    console.print(Panel(summary, title="dead letter", title_align="left"))
    headers = Table(title="headers", title_justify="left")
    headers.add_column("name")
    headers.add_column("value", overflow="fold")
    for name, value in d.headers:
        headers.add_row(escape(name), "(null)" if value is None else escape(h.display_text(value)))
    console.print(headers)
    shown = d.payload
    body = Syntax(shown.text, "json") if shown.kind == "json" else escape(shown.text)
    title = f"payload ({len(d.value or b'')} bytes)" + (f": {shown.note}" if shown.note else "")
    console.print(Panel(body, title=escape(title), title_align="left"))
    if d.stacktrace:
        console.print(Panel(escape(d.stacktrace), title="stack trace", title_align="left"))


@dlq.command()
@filter_options
@click.option(
    "--out", type=click.File("w", encoding="utf-8"), default="-", help="File; - is stdout."
)
def export(flt: lib.DlqFilter, out: Any) -> None:
    """Matching dead letters as JSON Lines: lossless key, value, headers; decoded context and
    redrive state."""
    settings = _settings()
    ledger = _ledger(settings)
    with _bar("exporting") as bar:
        task = bar.add_task("scan", total=lib.dlq_size(settings, flt))
        count = lib.export_jsonl(
            settings, flt, out, progress=lambda n: bar.advance(task, n), ledger=ledger
        )
    out.flush()
    click.echo(f"exported {count} dead letters", err=True)


@dlq.command()
@filter_options
@click.option(
    "--to",
    "target",
    type=click.Choice(["original", "retry"]),
    default="original",
    show_default=True,
    help="original: each record's x-original-topic; retry: the retry topic.",
)
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Max records per second.")
@click.option("--limit", type=click.IntRange(min=1), help="Replay at most N records in this run.")
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; write nothing.")
@click.option(
    "--force", is_flag=True, help=f"Replay records already replayed {lib.REPLAY_LIMIT} times."
)
@click.option(
    "--group",
    default=lib.DEFAULT_REPLAY_GROUP,
    show_default=True,
    help="Consumer group holding the run's progress (one run per group at a time).",
)
@click.option(
    "--again",
    is_flag=True,
    help="Also redrive dead letters the ledger lists as redriven (counted; loop guard applies).",
)
@click.option("--restart", is_flag=True, help="Start over instead of resuming an unfinished run.")
def replay(
    flt: lib.DlqFilter,
    target: str,
    rate: float | None,
    limit: int | None,
    dry_run: bool,
    force: bool,
    again: bool,
    group: str,
    restart: bool,
) -> None:
    """Move matching dead letters back (republish, and record it in the redrive ledger); the
    DLQ itself is never changed.

    Each dead letter is redriven once: those the ledger lists are skipped (counted), unless
    --again or a filter that names them (--order-id, --offset, --state redriven). Resumable:
    rerun the same command after a crash and it continues where it stopped, ending at the
    DLQ's end as it was when the run began. Exit codes: 0 all replayed, 1 failures (or a Kafka
    call that outlived its budget), 3 some records refused (loop guard or no target),
    130 interrupted.
    """
    settings = _settings()
    again = again or flt.names_letters
    with _bar("dry run" if dry_run else "replaying") as bar:
        task = bar.add_task("replay", total=None)
        last = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= 0.1 or done >= total:
                last = now
                bar.update(task, completed=done, total=total)

        report = lib.replay(
            settings,
            flt,
            to=target,  # type: ignore[arg-type]
            rate=rate,
            limit=limit,
            dry_run=dry_run,
            force=force,
            again=again,
            progress=progress,
            group=group,
            restart=restart,
        )
    _replay_summary(report, flt)
    if report.interrupted:
        sys.exit(130)
    if not report.ok:
        sys.exit(1)
    if report.refused_count:
        sys.exit(EXIT_REFUSED)


def _replay_summary(report: lib.ReplayReport, flt: lib.DlqFilter) -> None:
    verb = "would replay" if report.dry_run else "replayed"
    resumed = (
        f" (resumed run {report.run_id}; {report.previously_replayed} replayed before)"
        if report.resumed
        else f" (run {report.run_id})"
    )
    targets = ", ".join(f"{n} to {t}" for t, n in sorted(report.targets.items())) or "none"
    skipped = "would skip" if report.dry_run else "skipped"
    mode = "" if report.dry_run else (" exactly-once" if report.exactly_once else " at-least-once")
    click.echo(
        f"{verb} {report.replayed} of {report.selected} selected ({flt.describe()}){resumed}:"
        f" {targets}; {skipped} {report.skipped_redriven} already redriven;"
        f" again {report.again}; refused {report.refused_count}; failed {report.failed};"
        f" {report.elapsed_s:.1f} s{mode}"
    )
    if report.recoveries:
        click.echo(
            f"recovered {report.recoveries} aborted or fenced transaction(s) inside the run",
            err=True,
        )
    if report.ledger_garbage or report.ledger_stale:
        click.echo(
            f"ledger entries skipped: {report.ledger_garbage} unreadable,"
            f" {report.ledger_stale} for dead letters retention removed",
            err=True,
        )
    if report.stopped_by_limit:
        click.echo("stopped at --limit", err=True)
    if report.interrupted:
        click.echo("interrupted: progress saved, run the same command again to resume", err=True)
    for ref, why in report.refused[:20]:
        click.echo(f"  refused {ref}: {why}", err=True)
    if report.refused_count > 20:
        click.echo(f"  … and {report.refused_count - 20} more refused", err=True)
    for error in report.errors:
        click.echo(f"  error: {error}", err=True)
