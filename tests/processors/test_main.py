"""The main processor against a real broker: success, permanent failures, poison records,
graceful shutdown, two instances sharing the partitions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka import TopicPartition

from processors.core import headers as h
from processors.core.order import Simulation
from processors.kafka.clients import admin_client, consumer
from processors.settings import Settings
from tests.processors.conftest import ProcFactory, fresh_settings
from tests.processors.harness import (
    Proc,
    Record,
    contract_headers_of_dlq,
    create_topics,
    delete_topics,
    order,
    produce,
    read_all,
    settings_env,
)

pytestmark = pytest.mark.kafka

POISON = {
    "p-json": (b"p-json", b'{"order_id": "p-json", '),
    "p-utf8": (b"p-utf8", b"\xff\xfe\x00order"),
    "p-empty": (b"p-empty", b""),
    "p-null": (b"p-null", None),
    "p-array": (b"p-array", b"[1, 2, 3]"),
    "p-schema": (b"p-schema", b'{"order_id": "p-schema", "items": []}'),
    "p-nokey": (None, b"\x00\x01binary"),
}
EXPECTED_POISON_REASON = {
    "p-json": "deserialization_failed",
    "p-utf8": "deserialization_failed",
    "p-empty": "deserialization_failed",
    "p-null": "deserialization_failed",
    "p-array": "validation_failed",
    "p-schema": "validation_failed",
    "p-nokey": "deserialization_failed",
}


@dataclass
class Run:
    settings: Settings
    records: dict[str, list[Record]]
    main: Proc
    produced_at: int

    def on(self, topic: str, key: bytes | None) -> list[Record]:
        return [r for r in self.records[topic] if r.key == key]


@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("main")
    settings = fresh_settings(kafka_bootstrap, tmp / "state")
    create_topics(settings)
    main = Proc("main", settings_env(settings, instance_id="m1"), tmp / "main.log").start()
    try:
        produced_at = int(time.time() * 1000)
        ce = [
            (h.CE_ID, b"evt-ok-1"),
            (h.TRACEPARENT, b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"),
        ]
        produce(settings, [(b"ok-1", order("ok-1").to_json_bytes(), ce)])
        produce(
            settings, [(b"perm-1", order("perm-1", Simulation(error="permanent")).to_json_bytes())]
        )
        # Poison first, then a valid order with the same key (same partition, behind them).
        produce(
            settings, [(key, value, [("custom", b"\x00kept")]) for key, value in POISON.values()]
        )
        produce(settings, [(b"p-json", order("after-poison").to_json_bytes())])
        names = [settings.topic_retry, settings.topic_dlq, settings.topic_processed]

        def done(records: dict[str, list[Record]]) -> bool:
            return (
                len(records[settings.topic_dlq]) >= 1 + len(POISON)
                and len(records[settings.topic_processed]) >= 2
            )

        records = read_all(settings, names, done, timeout_s=60, idle_s=1.0)
        yield Run(settings, records, main, produced_at)
    finally:
        main.kill()
        delete_topics(settings)


def test_success_goes_to_processed_only(run: Run) -> None:
    s = run.settings
    assert run.on(s.topic_retry, b"ok-1") == []
    assert run.on(s.topic_dlq, b"ok-1") == []
    [outcome] = run.on(s.topic_processed, b"ok-1")
    body = outcome.json
    assert body["order_id"] == "ok-1"
    assert body["event_id"] == "evt-ok-1"
    assert body["attempts"] == 1
    assert body["processor"] == "orderflow-main/0.1.0/m1"
    assert body["processed_at"] >= run.produced_at
    assert outcome.header[h.TRACEPARENT].startswith(b"00-1111")
    assert outcome.header[h.ATTEMPTS] == b"1"
    assert outcome.header[h.ORIGINAL_TOPIC] == s.topic_main.encode()


def test_permanent_failure_is_dead_lettered_on_the_first_attempt(run: Run) -> None:
    s = run.settings
    assert run.on(s.topic_retry, b"perm-1") == []
    assert run.on(s.topic_processed, b"perm-1") == []
    [dead] = run.on(s.topic_dlq, b"perm-1")
    assert dead.header[h.DLQ_REASON] == b"non_retryable"
    assert dead.header[h.ERROR_CATEGORY] == b"permanent"
    assert dead.header[h.ERROR_CLASS] == b"processors.handler.PaymentDeclined"
    assert dead.header[h.ATTEMPTS] == b"1"
    assert dead.value == order("perm-1", Simulation(error="permanent")).to_json_bytes()
    for name in contract_headers_of_dlq():
        assert name in dead.header, name
    assert h.RETRY_DUE_AT not in dead.header
    assert dead.timestamp == dead.int_header(h.LAST_FAILURE_AT)
    assert dead.int_header(h.ORIGINAL_TIMESTAMP) >= run.produced_at - 1000
    assert b"PaymentDeclined" in (dead.header[h.ERROR_STACKTRACE] or b"")


@pytest.mark.parametrize("name", sorted(POISON))
def test_poison_records_are_dead_lettered_byte_exact(run: Run, name: str) -> None:
    key, value = POISON[name]
    s = run.settings
    matches = [r for r in run.records[s.topic_dlq] if r.key == key and r.value == value]
    assert len(matches) == 1, [(r.key, r.value) for r in run.records[s.topic_dlq]]
    [dead] = matches
    assert dead.value == value and (dead.value is None) == (value is None)
    assert dead.key == key
    assert dead.header[h.DLQ_REASON] == EXPECTED_POISON_REASON[name].encode()
    expected_category = EXPECTED_POISON_REASON[name].removesuffix("_failed").encode()
    assert dead.header[h.ERROR_CATEGORY] == expected_category
    # original headers carried unchanged, before the contract headers
    assert dead.headers[0] == ("custom", b"\x00kept")
    assert run.on(s.topic_retry, key) == []


def test_processor_keeps_running_after_poison(run: Run) -> None:
    [outcome] = [r for r in run.records[run.settings.topic_processed] if r.key == b"p-json"]
    assert outcome.json["order_id"] == "after-poison"
    assert run.main.alive()


def test_sigterm_exits_zero_within_ten_seconds(run: Run) -> None:
    code, seconds = run.main.terminate(timeout_s=10)
    assert code == 0, run.main.log[-2000:]
    assert seconds < 10
    assert "event=stopped processor=main" in run.main.log
    print(f"main processor SIGTERM → exit 0 in {seconds:.2f}s")


def _members(settings: Settings, group: str) -> dict[str, int]:
    admin = admin_client(settings)
    [description] = admin.describe_consumer_groups([group]).values()
    result = description.result(timeout=10)
    return {m.client_id + m.member_id: len(m.assignment.topic_partitions) for m in result.members}


@pytest.mark.slow
def test_two_instances_share_partitions_and_lose_nothing_when_one_stops(
    flow_settings: Settings, start_processor: ProcFactory
) -> None:
    s = flow_settings
    first = start_processor(s, "main", instance_id="one")
    second = start_processor(s, "main", instance_id="two")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        members = _members(s, s.group_main)
        if len(members) == 2 and all(members.values()):
            break
        time.sleep(0.3)
    else:
        pytest.fail(f"two members never shared the partitions: {members}")

    produce(s, [(f"a-{i}".encode(), order(f"a-{i}").to_json_bytes()) for i in range(300)])
    # Stop "one" once it has done some of them (not after a fixed sleep: on a busy machine it
    # may not have processed any yet, and then the check that both worked would fail).
    read_all(
        s,
        [s.topic_processed],
        lambda r: any(x.json["processor"].endswith("/one") for x in r[s.topic_processed]),
        timeout_s=60,
    )
    code, seconds = first.terminate()
    assert code == 0 and seconds < 10
    produce(s, [(f"b-{i}".encode(), order(f"b-{i}").to_json_bytes()) for i in range(300)])

    records = read_all(
        s, [s.topic_processed], lambda r: len(r[s.topic_processed]) >= 600, timeout_s=60, idle_s=1
    )
    ids = [r.json["order_id"] for r in records[s.topic_processed]]
    assert len(ids) == 600 and len(set(ids)) == 600
    processors = {r.json["processor"] for r in records[s.topic_processed]}
    assert processors == {"orderflow-main/0.1.0/one", "orderflow-main/0.1.0/two"}
    assert second.alive()


def test_without_an_outcome_topic_a_success_writes_nothing_and_is_committed(
    flow_settings: Settings, start_processor: ProcFactory
) -> None:
    s = flow_settings
    main = start_processor(s, "main", topic_processed="")
    # One key, so one partition: the dead letter is behind the successes.
    produce(s, [(b"k", order(f"quiet-{i}").to_json_bytes()) for i in range(5)])
    produce(s, [(b"k", order("quiet-perm", Simulation(error="permanent")).to_json_bytes())])
    records = read_all(
        s,
        [s.topic_dlq, s.topic_processed, s.topic_retry],
        lambda r: len(r[s.topic_dlq]) >= 1,
        timeout_s=60,
        idle_s=1.0,
    )
    [dead] = records[s.topic_dlq]
    assert b"quiet-perm" in (dead.value or b"")
    assert records[s.topic_processed] == [] and records[s.topic_retry] == []
    reader = consumer(s, s.group_main)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            partitions = reader.list_topics(s.topic_main, timeout=10).topics[s.topic_main]
            committed = reader.committed(
                [TopicPartition(s.topic_main, p) for p in partitions.partitions], timeout=10
            )
            if sum(max(tp.offset, 0) for tp in committed) == 6:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"not every input was committed: {committed}")
    finally:
        reader.close()
    assert main.alive()
