"""Replay headers and replay progress marks (pure)."""

from __future__ import annotations

from processors.core import headers as h
from processors.dlq.rewrite import RunMark, fingerprint, replay_headers
from tests.dlq.conftest import dead_letter
from tests.dlq.test_model import SETTINGS

KEEP = (h.CE_SPECVERSION, h.CE_ID, h.CE_SOURCE, h.CE_TYPE, h.CE_TIME, h.CONTENT_TYPE, h.TRACEPARENT)


def test_replay_to_original_resets_state_and_keeps_identity() -> None:
    _, _, headers = dead_letter(SETTINGS, order_id="o", extra=[("foreign", b"\xff")])
    out = replay_headers(
        headers, replay_of="o.dlq:2:40", replay_count=0, now_ms=123, target="original"
    )
    values = dict(out)
    for name in (*KEEP, *h.ORIGINAL_HEADERS, "foreign"):
        assert values[name] == dict(headers)[name]
    for name in h.HOP_HEADERS:
        assert name not in values
    assert values[h.REPLAY_COUNT] == b"1"
    assert values[h.REPLAYED_AT] == b"123"
    assert values[h.REPLAY_OF] == b"o.dlq:2:40"
    names = [name for name, _ in out]
    assert len(names) == len(set(names))


def test_replay_to_retry_sets_a_fresh_attempt_budget() -> None:
    _, _, headers = dead_letter(SETTINGS, order_id="o", replay_count=2)
    values = dict(
        replay_headers(headers, replay_of="d:0:1", replay_count=2, now_ms=5, target="retry")
    )
    assert values[h.ATTEMPTS] == b"0"
    assert h.RETRY_DUE_AT not in values and h.MAX_ATTEMPTS not in values
    assert values[h.REPLAY_COUNT] == b"3"


def test_unreadable_count_counts_as_the_limit() -> None:
    values = dict(
        replay_headers([], replay_of="d:0:1", replay_count=None, now_ms=5, target="original")
    )
    assert values[h.REPLAY_COUNT] == b"4"


def test_run_mark_round_trip_and_garbage() -> None:
    mark = RunMark(run_id="ab12", fingerprint="f" * 16, end=200, replayed=17, done=False)
    assert RunMark.decode(mark.encode()) == mark
    assert len(mark.encode()) < 200
    for garbage in (
        None,
        "",
        "o1:3:0",
        "orderflow-replay/1 run=x",
        "orderflow-replay/1 run=a fp=b end=x n=1 done=0",
    ):
        assert RunMark.decode(garbage) is None
    assert fingerprint("a", 1) == fingerprint("a", 1) != fingerprint("a", 2)
