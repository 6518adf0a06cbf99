"""The DLQ page in a real browser: pending and redriven counts, each row's state, and a redrive
started from the page that moves the pending rows it was given and skips the redriven ones."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaException, TopicPartition
from playwright.sync_api import expect

from processors.dlq import DlqFilter, read_ledger, replay
from processors.kafka import clients
from processors.kafka.topics import ensure_topics
from processors.settings import Settings, load_settings
from tests.browser.conftest import running_dashboard, screenshot
from tests.browser.test_dashboard import dataframe_row_of, open_page, tick_row
from tests.dlq.conftest import dead_letter
from tests.dlq.support import read_all, write
from tests.processors.harness import delete_topics, settings_env

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.slow]

T0 = 1_700_000_000_000
STATE_COLUMN = 3  # the selection checkbox is column 0, then order id, reason, state


@pytest.fixture
def dashboard(kafka_bootstrap: str, unique: str, tmp_path: Path) -> Iterator[tuple[Settings, str]]:
    """Fresh topics and ``orderflow dashboard`` (no processors: nothing consumes the redrives,
    so what the page sent is exactly what the main topic holds)."""
    settings = load_settings(
        bootstrap_servers=kafka_bootstrap,
        topic_main=f"r-{unique}.orders.v1",
        topic_retry=f"r-{unique}.orders.retry",
        topic_dlq=f"r-{unique}.orders.dlq",
        topic_processed=f"r-{unique}.orders.processed",
        topic_redriven=f"r-{unique}.orders.dlq.redriven",
        state_dir=tmp_path / "state",
    )
    ensure_topics(settings, timeout_s=30)
    warm_group_coordinator(settings, f"r-{unique}-warm")
    try:
        with running_dashboard(settings_env(settings), tmp_path) as (url, _log):
            yield settings, url
    finally:
        delete_topics(settings)


def warm_group_coordinator(settings: Settings, group: str) -> None:
    """Wait until the broker's group coordinator answers. On a fresh broker the first offset
    fetches get NOT_COORDINATOR, and librdkafka 2.12.1's admin client can crash on that answer
    (seen here: a SIGSEGV in rd_kafka_cgrp_op under ListConsumerGroupOffsets), which would take
    the dashboard down while it computes the overview's lag."""
    consumer = clients.consumer(settings, group)
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                consumer.committed([TopicPartition(settings.topic_dlq, 0)], timeout=10)
                return
            except KafkaException:
                assert time.monotonic() < deadline, "no group coordinator within 60 s"
                time.sleep(0.5)
    finally:
        consumer.close()


def metric(page, label: str):
    return page.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue")


def state_of(page, order_id: str) -> str | None:
    row = dataframe_row_of(page, order_id, timeout_s=30)
    return page.get_by_test_id(f"glide-cell-{STATE_COLUMN}-{row}").text_content()


def test_page_shows_states_and_a_redrive_skips_what_was_redriven(dashboard, browser_page) -> None:
    settings, url = dashboard
    page = browser_page
    write(
        settings,
        settings.topic_dlq,
        [dead_letter(settings, order_id=f"red-{i}", dlq_at=T0 + i) for i in range(5)],
        partition=0,
    )
    # An operator redrove two of them earlier, from the command line.
    earlier = replay(settings, DlqFilter(positions=frozenset({(0, 0), (0, 1)})), group=None)
    assert earlier.replayed == 2

    page.goto(url, timeout=60_000)  # a loaded machine can take a while to serve the first page
    page.get_by_role("heading", name="Overview").wait_for()
    open_page(page, "DLQ")
    expect(metric(page, "Pending (left to do)")).to_have_text("3", timeout=30_000)
    expect(metric(page, "Redriven")).to_have_text("2")
    assert state_of(page, "red-0") == "redriven"
    assert state_of(page, "red-1") == "redriven"
    assert state_of(page, "red-2") == "pending"
    redriven_cell = page.get_by_test_id(
        f"glide-cell-{STATE_COLUMN + 1}-{dataframe_row_of(page, 'red-0', 10)}"
    )
    expect(redriven_cell).to_have_text(re.compile(f"run {earlier.run_id} → {settings.topic_main}"))
    screenshot(page, "dlq-states")

    # Select one redriven and one pending row, and redrive both from the page.
    tick_row(page, dataframe_row_of(page, "red-0", 10))
    page.get_by_text("refresh paused while rows are selected").wait_for()
    # The selection reruns the whole page: tick the next row once that run has finished.
    try:
        page.get_by_role("button", name="Redrive 1 selected…").wait_for(timeout=30_000)
    except Exception:
        screenshot(page, "dlq-redrive-selection-failed")
        raise
    expect(page.locator('[data-stale="true"]')).to_have_count(0, timeout=30_000)
    tick_row(page, dataframe_row_of(page, "red-2", 10))
    try:
        page.get_by_role("button", name="Redrive 2 selected…").wait_for(timeout=30_000)
    except Exception:
        screenshot(page, "dlq-redrive-selection-failed")
        raise
    page.get_by_role("button", name="Redrive 2 selected…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("1 of the 2 selected were redriven before: they are skipped.").wait_for()
    screenshot(page, "dlq-redrive-confirm")
    dialog.get_by_role("button", name="Redrive", exact=True).click()
    page.get_by_text(re.compile(r"Replayed 1 dead letter.*Skipped 1 already redriven")).wait_for()

    # The page catches up with the ledger by itself: one more redriven, one fewer pending.
    expect(metric(page, "Pending (left to do)")).to_have_text("2", timeout=30_000)
    expect(metric(page, "Redriven")).to_have_text("3")
    expect(page.get_by_text("updated ", exact=False).first).to_be_visible()
    assert state_of(page, "red-2") == "redriven"
    screenshot(page, "dlq-after-redrive")

    # Kafka agrees: red-0 went out once (earlier), red-2 once (now), nothing else.
    out = read_all(settings, settings.topic_main, 4, timeout_s=5)
    assert sorted(key for *_, key, _, _ in out) == [b"red-0", b"red-1", b"red-2"]
    ledger = read_ledger(settings)
    assert sorted(ledger.entries) == [f"{settings.topic_dlq}:0:{i}" for i in range(3)]
