"""Kafka away → a banner, no traceback; Kafka back → the page recovers by itself, no reload."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from processors.kafka.topics import ensure_topics
from processors.settings import Settings
from tests.browser.conftest import running_dashboard, screenshot
from tests.dashboard.proxy import Proxy
from tests.processors.harness import settings_env

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.slow]


def test_banner_while_kafka_is_away_then_recovery_without_reload(
    kafka_settings: Settings, browser_page, tmp_path: Path
) -> None:
    ensure_topics(kafka_settings)
    proxy = Proxy(kafka_settings.bootstrap_servers)  # down: nothing listens on its port yet
    env = settings_env(kafka_settings, bootstrap_servers=proxy.address)
    page = browser_page
    try:
        with running_dashboard(env, tmp_path) as (url, _log):
            page.goto(url)
            banner = page.get_by_text("Kafka unreachable")
            # The first run waits out each Kafka call's timeout before it can say so: seconds
            # normally, more on a loaded machine. A deadline against a hang, not a speed target.
            started = time.monotonic()
            banner.wait_for(timeout=90_000)
            print(f"banner after {time.monotonic() - started:.1f} s")
            expect(page.get_by_test_id("stException")).to_have_count(0)
            screenshot(page, "kafka-down")
            page.evaluate("window.__noReload = true")

            proxy.up()
            expect(page.get_by_test_id("stMetric").first).to_be_visible(timeout=90_000)
            expect(banner).to_have_count(0)
            assert page.evaluate("window.__noReload") is True
    finally:
        proxy.down()
