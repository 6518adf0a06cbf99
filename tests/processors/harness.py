"""Helpers for the processor tests: topics, orders, subprocess processors, committed reads."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from confluent_kafka.admin import NewTopic

from processors.core import headers as h
from processors.core.order import Item, Order, Simulation
from processors.kafka.clients import admin_client, consumer, producer
from processors.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def create_topics(settings: Settings, partitions: int = 3) -> None:
    admin = admin_client(settings)
    futures = admin.create_topics(
        [NewTopic(name, partitions, 1) for name in settings.all_topics], operation_timeout=30
    )
    for future in futures.values():
        future.result(timeout=30)


def delete_topics(settings: Settings) -> None:
    admin = admin_client(settings)
    for future in admin.delete_topics(settings.all_topics, operation_timeout=30).values():
        with contextlib.suppress(Exception):  # best effort cleanup
            future.result(timeout=30)


def order(order_id: str, simulate: Simulation | None = None) -> Order:
    return Order(
        order_id=order_id,
        customer_id="c-1",
        items=[Item(sku="SKU-1", quantity=2, unit_price=Decimal("4.50"))],
        currency="EUR",
        total=Decimal("9.00"),
        created_at=datetime(2026, 1, 31, 12, 0, tzinfo=UTC),
        simulate=simulate,
    )


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    timestamp: int

    @property
    def header(self) -> dict[str, bytes | None]:
        return dict(self.headers)

    def int_header(self, name: str) -> int:
        raw = self.header[name]
        assert raw is not None
        return int(raw)

    @property
    def json(self) -> Any:
        assert self.value is not None
        return json.loads(self.value)


def produce(
    settings: Settings,
    records: Iterable[tuple[Any, ...]],
    topic: str | None = None,
    client: Any = None,
) -> None:
    """Produce ``(key, value[, headers[, partition]])`` tuples and wait for delivery (with
    ``client``, an already connected producer, when timing matters)."""
    client = client or producer(settings)
    errors: list[Any] = []
    for item in records:
        key, value, *rest = item
        kwargs: dict[str, Any] = {}
        if rest and rest[0] is not None:
            kwargs["headers"] = rest[0]
        if len(rest) > 1:
            kwargs["partition"] = rest[1]
        client.produce(
            topic or settings.topic_main,
            key=key,
            value=value,
            on_delivery=lambda err, _m: err and errors.append(err),
            **kwargs,
        )
        client.poll(0)
    assert client.flush(30) == 0
    assert not errors, errors


def read_all(
    settings: Settings,
    topics: list[str],
    done: Callable[[dict[str, list[Record]]], bool],
    timeout_s: float,
    idle_s: float = 0.0,
    isolation: str = "read_committed",
) -> dict[str, list[Record]]:
    """Read committed records (or all: ``isolation="read_uncommitted"``) of ``topics`` from the
    beginning until ``done(records)`` (then ``idle_s`` more seconds, to catch late duplicates)
    or the deadline."""
    reader = consumer(
        settings, f"test-reader-{time.monotonic_ns()}", **{"isolation.level": isolation}
    )
    deadline = time.monotonic() + timeout_s
    # A broker just resumed or restarted can answer metadata with a topic error and no
    # partitions: ask again (bounded) rather than read nothing until the deadline.
    while True:
        metadata = reader.list_topics(timeout=10)
        known = {t: metadata.topics.get(t) for t in topics}
        if all(m is not None and m.error is None and m.partitions for m in known.values()):
            break
        if time.monotonic() >= deadline:
            break  # read what is known; the caller's assertion reports what is missing
        time.sleep(0.5)
    assignment = [
        TopicPartition(t, p, OFFSET_BEGINNING)
        for t in topics
        if known[t] is not None
        for p in known[t].partitions
    ]
    reader.assign(assignment)
    records: dict[str, list[Record]] = {t: [] for t in topics}
    satisfied_at: float | None = None
    try:
        while time.monotonic() < deadline:
            for message in reader.consume(500, timeout=0.2):
                if message.error():
                    continue
                records[message.topic()].append(
                    Record(
                        message.topic(),
                        message.partition(),
                        message.offset(),
                        message.key(),
                        message.value(),
                        list(message.headers() or []),
                        message.timestamp()[1],
                    )
                )
            if satisfied_at is None and done(records):
                satisfied_at = time.monotonic()
            if satisfied_at is not None and time.monotonic() - satisfied_at >= idle_s:
                break
    finally:
        reader.close()
    return records


def settings_env(settings: Settings, **overrides: Any) -> dict[str, str]:
    """The settings as ``ORDERFLOW_*`` variables for a subprocess."""
    values = settings.model_dump() | overrides
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    for name, value in values.items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, list):
            value = ",".join(value)
        env[f"ORDERFLOW_{name.upper()}"] = str(value)
    env["PYTHONPATH"] = str(ROOT)
    return env


@dataclass
class Proc:
    """A processor running as ``python -m processors.<role>`` with its log in a file."""

    role: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Proc:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"processors.{self.role}"],
            env=self.env,
            cwd=self.log_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log:
                return
            assert self.process is not None and self.process.poll() is None, self.log[-3000:]
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not logged by {self.role} within {timeout_s}s:\n{self.log}")

    def terminate(self, timeout_s: float = 10) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds to exit)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout_s)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def contract_headers_of_dlq() -> tuple[str, ...]:
    return (
        h.ATTEMPTS,
        h.MAX_ATTEMPTS,
        h.FIRST_FAILURE_AT,
        h.LAST_FAILURE_AT,
        *h.ORIGINAL_HEADERS,
        h.ERROR_CLASS,
        h.ERROR_MESSAGE,
        h.ERROR_CATEGORY,
        h.PROCESSOR,
        h.CONSUMER_GROUP,
        h.DLQ_REASON,
        h.DLQ_AT,
        h.ERROR_STACKTRACE,
    )
