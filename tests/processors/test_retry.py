"""The retry processor against a real broker (with the main processor in front of it): backoff
never early, bounded attempts, no head-of-line blocking, garbage headers, graceful shutdown."""

from __future__ import annotations

import re
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from processors.core import headers as h
from processors.core.order import Simulation
from processors.kafka.clients import producer
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

LONG_DELAY_MS = 3000  # = backoff_max_ms of the fast test policy
SHORT_DELAY_MS = 300


@dataclass
class Run:
    settings: Settings
    records: dict[str, list[Record]]
    main: Proc
    retry: Proc
    marks: dict[str, int]

    def on(self, topic: str, key: bytes) -> list[Record]:
        return [r for r in self.records[topic] if r.key == key]

    @property
    def processed(self) -> dict[bytes | None, list[Record]]:
        result: dict[bytes | None, list[Record]] = {}
        for record in self.records[self.settings.topic_processed]:
            result.setdefault(record.key, []).append(record)
        return result


def retry_headers(now: int, due: bytes, attempts: bytes = b"1") -> list[tuple[str, bytes]]:
    return [
        (h.ATTEMPTS, attempts),
        (h.MAX_ATTEMPTS, b"4"),
        (h.RETRY_DUE_AT, due),
        (h.FIRST_FAILURE_AT, str(now).encode()),
        (h.LAST_FAILURE_AT, str(now).encode()),
    ]


def _warm_up(settings: Settings, client: Any) -> None:
    """One record through each retry partition and one retry hop through main: the timing
    assertions below measure steady state, not the first fetch after start-up."""
    now = int(time.time() * 1000)
    produce(
        settings,
        [
            (b"warm-%d" % p, order(f"warm-{p}").to_json_bytes(), retry_headers(now, b"0"), p)
            for p in range(3)
        ],
        topic=settings.topic_retry,
        client=client,
    )
    produce(
        settings, [(b"warm-main", order("warm-main", Simulation(fail_attempts=1)).to_json_bytes())]
    )
    warm = {b"warm-0", b"warm-1", b"warm-2", b"warm-main"}
    read_all(
        settings,
        [settings.topic_processed],
        lambda r: warm <= {x.key for x in r[settings.topic_processed]},
        timeout_s=60,
    )


EXPECT_PROCESSED = [b"twice", b"hol-long", b"hol-short", b"due-garbage", b"att-99", b"due-far"]
EXPECT_DLQ = [b"always", b"att-garbage"]


@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("retry")
    settings = fresh_settings(kafka_bootstrap, tmp / "state")
    create_topics(settings)
    main = Proc("main", settings_env(settings, instance_id="m1"), tmp / "main.log").start()
    retry_env = settings_env(settings, instance_id="r1", metrics_port=0)
    retry = Proc("retry", retry_env, tmp / "retry.log").start()
    try:
        retry.wait_for_log("event=assigned", timeout_s=30)
        client = producer(settings)
        _warm_up(settings, client)
        marks: dict[str, int] = {}
        produce(
            settings,
            [
                (b"twice", order("twice", Simulation(fail_attempts=2)).to_json_bytes()),
                (b"always", order("always", Simulation(error="transient")).to_json_bytes()),
            ],
        )
        now = int(time.time() * 1000)
        marks["direct"] = now
        marks["hol-long"] = now + LONG_DELAY_MS
        marks["hol-short"] = now + SHORT_DELAY_MS
        always = order("att-garbage", Simulation(error="transient")).to_json_bytes()
        direct = [
            # one partition: the long delay first, the short one behind it
            (
                b"hol-long",
                order("hol-long").to_json_bytes(),
                retry_headers(now, b"%d" % marks["hol-long"]),
                0,
            ),
            (
                b"hol-short",
                order("hol-short").to_json_bytes(),
                retry_headers(now, b"%d" % marks["hol-short"]),
                0,
            ),
            (
                b"due-garbage",
                order("due-garbage").to_json_bytes(),
                retry_headers(now, b"next tuesday"),
                1,
            ),
            (
                b"due-far",
                order("due-far").to_json_bytes(),
                retry_headers(now, b"%d" % (now + 10 * 365 * 86_400_000)),
                1,
            ),
            (b"att-99", order("att-99").to_json_bytes(), retry_headers(now, b"0", b"99"), 2),
            (b"att-garbage", always, retry_headers(now, b"0", b"many"), 2),
        ]
        produce(settings, direct, topic=settings.topic_retry, client=client)
        names = [settings.topic_retry, settings.topic_dlq, settings.topic_processed]

        def done(records: dict[str, list[Record]]) -> bool:
            keys = {r.key for r in records[settings.topic_processed]}
            dead = {r.key for r in records[settings.topic_dlq]}
            return set(EXPECT_PROCESSED) <= keys and set(EXPECT_DLQ) <= dead

        records = read_all(settings, names, done, timeout_s=90, idle_s=1.5)
        yield Run(settings, records, main, retry, marks)
    finally:
        main.kill()
        retry.kill()
        delete_topics(settings)


def test_fail_twice_then_succeed_never_early(run: Run) -> None:
    s = run.settings
    hops = sorted(run.on(s.topic_retry, b"twice"), key=lambda r: r.int_header(h.ATTEMPTS))
    assert [r.header[h.ATTEMPTS] for r in hops] == [b"1", b"2"]
    assert run.on(s.topic_dlq, b"twice") == []
    [outcome] = run.processed[b"twice"]
    assert outcome.json["attempts"] == 3
    assert outcome.json["processor"].startswith("orderflow-retry/")
    first, second = hops
    # every attempt happens at or after the due time the previous failure set
    attempt_2_at = second.int_header(h.LAST_FAILURE_AT)
    attempt_3_at = outcome.json["processed_at"]
    assert attempt_2_at >= first.int_header(h.RETRY_DUE_AT)
    assert attempt_3_at >= second.int_header(h.RETRY_DUE_AT)
    assert second.int_header(h.FIRST_FAILURE_AT) == first.int_header(h.FIRST_FAILURE_AT)
    assert second.header[h.ORIGINAL_TOPIC] == s.topic_main.encode()
    assert second.header[h.ORIGINAL_OFFSET] == first.header[h.ORIGINAL_OFFSET]
    late = [
        attempt_2_at - first.int_header(h.RETRY_DUE_AT),
        attempt_3_at - second.int_header(h.RETRY_DUE_AT),
    ]
    print(f"fail-twice lateness ms: {late}")
    assert max(late) < 2000


def test_always_transient_is_dead_lettered_after_max_attempts(run: Run) -> None:
    s = run.settings
    hops = sorted(run.on(s.topic_retry, b"always"), key=lambda r: r.int_header(h.ATTEMPTS))
    assert [r.header[h.ATTEMPTS] for r in hops] == [b"1", b"2", b"3"]
    [dead] = run.on(s.topic_dlq, b"always")
    assert run.processed.get(b"always") is None
    assert dead.header[h.DLQ_REASON] == b"max_attempts_exhausted"
    assert dead.header[h.ATTEMPTS] == b"4" and dead.header[h.MAX_ATTEMPTS] == b"4"
    assert dead.header[h.ERROR_CATEGORY] == b"transient"
    assert dead.header[h.ERROR_CLASS] == b"processors.handler.PaymentTimeout"
    for name in contract_headers_of_dlq():
        assert dead.header.get(name), name
    assert dead.header[h.ORIGINAL_TOPIC] == s.topic_main.encode()
    assert dead.header[h.CONSUMER_GROUP] == s.group_retry.encode()
    assert dead.header[h.PROCESSOR] == b"orderflow-retry/0.1.0/r1"
    assert dead.value == order("always", Simulation(error="transient")).to_json_bytes()
    # contract headers replaced on every hop, never appended
    names = [name for name, _ in dead.headers]
    for name in (*h.HOP_HEADERS, *h.ORIGINAL_HEADERS):
        assert names.count(name) <= 1, name
    previous_due = [r.int_header(h.RETRY_DUE_AT) for r in hops]
    attempt_times = [r.int_header(h.LAST_FAILURE_AT) for r in hops[1:]] + [
        dead.int_header(h.LAST_FAILURE_AT)
    ]
    for due, at in zip(previous_due, attempt_times, strict=True):
        assert at >= due
    late = [at - due for due, at in zip(previous_due, attempt_times, strict=True)]
    print(f"always-transient lateness ms: {late}")


def test_long_delay_does_not_block_a_shorter_one_behind_it(run: Run) -> None:
    [short] = run.processed[b"hol-short"]
    [long] = run.processed[b"hol-long"]
    short_at, long_at = short.json["processed_at"], long.json["processed_at"]
    assert short_at >= run.marks["hol-short"]
    # Not held behind the long one: done before the long one was even due. (How late after its
    # own due time it ran depends on the machine's load; the bench measures that.)
    assert short_at < run.marks["hol-long"]
    assert long_at >= run.marks["hol-long"]
    print(
        f"head-of-line: short late by {short_at - run.marks['hol-short']} ms, "
        f"long late by {long_at - run.marks['hol-long']} ms"
    )


def test_garbage_headers_are_handled_deliberately(run: Run) -> None:
    s = run.settings
    # The processor logs the due time it set, relative to when it read the record: exact,
    # unlike the test's clock before producing (producing and fetching take what they take).
    adjusted = dict(
        re.findall(r"note=(due_invalid|due_clamped) .*?due_in_ms=(-?\d+)", run.retry.log)
    )
    # unreadable due time: due at once
    assert adjusted.get("due_invalid") == "0", run.retry.log[-3000:]
    [garbage_due] = run.processed[b"due-garbage"]
    # a due time ten years ahead: clamped to backoff_max_ms (3 s) after it was read
    assert adjusted.get("due_clamped") == str(LONG_DELAY_MS), run.retry.log[-3000:]
    [far] = run.processed[b"due-far"]
    waited = far.json["processed_at"] - run.marks["direct"]
    assert waited >= LONG_DELAY_MS  # read after it was produced, then 3 s more
    # same partition, read first and due at once: done before the other one's 3 s are up
    assert garbage_due.json["processed_at"] < far.json["processed_at"]
    # attempts beyond the maximum: one more try (it succeeds here)
    [beyond] = run.processed[b"att-99"]
    assert beyond.json["attempts"] == 100
    # unreadable attempts: one more try, then the DLQ
    [dead] = run.on(s.topic_dlq, b"att-garbage")
    assert dead.header[h.DLQ_REASON] == b"max_attempts_exhausted"
    assert dead.header[h.ATTEMPTS] == b"4"
    assert len(run.on(s.topic_retry, b"att-garbage")) == 1  # ours: no further retry hop
    assert "note=due_clamped" in run.retry.log
    assert run.retry.alive()


def test_metrics_endpoint(run: Run) -> None:
    match = re.search(r"event=metrics_listening host=127\.0\.0\.1 port=(\d+)", run.retry.log)
    assert match, run.retry.log[:2000]
    url = f"http://127.0.0.1:{match.group(1)}/metrics"
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in body.splitlines()
        if line.startswith("orderflow_")
    }
    assert samples['orderflow_records_consumed_total{processor="retry"}'] >= 10
    assert samples['orderflow_records_retried_total{attempt="2",processor="retry"}'] >= 2
    reason = (
        'orderflow_records_dead_lettered_total{processor="retry",reason="max_attempts_exhausted"}'
    )
    assert samples[reason] == 2
    assert samples['orderflow_retry_lateness_seconds_count{processor="retry"}'] >= 10
    assert samples['orderflow_records_waiting{processor="retry"}'] == 0


def test_sigterm_exits_zero_within_ten_seconds(run: Run) -> None:
    code, seconds = run.retry.terminate(timeout_s=10)
    assert code == 0, run.retry.log[-2000:]
    assert seconds < 10
    assert "event=stopped processor=retry" in run.retry.log
    print(f"retry processor SIGTERM → exit 0 in {seconds:.2f}s")


@pytest.mark.slow
def test_handover_between_two_retry_instances_with_pausing(
    flow_settings: Settings, start_processor: ProcFactory
) -> None:
    """Two instances share the retry partitions; one stops gracefully while it holds records:
    it commits the lowest unfinished offset with the finished ones above it in the commit
    metadata, and the other takes over, skipping those. A tiny hold capacity forces
    pause/resume all along. Every record exactly once, none early."""
    s = flow_settings
    total = 600
    options = {"retry_max_held": 20, "backoff_max_ms": 20000}
    first = start_processor(s, "retry", instance_id="r1", **options)
    second = start_processor(s, "retry", instance_id="r2", **options)
    for proc in (first, second):
        proc.wait_for_log("event=assigned", timeout_s=60)
    deadline = time.monotonic() + 60
    while "event=revoked" not in first.log + second.log and time.monotonic() < deadline:
        time.sleep(0.2)  # the second join rebalances the first: let it settle
    time.sleep(1.0)
    client = producer(s)
    now = int(time.time() * 1000)
    records = []
    for i in range(total):
        due = now + 1000 + (i * 7919) % 9000  # scattered due times, out of offset order
        headers = retry_headers(now, b"%d" % due)
        records.append((b"r-%d" % i, order(f"r-{i}").to_json_bytes(), headers, i % 3))
    produce(s, records, topic=s.topic_retry, client=client)
    due_of = {key: int(dict(headers)[h.RETRY_DUE_AT]) for key, _, headers, _ in records}

    def settled(n: int):
        return lambda r: len(r[s.topic_processed]) >= n

    read_all(s, [s.topic_processed], settled(total // 4), timeout_s=60)
    code, seconds = first.terminate()
    assert code == 0 and seconds < 10
    result = read_all(s, [s.topic_processed], settled(total), timeout_s=120, idle_s=2)

    keys = Counter(r.key for r in result[s.topic_processed])
    assert set(keys) == set(due_of) and max(keys.values()) == 1
    late = sorted(r.json["processed_at"] - due_of[r.key] for r in result[s.topic_processed])
    assert late[0] >= 0
    by = Counter(r.json["processor"].rsplit("/", 1)[1] for r in result[s.topic_processed])
    assert by["r1"] > 0 and by["r2"] > by["r1"]
    assert "restored_pending=" in second.log  # resumed from out-of-order commit metadata
    print(
        f"retry handover: processed by {dict(by)}; lateness ms median {late[len(late) // 2]}, "
        f"p99 {late[int(len(late) * 0.99)]}, max {late[-1]} (includes the session-timeout "
        "handover of the stopped static member)"
    )


@pytest.mark.slow
def test_a_transaction_outliving_its_timeout_is_recovered_in_process(
    flow_settings: Settings, start_processor: ProcFactory
) -> None:
    """A handler stalls beyond ``transaction.timeout.ms``: the broker aborts the transaction and
    bumps the producer epoch, so the next transactional call fails as fenced (Kafka 4 +
    librdkafka 2.12 report it as fatal). That is not a zombie twin: the processor builds new
    clients with the same transactional id, resumes from the committed offsets and carries on
    by itself (no exit), every record exactly once."""
    s = flow_settings
    options = {"transaction_timeout_ms": 1000, "handler": "tests.processors.slow_handler:handle"}
    retry = start_processor(s, "retry", instance_id="r1", **options)
    retry.wait_for_log("event=assigned")
    now = int(time.time() * 1000)
    # A stall fences only while a transaction is open. Should a checkpoint land just before
    # t-slow, its own output opens one and v-slow, processed in the same pass, stalls inside it.
    names = [f"{p}-{i}" for p in "tuv" for i in range(60)]
    names[60:60] = ["t-slow"]
    names[121:121] = ["v-slow"]
    produce(
        s,
        [(n.encode(), order(n).to_json_bytes(), retry_headers(now, b"0"), 0) for n in names],
        topic=s.topic_retry,
    )
    result = read_all(
        s, [s.topic_processed], lambda r: len(r[s.topic_processed]) >= len(names), 90, idle_s=2
    )
    keys = Counter(r.key for r in result[s.topic_processed])
    assert set(keys) == {n.encode() for n in names} and max(keys.values()) == 1
    assert retry.alive(), retry.log[-3000:]
    assert "event=recovering processor=retry cause=fenced" in retry.log, retry.log[-3000:]
    assert "Traceback" not in retry.log
