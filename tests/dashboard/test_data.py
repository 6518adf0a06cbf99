"""The dashboard's collect functions against a real broker."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from dashboard import data, forms, shape
from processors.core import headers as h
from processors.dlq.filters import DlqFilter
from processors.errors import KafkaUnavailableError
from processors.kafka import tail
from processors.kafka.topics import ensure_topics
from processors.settings import Settings
from tests.dashboard.proxy import Proxy
from tests.dlq.support import group_ids, write

pytestmark = pytest.mark.kafka


def dead(key: str, reason: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return key.encode(), b"{}", [(h.DLQ_REASON, reason.encode()), (h.ATTEMPTS, b"1")]


def an_order(order_id: str, scenario: forms.Scenario = "succeed"):
    form = forms.OrderForm(
        order_id=order_id,
        customer_id="cus-1",
        currency="EUR",
        items=[{"sku": "A", "quantity": 1, "unit_price": 5}],
        scenario=scenario,
    )
    return forms.build_order(form, datetime.now(UTC))


@pytest.fixture
def topics(kafka_settings: Settings) -> Settings:
    ensure_topics(kafka_settings)
    return kafka_settings


def test_overview_counts_lags_and_dlq_sample(topics: Settings) -> None:
    settings = topics
    summary = data.produce_many(settings, [an_order(f"ord-{i}") for i in range(7)])
    assert summary.ok and summary.delivered == 7
    write(settings, settings.topic_dlq, [dead("a", "non_retryable"), dead("b", "non_retryable")])
    write(settings, settings.topic_dlq, [dead("c", "validation_failed")])

    snapshot = data.overview(settings)

    assert snapshot.totals == {
        settings.topic_main: 7,
        settings.topic_retry: 0,
        settings.topic_dlq: 3,
        settings.topic_processed: 0,
    }
    # Nobody consumed yet: the main group's lag is everything, the retry group's is nothing.
    lags = {lag.label: lag for lag in snapshot.lags}
    assert (lags["main"].group, lags["main"].topic) == (settings.group_main, settings.topic_main)
    assert lags["main"].total == 7 and lags["retry"].total == 0
    assert sorted(lags["main"].partitions) == [0, 1, 2]
    assert sorted(r.key for r in snapshot.dlq_sample) == [b"a", b"b", b"c"]


def test_overview_counts_records_not_transaction_markers(topics: Settings, unique: str) -> None:
    settings = topics
    # One transaction per record, as the processors write at low traffic: offsets = 2 x records.
    records = [dead(f"k{i}", "non_retryable") for i in range(5)]
    write(settings, settings.topic_dlq, records, partition=0, transactional_id=f"tx-{unique}")
    counts = shape.RecordCounts()

    first = data.overview(settings, counts)
    assert first.totals[settings.topic_dlq] == 5 and first.exact[settings.topic_dlq]
    assert data.overview(settings).totals[settings.topic_dlq] == 10  # offsets, for comparison

    write(settings, settings.topic_dlq, records[:2], partition=1, transactional_id=f"ty-{unique}")
    second = data.overview(settings, counts)
    assert second.totals[settings.topic_dlq] == 7 and second.exact[settings.topic_dlq]


def test_refresh_creates_no_consumer_group(topics: Settings) -> None:
    settings = topics
    data.produce_one(settings, an_order("ord-x"))
    before = group_ids(settings)
    data.overview(settings)
    data.latest(settings, settings.topic_main, 10)
    data.trace(settings, "ord-x", 10)
    created = group_ids(settings) - before
    ours = {tail.TAIL_GROUP_ID, settings.group_main, settings.group_retry}
    assert not created & ours, created


def test_refresh_reads_a_bounded_number_of_records(topics: Settings) -> None:
    """With far more dead letters than the sample, a refresh reads only the newest N each."""
    settings = topics
    write(settings, settings.topic_dlq, [dead(f"k{i}", "non_retryable") for i in range(3000)])
    counts = shape.RecordCounts(budget=500)
    started = time.monotonic()
    snapshot = data.overview(settings, counts, dlq_per_partition=20)
    elapsed = time.monotonic() - started
    assert snapshot.totals[settings.topic_dlq] == 3000
    assert not snapshot.exact[settings.topic_dlq]  # 3000 new offsets > budget: not read
    assert len(snapshot.dlq_sample) == 3 * 20
    assert elapsed < 10, elapsed


def test_latest_and_trace(topics: Settings) -> None:
    settings = topics
    data.produce_many(settings, [an_order(f"ord-{i}") for i in range(12)])
    data.produce_one(settings, forms.poison_payload("ord-poison"))
    write(settings, settings.topic_dlq, [dead("ord-poison", "deserialization_failed")])

    newest = data.latest(settings, settings.topic_main, 2)
    assert len(newest) == 6 and {r.partition for r in newest} == {0, 1, 2}
    only = data.latest(settings, settings.topic_main, 50, only_partitions=[1])
    assert only and {r.partition for r in only} == {1}

    journey = data.trace(settings, "ord-poison", 50)
    assert sorted(r.topic for r in journey) == sorted([settings.topic_main, settings.topic_dlq])
    assert data.trace(settings, "ord-none", 50) == []


def test_latest_refuses_topics_that_are_not_ours(topics: Settings) -> None:
    with pytest.raises(ValueError, match="not one of orderflow's topics"):
        data.latest(topics, "__consumer_offsets", 10)


def test_stage_topics_skip_disabled_outcome(kafka_settings: Settings) -> None:
    disabled = kafka_settings.model_copy(update={"topic_processed": ""})
    assert list(data.stage_topics(disabled)) == ["main", "retry", "DLQ"]
    assert data.topic_stages(kafka_settings)[kafka_settings.topic_dlq] == "DLQ"


def test_overview_fails_clearly_then_recovers_when_the_broker_returns(topics: Settings) -> None:
    proxy = Proxy(topics.bootstrap_servers)
    settings = topics.model_copy(update={"bootstrap_servers": proxy.address})
    try:
        started = time.monotonic()
        with pytest.raises(KafkaUnavailableError):
            data.overview(settings, timeout_s=1.0)
        assert time.monotonic() - started < 8

        proxy.up()
        deadline = time.monotonic() + 30
        while True:
            try:
                snapshot = data.overview(settings, timeout_s=1.0)
                break
            except KafkaUnavailableError:
                assert time.monotonic() < deadline, "no recovery within 30 s"
                time.sleep(0.5)
        assert snapshot.totals[settings.topic_main] == 0
    finally:
        proxy.down()


def dead_letter_of(order, reason: str = "non_retryable", original: str = "orders.v1"):
    headers = [
        (h.DLQ_REASON, reason.encode()),
        (h.ERROR_CLASS, b"processors.handler.PermanentError"),
        (h.ATTEMPTS, b"1"),
        (h.ORIGINAL_TOPIC, original.encode()),
        (h.ORIGINAL_PARTITION, b"0"),
        (h.ORIGINAL_OFFSET, b"0"),
    ]
    return order.order_id.encode(), order.to_json_bytes(), headers


def test_dead_letters_lists_newest_matching(topics: Settings) -> None:
    settings = topics
    orders = [an_order(f"ord-{i}", "permanent") for i in range(4)]
    write(
        settings,
        settings.topic_dlq,
        [dead_letter_of(o, original=settings.topic_main) for o in orders],
    )
    write(settings, settings.topic_dlq, [dead("ord-p", "deserialization_failed")])

    letters, complete = data.dead_letters(settings, None, 10)
    assert complete and len(letters) == 5
    only, _ = data.dead_letters(settings, DlqFilter(reason="non_retryable"), 2)
    assert len(only) == 2 and {letter.reason for letter in only} == {"non_retryable"}


def test_replay_selected_and_edited_leave_the_dlq_untouched(topics: Settings) -> None:
    settings = topics
    orders = [an_order(f"ord-{i}", "permanent") for i in range(3)]
    write(
        settings,
        settings.topic_dlq,
        [dead_letter_of(o, original=settings.topic_main) for o in orders],
    )
    letters, _ = data.dead_letters(settings, None, 10)
    chosen = [letter for letter in letters if letter.order_id in ("ord-0", "ord-2")]
    before = group_ids(settings)

    report = data.replay_letters(settings, chosen, "original")
    assert (report.replayed, report.failed, report.refused_count) == (2, 0, 0)
    assert shape.replay_outcome(report)[0] == "ok"

    edited = forms.parse_edited_payload(
        forms.without_simulation(orders[1].to_json_bytes().decode())
    )
    single = next(letter for letter in letters if letter.order_id == "ord-1")
    report = data.replay_edited(settings, single, edited.to_json_bytes(), "retry")
    assert (report.replayed, report.targets) == (1, {settings.topic_retry: 1})

    main = data.latest(settings, settings.topic_main, 10)
    assert sorted(r.key for r in main) == [b"ord-0", b"ord-2"]
    assert all(
        dict(r.headers).get(h.REPLAY_OF, b"").startswith(settings.topic_dlq.encode()) for r in main
    )
    retried = data.latest(settings, settings.topic_retry, 10)
    assert len(retried) == 1 and b"simulate" not in (retried[0].value or b"")
    assert data.overview(settings).totals[settings.topic_dlq] == 3  # nothing removed
    assert data.dead_letters(settings, None, 10)[0][0].value == letters[0].value  # nor altered
    assert not (group_ids(settings) - before) & {tail.TAIL_GROUP_ID}
