"""Decoding dead letters from DLQ records (pure, no broker)."""

from __future__ import annotations

import json
from dataclasses import fields

from processors.core import headers as h
from processors.core.envelope import Record
from processors.dlq.model import REPLAY_HEADERS, DeadLetter, bytes_from_json
from processors.settings import Settings
from tests.dlq.conftest import STACK, dead_letter

SETTINGS = Settings(topic_main="o.v1", topic_dlq="o.dlq", topic_retry="o.r", topic_processed="o.p")


def record(raw, partition: int = 1, offset: int = 9, ts: int = 5) -> Record:
    key, value, headers = raw
    return Record("o.dlq", partition, offset, ts, key, value, list(headers))


def test_every_contract_header_is_decoded() -> None:
    raw = dead_letter(SETTINGS, order_id="ord-1", attempts=5, reason="max_attempts_exhausted")
    d = DeadLetter.from_record(record(raw))
    assert (d.order_id, d.reason, d.attempts, d.max_attempts) == (
        "ord-1",
        "max_attempts_exhausted",
        5,
        5,
    )
    assert d.error_class == "processors.handler.PaymentDeclined"
    assert d.error_category == "permanent" and d.stacktrace == STACK
    assert (d.first_failure_at, d.last_failure_at, d.dlq_at) == (
        1_699_999_999_000,
        1_700_000_000_000,
        1_700_000_000_000,
    )
    assert (d.original_topic, d.original_partition, d.original_offset) == ("o.v1", 0, 7)
    assert d.original_timestamp == 1_699_999_998_000
    assert d.processor == "orderflow-main/0.1.0/test"
    assert d.replay_count == 0 and d.replay_of is None
    assert d.event_id and h.is_valid_traceparent(d.traceparent)
    assert d.payload_json["order_id"] == "ord-1"
    assert d.ref == "o.dlq:1:9" and d.failed_at == d.dlq_at
    assert d.age_ms(1_700_000_060_000) == 60_000
    assert d.replay_refusal() is None


def test_garbage_and_missing_headers_never_raise() -> None:
    raw = (
        None,
        b"\xff\xfe",
        [
            (h.ATTEMPTS, b"many"),
            (h.DLQ_AT, b"\xff"),
            (h.REPLAY_COUNT, b"x"),
            (h.ERROR_CLASS, b"\xc3("),
        ],
    )
    d = DeadLetter.from_record(record(raw, ts=42))
    assert d.attempts is None and d.dlq_at is None and d.error_class is None
    assert d.failed_at == 42  # falls back to the record timestamp
    assert d.order_id is None and d.payload_json is None
    assert d.value_text == "\\xff\\xfe"
    assert d.replay_count is None
    assert "unreadable x-replay-count" in d.replay_refusal()
    assert d.replay_refusal(force=True) is None
    assert d.header_text[h.ERROR_CLASS] == "\\xc3("


def test_order_id_from_payload_when_key_is_missing() -> None:
    raw = (None, json.dumps({"order_id": "ord-p"}).encode(), [])
    assert DeadLetter.from_record(record(raw)).order_id == "ord-p"


def test_loop_guard_threshold() -> None:
    for count, refused in ((2, False), (3, True), (7, True)):
        raw = dead_letter(SETTINGS, order_id="o", replay_count=count)
        d = DeadLetter.from_record(record(raw))
        assert d.replay_count == count
        assert (d.replay_refusal() is not None) is refused


def test_json_export_is_lossless() -> None:
    key, _, headers = dead_letter(SETTINGS, order_id="ord-j", extra=[("bin", b"\xff\x00")])
    d = DeadLetter.from_record(record((key, b"\xff\xfebad", headers)))
    obj = json.loads(json.dumps(d.to_json()))
    assert bytes_from_json(obj, "key") == key
    assert bytes_from_json(obj, "value") == b"\xff\xfebad" and "value_b64" in obj
    assert [(x["name"], bytes_from_json(x, "value")) for x in obj["headers"]] == list(d.headers)
    assert obj["dead_letter"]["reason"] == "non_retryable"
    assert obj["dead_letter"]["original"]["offset"] == 7
    empty = DeadLetter.from_record(record((None, None, [])))
    assert bytes_from_json(empty.to_json(), "value") is None


def test_a_replay_decodes_only_what_it_needs() -> None:
    key, value, headers = dead_letter(SETTINGS, order_id="ord-1")
    raw = Record("o.dlq", 1, 9, 5, key, value, [*headers, (h.REPLAY_COUNT, b"2")])
    full, light = DeadLetter.from_record(raw), DeadLetter.from_record(raw, REPLAY_HEADERS)
    assert (light.replay_count, light.original_topic) == (full.replay_count, full.original_topic)
    assert (light.key, light.value, light.headers, light.ref) == (
        full.key,
        full.value,
        full.headers,
        full.ref,
    )
    assert light.reason is None and light.payload_json is None and full.reason is not None
    garbage = DeadLetter.from_record(
        Record("o.dlq", 1, 9, 5, key, value, [(h.REPLAY_COUNT, b"x")]), REPLAY_HEADERS
    )
    assert garbage.replay_refusal() == "unreadable x-replay-count header 'x'"


def test_a_dead_letter_keeps_every_field_of_its_envelope() -> None:
    key, value, headers = dead_letter(SETTINGS, order_id="ord-2")
    raw = Record("o.dlq", 2, 11, 7, key, value, headers)
    for only in (None, REPLAY_HEADERS):
        letter = DeadLetter.from_record(raw, only)
        assert [getattr(letter, f.name) for f in fields(Record)] == [
            getattr(raw, f.name) for f in fields(Record)
        ]
