"""DLQ stats: the pure summary, and a full read against a real broker."""

from __future__ import annotations

import pytest

from processors.dlq import DlqFilter, dlq_stats, summarize
from processors.dlq.stats import AGE_BUCKETS, HOUR_MS, age_bucket
from tests.dlq.conftest import dead_letter
from tests.dlq.test_filters import letter

NOW = 1_700_000_000_000


def test_age_buckets() -> None:
    assert [age_bucket(a) for a in (0, HOUR_MS - 1, HOUR_MS, 24 * HOUR_MS, 8 * 24 * HOUR_MS)] == [
        "< 1 h",
        "< 1 h",
        "1–24 h",
        "1–7 d",
        "> 7 d",
    ]


def test_summarize_counts_everything() -> None:
    letters = [
        letter("a", dlq_at=NOW - 10),
        letter("b", dlq_at=NOW - 2 * HOUR_MS, reason="max_attempts_exhausted", replay_count=1),
        letter("c", dlq_at=NOW - 30 * 24 * HOUR_MS, error_class="x.Timeout", replay_count=3),
        letter("d", partition=2, dlq_at=NOW - 5),
    ]
    stats = summarize(letters, NOW)
    assert stats.total == 4
    assert stats.by_reason == {"non_retryable": 3, "max_attempts_exhausted": 1}
    assert stats.by_error_class == {"processors.handler.PaymentDeclined": 3, "x.Timeout": 1}
    assert stats.by_age == {"< 1 h": 2, "1–24 h": 1, "1–7 d": 0, "> 7 d": 1}
    assert list(stats.by_age) == [label for label, _ in AGE_BUCKETS]
    assert stats.by_partition == {0: 3, 2: 1}
    assert (stats.oldest_ms, stats.newest_ms) == (NOW - 30 * 24 * HOUR_MS, NOW - 5)
    assert (stats.replayed, stats.at_replay_limit) == (2, 1)
    assert summarize([], NOW).by_age == dict.fromkeys(stats.by_age, 0)


@pytest.mark.kafka
def test_dlq_stats_reads_the_whole_dlq(dlq_topics, write_dlq) -> None:
    settings = dlq_topics
    write_dlq(
        [dead_letter(settings, order_id=f"o{i}", dlq_at=NOW - i * HOUR_MS) for i in range(30)]
        + [dead_letter(settings, order_id="t", reason="max_attempts_exhausted", dlq_at=NOW)]
    )
    steps: list[int] = []
    stats = dlq_stats(settings, now_ms=NOW, progress=steps.append)
    assert stats.total == 31 and sum(steps) == stats.offsets == 31
    assert stats.by_reason == {"non_retryable": 30, "max_attempts_exhausted": 1}
    assert stats.by_age == {"< 1 h": 2, "1–24 h": 23, "1–7 d": 6, "> 7 d": 0}
    only = dlq_stats(settings, DlqFilter(reason="max_attempts_exhausted"), now_ms=NOW)
    assert only.total == 1
