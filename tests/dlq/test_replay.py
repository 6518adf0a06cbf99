"""Replaying dead letters against a real broker: headers, dry run, loop guard, resume, rate."""

from __future__ import annotations

import time

import pytest

from processors.core import headers as h
from processors.dlq import DEFAULT_REPLAY_GROUP, DlqFilter, get_dead_letter, replay, replay_edited
from processors.errors import InvalidOrderError, KafkaUnavailableError
from processors.kafka import tail
from processors.settings import load_settings
from tests.dlq.conftest import dead_letter
from tests.dlq.support import committed, read_all
from tests.producer.test_producer import closed_port

pytestmark = pytest.mark.kafka


@pytest.fixture
def group(unique: str) -> str:
    return f"g-{unique}-replay"


def sizes(settings) -> dict[str, int]:
    return tail.topic_totals(settings, settings.all_topics)


def dlq_snapshot(settings) -> list[tuple]:
    return sorted(
        (r.partition, r.offset, r.key, r.value, tuple(r.headers))
        for r in tail.scan(settings, settings.topic_dlq)
    )


def test_dry_run_writes_and_commits_nothing(dlq_topics, write_dlq, group) -> None:
    settings = dlq_topics
    write_dlq([dead_letter(settings, order_id=f"d{i}") for i in range(10)])
    before = sizes(settings)

    report = replay(settings, DlqFilter(), dry_run=True, group=group)

    assert (report.dry_run, report.replayed, report.selected, report.failed) == (True, 10, 10, 0)
    assert report.targets == {settings.topic_main: 10}
    assert sizes(settings) == before
    assert committed(settings, group, settings.topic_dlq) == {}


def test_replay_to_original_carries_replay_headers(dlq_topics, write_dlq, group) -> None:
    settings = dlq_topics
    records = [
        dead_letter(settings, order_id=f"r{i}", extra=[("foreign", b"\x00\xff")]) for i in range(6)
    ]
    write_dlq(records, partition=1)
    write_dlq(
        [dead_letter(settings, order_id="other", reason="max_attempts_exhausted")], partition=1
    )
    snapshot = dlq_snapshot(settings)
    started_ms = int(time.time() * 1000)

    report = replay(settings, DlqFilter(reason="non_retryable"), group=group)

    assert (report.replayed, report.selected, report.failed, report.ok) == (6, 6, 0, True)
    out = read_all(settings, settings.topic_main, 6)
    assert len(out) == 6
    by_key = {key: (value, dict(headers), headers) for _, _, key, value, headers in out}
    for offset, (key, value, headers) in enumerate(records):
        got_value, got, raw = by_key[key]
        assert got_value == value
        original = dict(headers)
        for name in (h.CE_ID, h.CE_TIME, h.CE_SOURCE, h.CE_TYPE, h.CE_SPECVERSION, h.TRACEPARENT):
            assert got[name] == original[name]
        for name in (*h.ORIGINAL_HEADERS, h.CONTENT_TYPE, "foreign"):
            assert got[name] == original[name]
        assert got[h.REPLAY_COUNT] == b"1"
        assert started_ms <= int(got[h.REPLAYED_AT]) <= int(time.time() * 1000)
        assert got[h.REPLAY_OF] == f"{settings.topic_dlq}:1:{offset}".encode()
        assert not set(got) & set(h.HOP_HEADERS)  # attempts, error and DLQ state reset
        assert len(raw) == len(got)
    assert dlq_snapshot(settings) == snapshot  # the DLQ is never altered
    # unmatched records are committed past too: the run ends at the DLQ's end
    assert committed(settings, group, settings.topic_dlq)[1] == 7
    assert sizes(settings)[settings.topic_retry] == 0


def test_replay_to_retry_gets_a_fresh_attempt_budget(dlq_topics, write_dlq, group) -> None:
    settings = dlq_topics
    write_dlq([dead_letter(settings, order_id="t1", attempts=5)])
    report = replay(settings, DlqFilter(), to="retry", group=group)
    assert report.targets == {settings.topic_retry: 1}
    [(*_, headers)] = read_all(settings, settings.topic_retry, 1)
    assert dict(headers)[h.ATTEMPTS] == b"0"
    assert h.RETRY_DUE_AT not in dict(headers)


def test_loop_guard_refuses_a_fourth_replay_unless_forced(dlq_topics, write_dlq, group) -> None:
    settings = dlq_topics
    write_dlq(
        [
            dead_letter(settings, order_id="twice", replay_count=2),
            dead_letter(settings, order_id="thrice", replay_count=3),
            dead_letter(settings, order_id="garbage", extra=[(h.REPLAY_COUNT, b"lots")]),
        ],
        partition=0,
    )
    report = replay(settings, DlqFilter(), group=group)
    assert (report.replayed, report.refused_count, report.ok) == (1, 2, True)
    assert {ref.split(":")[-1]: why for ref, why in report.refused}.keys() == {"1", "2"}
    assert "already replayed 3 times" in dict(report.refused)[f"{settings.topic_dlq}:0:1"]
    [(*_, key, _, headers)] = read_all(settings, settings.topic_main, 1)
    assert key == b"twice" and dict(headers)[h.REPLAY_COUNT] == b"3"

    forced = replay(settings, DlqFilter(order_id="thrice"), force=True, group=group)
    assert (forced.replayed, forced.refused_count) == (1, 0)
    counts = {
        k: dict(hs)[h.REPLAY_COUNT] for *_, k, _, hs in read_all(settings, settings.topic_main, 2)
    }
    assert counts == {b"twice": b"3", b"thrice": b"4"}


def test_crashed_run_resumes_and_stops_at_the_end(dlq_topics, write_dlq, group) -> None:
    settings = dlq_topics
    write_dlq([dead_letter(settings, order_id=f"c{i}") for i in range(300)])
    seen = {"n": 0}

    def crash(done: int, total: int) -> None:
        # At 200/s the 250th record comes >= 1.245 s after the first, so after the first
        # checkpoint (1 s after the run's loop starts); never before it, however slow the box.
        seen["n"] += 1
        if seen["n"] == 250:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        replay(settings, DlqFilter(), group=group, rate=200, progress=crash)
    partial = committed(settings, group, settings.topic_dlq)
    assert 0 < sum(partial.values()) < 300  # checkpoints were committed on the way
    write_dlq([dead_letter(settings, order_id=f"late{i}") for i in range(5)])  # after the start

    resumed = replay(settings, DlqFilter(), group=group)

    assert resumed.resumed and resumed.ok
    assert resumed.replayed + resumed.previously_replayed >= 300 - resumed.replayed // 10
    out = read_all(settings, settings.topic_main, 300)
    keys = {key for *_, key, _, _ in out}
    assert keys == {f"c{i}".encode() for i in range(300)}  # every one, no late one
    assert len(out) == 300  # exactly once: the crashed run's open transaction was aborted
    assert resumed.replayed + resumed.previously_replayed == 300
    ends = tail.watermarks(settings, [settings.topic_dlq])[settings.topic_dlq]
    assert (
        sum(committed(settings, group, settings.topic_dlq).values())
        == sum(high for _, high in ends.values()) - 5
    )  # stopped at the end captured by the first start, before the late records

    # Finished: the same command starts a new run, which moves only what is left to do.
    rest = replay(settings, DlqFilter(), group=group)
    assert not rest.resumed and (rest.replayed, rest.skipped_redriven) == (5, 300)
    again = replay(settings, DlqFilter(), group=group, again=True)
    assert (again.replayed, again.again, again.skipped_redriven) == (305, 305, 0)


def test_limit_and_rate(dlq_topics, write_dlq, group) -> None:
    settings = dlq_topics
    write_dlq([dead_letter(settings, order_id=f"l{i}") for i in range(120)], partition=0)

    limited = replay(settings, DlqFilter(), limit=7, group=group)
    assert (limited.replayed, limited.stopped_by_limit) == (7, True)
    assert committed(settings, group, settings.topic_dlq)[0] == 7

    started = time.monotonic()
    paced = replay(settings, DlqFilter(), rate=50, limit=100, group=group, restart=True)
    elapsed = time.monotonic() - started
    assert paced.replayed == 100
    # 100 records at 50/s: the last one is sent 99/50 = 1.98 s after the first. The upper
    # bound only catches a stalled limiter; a busy machine may be slower, never faster.
    assert 1.9 < elapsed < 20, elapsed


def test_replay_edited_validates_and_leaves_the_dlq_alone(dlq_topics, write_dlq) -> None:
    settings = dlq_topics
    key, value, _ = record = dead_letter(settings, order_id="edit-me")
    write_dlq([record], partition=2)
    letter = get_dead_letter(settings, 2, 0)
    snapshot = dlq_snapshot(settings)

    with pytest.raises(InvalidOrderError, match="total"):
        replay_edited(settings, letter, value.replace(b'"total":"', b'"total":"9'))
    assert sizes(settings)[settings.topic_main] == 0

    fixed = letter.payload_json | {"simulate": None}
    fixed.pop("simulate")
    import json

    new_value = json.dumps(fixed).encode()
    report = replay_edited(settings, letter, new_value)
    assert (report.replayed, report.ok) == (1, True)
    [(*_, got_key, got_value, headers)] = read_all(settings, settings.topic_main, 1)
    assert (got_key, got_value) == (key, new_value)
    assert dict(headers)[h.REPLAY_OF] == f"{settings.topic_dlq}:2:0".encode()
    assert dlq_snapshot(settings) == snapshot


def test_missing_target_is_refused(dlq_topics, write_dlq, group) -> None:
    settings = dlq_topics
    no_origin = (b"k", b"{}", [(h.DLQ_REASON, b"deserialization_failed")])
    write_dlq(
        [no_origin, dead_letter(settings, order_id="x", extra=[(h.ORIGINAL_TOPIC, b"gone.topic")])]
    )
    report = replay(settings, DlqFilter(), group=group)
    reasons = sorted(why for _, why in report.refused)
    assert report.replayed == 0 and len(reasons) == 2
    assert "no x-original-topic" in reasons[0] and "gone.topic does not exist" in reasons[1]


def test_broker_down_is_reported_within_the_timeout(tmp_path) -> None:
    settings = load_settings(bootstrap_servers=f"127.0.0.1:{closed_port()}", state_dir=tmp_path)
    started = time.monotonic()
    with pytest.raises(KafkaUnavailableError):
        replay(settings, DlqFilter(), group=DEFAULT_REPLAY_GROUP, idle_timeout_s=2)
    assert time.monotonic() - started < 15
