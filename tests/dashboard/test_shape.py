from __future__ import annotations

import json

import pandas as pd
import pytest

from dashboard import shape
from processors.core import headers as h
from tests.dashboard.records import Rec, dead

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("age_ms", "text"),
    [
        (None, ""),
        (-5_000, "0s"),
        (0, "0s"),
        (59_999, "59s"),
        (65_000, "1m 05s"),
        (3_600_000 + 120_000, "1h 02m"),
        (2 * 86_400_000 + 3 * 3_600_000, "2d 03h"),
    ],
)
def test_age_text(age_ms: int | None, text: str) -> None:
    assert shape.age_text(age_ms) == text


def test_text_and_json_survive_garbage() -> None:
    assert shape.as_text(None) == ""
    assert shape.as_text(b"\xff\xfeok") == "\\xff\\xfeok"
    assert shape.pretty_json(b'{"a":1}') == '{\n  "a": 1\n}'
    assert shape.pretty_json(b"{not json") == "{not json"


def test_records_frame_decodes_and_sorts_newest_first() -> None:
    records = [
        Rec("orders.v1", 0, 5, T0, headers=[(h.ATTEMPTS, b"2"), ("bin", b"\xff")]),
        Rec("orders.v1", 1, 9, T0 + 10, key=None, value=None),
    ]
    frame = shape.records_frame(records)
    assert list(frame.columns) == shape.RECORD_COLUMNS
    assert list(frame["offset"]) == [9, 5]
    assert frame.loc[0, "key"] == "" and frame.loc[0, "value"] == ""
    assert json.loads(frame.loc[1, "headers"]) == {h.ATTEMPTS: "2", "bin": "\\xff"}
    assert frame.loc[1, "time"] == pd.Timestamp("2026-01-01T00:00:00Z")


def test_records_frame_empty_has_columns() -> None:
    assert list(shape.records_frame([]).columns) == shape.RECORD_COLUMNS


def test_filter_by_key_partition_and_time() -> None:
    records = [
        Rec("t", 0, 1, T0, key=b"ord-a"),
        Rec("t", 1, 2, T0 + 1_000, key=b"ord-b"),
        Rec("t", 2, 3, T0 + 2_000, key=b"other"),
    ]
    keep = shape.filter_records
    assert [r.offset for r in keep(records, shape.RecordFilter(key_contains="ord-"))] == [1, 2]
    assert [r.offset for r in keep(records, shape.RecordFilter(partitions=frozenset({2})))] == [3]
    window = shape.RecordFilter(since_ms=T0 + 500, until_ms=T0 + 1_000)
    assert [r.offset for r in keep(records, window)] == [2]
    assert keep(records, shape.RecordFilter()) == records


def test_flow_stages_in_order_and_skip_disabled_topic() -> None:
    topics = {"main": "orders.v1", "retry": "orders.retry", "DLQ": "orders.dlq", "processed": ""}
    stages = shape.flow_stages(topics, {"orders.v1": 10, "orders.dlq": 1})
    assert [(s.label, s.count) for s in stages] == [("main", 10), ("retry", None), ("DLQ", 1)]


def test_history_keeps_bounded_window_and_replaces_same_time() -> None:
    history = shape.History(keep=3)
    for i in range(5):
        history.push(T0 + i * 1_000, {"a": i})
    assert [t for t, _ in history.samples] == [T0 + 2_000, T0 + 3_000, T0 + 4_000]
    history.push(T0 + 4_000, {"a": 99})  # same instant: replaced, not appended
    assert history.samples[-1] == (T0 + 4_000, {"a": 99})
    assert len(history.samples) == 3


def test_throughput_is_delta_over_elapsed_seconds_and_never_negative() -> None:
    history = shape.History()
    history.push(T0, {"a": 100, "b": 50})
    history.push(T0 + 2_000, {"a": 110, "b": 10, "c": 7})  # b shrank (retention), c is new
    history.push(T0 + 2_500, {"a": 115, "b": 10, "c": 7})
    frame = shape.throughput_frame(history)
    rates = {(row.time.value // 1_000_000, row.topic): row.per_second for row in frame.itertuples()}
    assert rates == {
        (T0 + 2_000, "a"): 5.0,
        (T0 + 2_000, "b"): 0.0,
        (T0 + 2_500, "a"): 10.0,
        (T0 + 2_500, "b"): 0.0,
        (T0 + 2_500, "c"): 0.0,
    }


def test_throughput_needs_two_samples() -> None:
    history = shape.History()
    history.push(T0, {"a": 1})
    assert shape.throughput_frame(history).empty
    assert len(shape.totals_frame(history)) == 1


def test_reason_counts_most_frequent_first_and_unknown() -> None:
    records = [dead("non_retryable"), dead("max_attempts_exhausted"), dead("non_retryable")]
    records.append(dead(None))
    frame = shape.reason_counts(records)
    assert frame.to_dict("records") == [
        {"reason": "non_retryable", "count": 2},
        {"reason": "max_attempts_exhausted", "count": 1},
        {"reason": "unknown", "count": 1},
    ]


def test_timeline_orders_journey_and_describes_each_hop() -> None:
    stages = {"orders.v1": "main", "orders.retry": "retry", "orders.dlq": "DLQ"}
    retry_headers = [
        (h.ATTEMPTS, b"1"),
        (h.ERROR_CLASS, b"processors.handler.TransientError"),
        (h.ERROR_MESSAGE, b"payment timeout"),
        (h.RETRY_DUE_AT, str(T0 + 3_000).encode()),
    ]
    replayed = [(h.REPLAY_OF, b"orders.dlq:0:4"), (h.REPLAY_COUNT, b"1"), (h.ATTEMPTS, b"0")]
    records = [
        dead("non_retryable", offset=4, ts=T0 + 5_000),
        Rec("orders.v1", 0, 1, T0),
        Rec("orders.retry", 0, 2, T0 + 1_000, headers=retry_headers),
        Rec("orders.v1", 0, 7, T0 + 9_000, headers=replayed),
    ]
    frame = shape.timeline_frame(records, stages)
    assert list(frame["stage"]) == ["main", "retry", "DLQ", "main"]
    assert frame.loc[0, "detail"] == '{"order_id": "ord-1"}'
    assert frame.loc[1, "detail"] == (
        "processors.handler.TransientError: payment timeout; retry due 00:00:03.000"
    )
    assert frame.loc[1, "attempts"] == 1
    assert frame.loc[2, "detail"].startswith("dead-lettered: non_retryable")
    assert frame.loc[3, "detail"] == "replay #1 of orders.dlq:0:4"
    assert shape.final_stage(frame) == "main"
    assert shape.final_stage(shape.timeline_frame([], stages)) is None


def test_dead_letter_frame_keeps_order_and_shortens_class() -> None:
    from processors.core.envelope import Record
    from processors.dlq.model import DeadLetter

    headers = [
        (h.DLQ_REASON, b"non_retryable"),
        (h.ERROR_CLASS, b"processors.handler.PermanentError"),
        (h.ERROR_MESSAGE, b"card declined"),
        (h.ATTEMPTS, b"1"),
        (h.FIRST_FAILURE_AT, str(T0).encode()),
        (h.LAST_FAILURE_AT, str(T0 + 500).encode()),
        (h.DLQ_AT, str(T0 + 1_000).encode()),
    ]
    letters = [
        DeadLetter.from_record(Record("orders.dlq", 2, 9, T0 + 1_000, b"ord-1", b"{}", headers)),
        DeadLetter.from_record(Record("orders.dlq", 0, 3, T0, b"ord-2", b"\xff", [])),
    ]
    frame = shape.dead_letter_frame(letters, now_ms=T0 + 66_000)
    assert list(frame.columns) == shape.DEAD_LETTER_COLUMNS
    first = frame.iloc[0]
    assert (first.order_id, first.reason, first.error_class) == (
        "ord-1",
        "non_retryable",
        "PermanentError",
    )
    assert (first.error_message, first.attempts, first.replays) == ("card declined", 1, 0)
    assert first.first_failure == pd.Timestamp(T0, unit="ms", tz="UTC")
    assert first.last_failure == pd.Timestamp(T0 + 500, unit="ms", tz="UTC")
    assert first.age == "1m 05s"
    second = frame.iloc[1]
    assert (second.reason, second.partition, second.offset, second.age) == (
        "unknown",
        0,
        3,
        "1m 06s",
    )
    assert pd.isna(second.attempts)
    assert shape.dead_letter_frame([], T0).empty


def test_replay_outcome() -> None:
    from processors.dlq.replay import ReplayReport

    report = ReplayReport(run_id="r", dry_run=False, replayed=2, targets={"orders.v1": 2})
    assert shape.replay_outcome(report) == ("ok", "Replayed 2 dead letter(s) (2 to orders.v1).")
    report = ReplayReport(
        run_id="r",
        dry_run=False,
        replayed=1,
        targets={"orders.v1": 1},
        refused=[("orders.dlq:0:4", "already replayed 3 times")],
        refused_count=1,
    )
    kind, text = shape.replay_outcome(report)
    assert kind == "warn" and "Refused 1: orders.dlq:0:4: already replayed 3 times." in text
    failed = ReplayReport(run_id="r", dry_run=False, failed=1, errors=["timeout"])
    assert shape.replay_outcome(failed, "x") == ("warn", "Replayed 0 x. Failed 1: timeout.")


def test_record_counts_are_exact_and_incremental() -> None:
    counts = shape.RecordCounts(budget=100)
    marks = {"a": {0: (0, 10), 1: (0, 0)}, "b": {0: (0, 4)}}
    plan = counts.plan(marks)
    assert plan == {"a": {0: (0, 10)}, "b": {0: (0, 4)}}
    # a: 5 records + 5 commit markers; b: 4 plain records
    assert counts.apply(marks, plan, {"a": {0: 5}, "b": {0: 4}}) == {"a": (5, True), "b": (4, True)}

    marks = {"a": {0: (0, 14), 1: (0, 0)}, "b": {0: (0, 4)}}
    plan = counts.plan(marks)
    assert plan == {"a": {0: (10, 14)}}  # only what is new
    assert counts.apply(marks, plan, {"a": {0: 2}}) == {"a": (7, True), "b": (4, True)}
    assert counts.plan(marks) == {}  # nothing new, nothing read


def test_record_counts_fall_back_to_offsets_beyond_budget_or_retention() -> None:
    counts = shape.RecordCounts(budget=10)
    marks = {"big": {0: (0, 1_000_000)}, "small": {0: (0, 6)}}
    plan = counts.plan(marks)
    assert plan == {"small": {0: (0, 6)}}  # the big topic is never read
    assert counts.apply(marks, plan, {"small": {0: 3}}) == {
        "big": (1_000_000, False),
        "small": (3, True),
    }
    moved = {"big": {0: (0, 1_000_050)}, "small": {0: (2, 8)}}  # retention removed offsets
    plan = counts.plan(moved)
    assert plan == {}
    assert counts.apply(moved, plan, {}) == {"big": (1_000_050, False), "small": (6, False)}


def test_record_counts_failed_count_is_retried() -> None:
    counts = shape.RecordCounts()
    marks = {"a": {0: (0, 4)}}
    plan = counts.plan(marks)
    assert counts.apply(marks, plan, {"a": None}) == {"a": (4, False)}
    assert counts.plan(marks) == {"a": {0: (0, 4)}}
    assert counts.apply(marks, plan, {"a": {0: 2}}) == {"a": (2, True)}


def test_record_counts_start_over_when_a_topic_is_recreated() -> None:
    counts = shape.RecordCounts()
    marks = {"a": {0: (0, 10)}}
    counts.apply(marks, counts.plan(marks), {"a": {0: 10}})
    recreated = {"a": {0: (0, 3)}}
    plan = counts.plan(recreated)
    assert plan == {"a": {0: (0, 3)}}
    assert counts.apply(recreated, plan, {"a": {0: 3}}) == {"a": (3, True)}
