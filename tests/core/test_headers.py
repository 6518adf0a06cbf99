"""The structured readers and the hop rewrite of processors/core/headers.py."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

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
    identity = "orderflow-main/0.1.0/host-1"
    assert h.encode({h.PROCESSOR: identity}) == {h.PROCESSOR: b"orderflow-main/0.1.0/host-1"}


def test_encode_is_the_one_writer_and_decode_reads_it_back() -> None:
    encoded = h.encode(
        {
            h.ATTEMPTS: 3,
            h.RETRY_DUE_AT: None,
            h.ERROR_MESSAGE: "é" * 2000,
            h.ERROR_STACKTRACE: "x" * 20_000 + "END",
        }
    )
    assert encoded[h.ATTEMPTS] == b"3" and encoded[h.RETRY_DUE_AT] is None
    assert len(encoded[h.ERROR_MESSAGE] or b"") <= h.ERROR_MESSAGE_LIMIT
    assert (encoded[h.ERROR_STACKTRACE] or b"").endswith(b"END")
    contract = h.decode([(n, v) for n, v in encoded.items() if v is not None])
    assert contract.attempts == 3 and contract.due_at is None
    assert isinstance(contract.error_message, str) and set(contract.error_message) == {"é"}


def test_decode_distinguishes_missing_from_garbage() -> None:
    contract = h.decode([(h.ATTEMPTS, None), (h.DLQ_REASON, b"\xff"), (h.REPLAY_COUNT, b"2")])
    assert contract.attempts is h.INVALID  # present, null
    assert contract.dlq_reason is h.INVALID  # present, not UTF-8
    assert contract.max_attempts is None  # absent
    assert contract.replay_count == 2


def test_decode_only_some_headers() -> None:
    raw = [
        (h.CE_ID, b"evt-1"),
        (h.ATTEMPTS, b"3"),
        (h.ORIGINAL_OFFSET, b"garbage"),
        (h.ORIGINAL_OFFSET, b"7"),
        (h.RETRY_DUE_AT, b"x"),
    ]
    first = h.decode(raw, h.FIRST_ATTEMPT)
    assert (first.event_id, first.original_offset) == ("evt-1", 7)  # last occurrence wins
    assert first.attempts is None and first.due_at is None  # not decoded: read as absent
    every = h.decode(raw)
    assert (every.attempts, every.due_at, every.original_offset) == (3, h.INVALID, 7)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.integers(-2, 1100))
def test_an_int_encodes_as_its_decimal_text_whether_cached_or_not(value: int) -> None:
    assert h.encode_int(value) == str(value).encode("ascii")
    assert h.decode_value(h.ATTEMPTS, h.encode_int(value)) == value or value < 0
