"""kill -9 of both processors in the middle of thousands of orders, then restart: every order
ends in exactly one of processed / DLQ, exactly once (exactly-once mode, read_committed)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from processors.core import headers as h
from processors.core.order import Simulation
from processors.kafka.clients import producer
from processors.settings import Settings
from tests.processors.conftest import ProcFactory, fresh_settings
from tests.processors.harness import (
    Record,
    create_topics,
    delete_topics,
    order,
    produce,
    read_all,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ORDERS = 3000


def scenario(i: int) -> tuple[bytes, bytes | None, str]:
    """Key, value and expected end (``processed`` or a DLQ reason) of order ``i``."""
    key = f"k-{i}".encode()
    kind = i % 20
    if kind <= 12:
        return key, order(f"k-{i}").to_json_bytes(), "processed"
    if kind in (13, 14):
        return key, order(f"k-{i}", Simulation(fail_attempts=1)).to_json_bytes(), "processed"
    if kind == 15:
        return key, order(f"k-{i}", Simulation(fail_attempts=2)).to_json_bytes(), "processed"
    if kind == 16:
        return key, order(f"k-{i}", Simulation(error="permanent")).to_json_bytes(), "non_retryable"
    if kind == 17:
        transient = Simulation(error="transient")
        return key, order(f"k-{i}", transient).to_json_bytes(), "max_attempts_exhausted"
    if kind == 18:
        return (
            key,
            order(f"k-{i}").to_json_bytes().replace(b'"9.00"', b'"9.01"'),
            ("validation_failed"),
        )
    return key, b'{"order_id": "k-%d"' % i, "deserialization_failed"


def ends(settings: Settings, records: dict[str, list[Record]]) -> Counter[bytes | None]:
    return Counter(
        r.key for t in (settings.topic_processed, settings.topic_dlq) for r in records[t]
    )


def assert_expected_ends(
    settings: Settings, records: dict[str, list[Record]], expected: dict[bytes, str]
) -> None:
    for record in records[settings.topic_processed]:
        assert expected[record.key] == "processed", record.key
    for record in records[settings.topic_dlq]:
        assert expected[record.key] == (record.header[h.DLQ_REASON] or b"").decode(), record.key


def test_kill_9_both_processors_mid_run_then_restart(
    flow_settings: Settings, start_processor: ProcFactory
) -> None:
    s = flow_settings
    expected = {key: end for key, _, end in map(scenario, range(ORDERS))}
    assert "validation_failed" in expected.values()
    outputs = [s.topic_processed, s.topic_dlq]

    main = start_processor(s, "main", instance_id="m1")
    retry = start_processor(s, "retry", instance_id="r1")
    retry.wait_for_log("event=assigned")
    client = producer(s)
    started = time.monotonic()
    produce(s, [scenario(i)[:2] for i in range(ORDERS)], client=client)

    kills, reached = [], []
    for fraction in (0.3, 0.7):
        target = int(ORDERS * fraction)
        read_all(s, outputs, lambda r, t=target: sum(ends(s, r).values()) >= t, timeout_s=120)
        reached.append(round(time.monotonic() - started, 2))
        main.kill()
        retry.kill()
        kills.append(round(time.monotonic() - started, 2))
        main = start_processor(s, "main", instance_id="m1")
        retry = start_processor(s, "retry", instance_id="r1")

    records = read_all(s, outputs, lambda r: len(ends(s, r)) >= ORDERS, timeout_s=180, idle_s=3.0)
    elapsed = time.monotonic() - started
    counts = ends(s, records)
    missing = [key for key in expected if key not in counts]
    duplicated = {key: n for key, n in counts.items() if n > 1}
    assert not missing, f"{len(missing)} orders lost, e.g. {missing[:5]}"
    assert not duplicated, f"{len(duplicated)} orders duplicated, e.g. {list(duplicated)[:5]}"

    assert_expected_ends(s, records, expected)
    assert "event=rewind" not in main.log + retry.log
    print(
        f"exactly-once: {ORDERS} orders, kill -9 of both processors at {kills}s "
        f"(30%/70% settled at {reached}s), all settled exactly once in {elapsed:.1f}s "
        f"({ORDERS / elapsed:.0f} orders/s end to end, incl. restarts and retry backoff)"
    )


def test_at_least_once_loses_nothing_across_kill_9(
    kafka_bootstrap: str, tmp_path, start_processor: ProcFactory
) -> None:
    """At-least-once: the forward is acknowledged before the offset commit, so a crash may
    duplicate an outcome but never lose an order."""
    s = fresh_settings(kafka_bootstrap, tmp_path / "state", processing_guarantee="at-least-once")
    create_topics(s)
    try:
        total = 1500
        expected = {key: end for key, _, end in map(scenario, range(total))}
        outputs = [s.topic_processed, s.topic_dlq]
        main = start_processor(s, "main", instance_id="m1")
        retry = start_processor(s, "retry", instance_id="r1")
        retry.wait_for_log("event=assigned")
        produce(s, [scenario(i)[:2] for i in range(total)])
        read_all(s, outputs, lambda r: sum(ends(s, r).values()) >= total // 2, timeout_s=120)
        main.kill()
        retry.kill()
        start_processor(s, "main", instance_id="m1")
        start_processor(s, "retry", instance_id="r1")
        records = read_all(s, outputs, lambda r: len(ends(s, r)) >= total, timeout_s=180, idle_s=3)
        counts = ends(s, records)
        missing = [key for key in expected if key not in counts]
        assert not missing, f"{len(missing)} orders lost, e.g. {missing[:5]}"
        assert_expected_ends(s, records, expected)
        duplicates = sum(n - 1 for n in counts.values())
        print(f"at-least-once: {total} orders, kill -9 mid-run, none lost, {duplicates} duplicates")
    finally:
        delete_topics(s)
