"""``ledger``: the redrive ledger at 1,000,000 entries — its size, one full read (what each
``orderflow dlq`` command does once), and how a dashboard refresh catches up with it.

N dead letters are written to the DLQ (small records: only their offsets matter here) and one
ledger entry per dead letter, exactly as a replay writes them (``Redrive.encode``). Then:

- size: the ledger's records and their key + value bytes (the broker adds ~70 bytes of batch
  and record overhead per record; compaction keeps one record per dead letter);
- full read: ``read_ledger`` wall time, records per second and the reader's RSS growth (the
  in-memory ledger: one entry per redriven dead letter);
- dashboard: ``LedgerCache.refresh`` with the page's budget (``LEDGER_BUDGET`` records per
  refresh): refreshes until caught up, the time of each, and of a refresh with nothing new.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.report import Result, fmt
from bench.support import BenchError, Context, fresh_settings, own_topics
from dashboard.data import LEDGER_BUDGET
from processors.dlq.ledger import LedgerCache, Redrive, read_ledger
from processors.kafka import clients, tail

NAME = "ledger"


@dataclass(frozen=True)
class Params:
    entries: int = 1_000_000
    timeout_s: float = 900.0


FULL = Params()
QUICK = Params(entries=100_000)


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _write(settings, topic: str, records, timeout_s: float) -> None:
    producer = clients.producer(settings, **{"linger.ms": 50, "batch.size": 1_000_000})
    failed: list[str] = []

    def delivered(err, _msg) -> None:  # type: ignore[no-untyped-def]
        if err is not None:
            failed.append(err.str())

    for key, value, partition in records:
        where = {} if partition is None else {"partition": partition}
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=delivered, **where)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(timeout_s) or failed:
        raise BenchError(f"writing {topic}: {len(failed)} failed, {failed[:1]}")


def run(ctx: Context, params: Params) -> Result:
    n = params.entries
    settings = fresh_settings(ctx, "ledger")
    result = Result(
        NAME,
        f"ledger: the redrive ledger at {n:,} entries (one per redriven dead letter)",
        ["measure", "value"],
    )
    with own_topics(settings):
        partitions = settings.partitions
        dlq, ledger_topic = settings.topic_dlq, settings.topic_redriven
        per_partition = -(-n // partitions)
        _write(
            settings,
            dlq,
            ((None, b"x", i % partitions) for i in range(per_partition * partitions)),
            params.timeout_s,
        )
        now_ms = int(time.time() * 1000)
        payload_bytes = 0

        def entries():  # type: ignore[no-untyped-def]
            nonlocal payload_bytes
            for i in range(n):
                partition, offset = i % partitions, i // partitions
                key, value = Redrive(
                    f"{dlq}:{partition}:{offset}", "bench001", now_ms + i, settings.topic_main,
                    partition, offset,
                ).encode()  # fmt: skip
                payload_bytes += len(key) + len(value)
                yield key, value, None

        began = time.monotonic()
        _write(settings, ledger_topic, entries(), params.timeout_s)
        write_s = time.monotonic() - began
        marks = tail.watermarks(settings, [ledger_topic])[ledger_topic]
        stored = sum(high - low for low, high in marks.values())

        rss_before = _rss_mib()
        began = time.monotonic()
        ledger = read_ledger(settings, idle_timeout_s=60)
        read_s = time.monotonic() - began
        rss_growth = _rss_mib() - rss_before
        ok = len(ledger) == n and ledger.garbage == 0 and ledger.stale == 0
        del ledger

        cache = LedgerCache()
        refreshes: list[float] = []
        while not cache.complete and len(refreshes) < 10 * (n // LEDGER_BUDGET + 2):
            began = time.monotonic()
            cache.refresh(settings, budget=LEDGER_BUDGET, timeout_s=10)
            refreshes.append(time.monotonic() - began)
        began = time.monotonic()
        cache.refresh(settings, budget=LEDGER_BUDGET, timeout_s=10)
        idle_refresh_ms = (time.monotonic() - began) * 1000
        ok = ok and cache.complete and len(cache.ledger) == n

    result.ok = ok
    result.rows = [
        ["ledger records", fmt(stored)],
        ["key + value bytes", fmt(payload_bytes / 1e6, 1, " MB")],
        ["bytes per entry (key + value)", fmt(payload_bytes / n, 0)],
        ["write (producer, acks=all)", fmt(write_s, 1, " s")],
        ["full read (read_ledger, once per command)", fmt(read_s, 1, " s")],
        ["full read rate", fmt(n / read_s if read_s else None, 0, " entries/s")],
        ["reader RSS growth (in-memory ledger)", fmt(rss_growth, 0, " MiB")],
        [f"dashboard refreshes to catch up ({LEDGER_BUDGET:,} per refresh)", fmt(len(refreshes))],
        ["  slowest catch-up refresh", fmt(max(refreshes) * 1000 if refreshes else None, 0, " ms")],
        ["  refresh with nothing new", fmt(idle_refresh_ms, 0, " ms")],
    ]
    result.data = {
        "entries": n,
        "ledger_records": stored,
        "payload_bytes": payload_bytes,
        "write_s": round(write_s, 2),
        "read_s": round(read_s, 2),
        "read_entries_per_s": round(n / read_s) if read_s else None,
        "rss_growth_mib": round(rss_growth, 1),
        "catch_up_refreshes": len(refreshes),
        "catch_up_refresh_ms": [round(s * 1000) for s in refreshes],
        "idle_refresh_ms": round(idle_refresh_ms),
        "complete": ok,
    }
    result.notes = [
        "on-disk size is not measured (the Python client has no DescribeLogDirs); the broker"
        " adds roughly 70 bytes of record and batch overhead to the key + value bytes",
    ]
    return result
