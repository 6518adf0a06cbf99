"""The structured readers and the hop rewrite of processors/core/headers.py."""

from __future__ import annotations

from processors.core import headers as h


def test_decode_values_missing_and_garbage() -> None:
    state = h.decode(
        [
            (h.ATTEMPTS, b"2"),
            (h.ATTEMPTS, b"3"),  # last one wins
            (h.RETRY_DUE_AT, b"tomorrow"),
            (h.FIRST_FAILURE_AT, None),  # null value: present but unreadable
            (h.ORIGINAL_TOPIC, b"orders.v1"),
            (h.ORIGINAL_PARTITION, b" 4 "),
            (h.CE_ID, b"\xff"),
        ]
    )
    assert state.attempts == 3
    assert state.due_at is h.INVALID
    assert state.first_failure_at is h.INVALID
    assert state.last_failure_at is None
    assert state.original_topic == "orders.v1"
    assert state.original_partition == 4
    assert state.original_offset is None
    assert state.event_id is h.INVALID


def test_decode_of_nothing() -> None:
    assert h.decode(None) == h.Contract()


def test_rewrite_keeps_others_byte_exact_and_in_order() -> None:
    original = [("a", b"1"), (h.ATTEMPTS, b"1"), ("b", None), ("a", b"2"), (h.ATTEMPTS, b"9")]
    out = h.rewrite(original, {h.ATTEMPTS: b"2", h.DLQ_REASON: None}, {h.ORIGINAL_TOPIC: b"t"})
    assert out == [
        ("a", b"1"),
        ("b", None),
        ("a", b"2"),
        (h.ATTEMPTS, b"2"),
        (h.ORIGINAL_TOPIC, b"t"),
    ]


def test_rewrite_sets_once_only_when_absent() -> None:
    out = h.rewrite([(h.ORIGINAL_TOPIC, b"first")], {}, {h.ORIGINAL_TOPIC: b"second"})
    assert out == [(h.ORIGINAL_TOPIC, b"first")]


def test_encode_text_tail_keeps_the_end() -> None:
    assert h.encode_text_tail("short", 100) == b"short"
    cut = h.encode_text_tail("ab" * 100 + "END", 20)
    assert len(cut) <= 20 and cut.endswith(b"END") and cut.startswith("…".encode())
    # never splits a multi-byte character
    cut = h.encode_text_tail("é" * 100, 21)
    cut.decode("utf-8")


def test_encode_processor() -> None:
    assert h.encode_processor("orderflow-main", "0.1.0", "host-1") == b"orderflow-main/0.1.0/host-1"
