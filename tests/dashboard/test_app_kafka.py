"""Page logic that needs the real broker: the produce form sends, the DLQ page lists."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from processors.core import headers as h
from processors.kafka.topics import ensure_topics
from processors.settings import Settings
from tests.dashboard.conftest import new_app, settings_env
from tests.dlq.support import write

pytestmark = pytest.mark.kafka


@pytest.fixture
def live(kafka_settings: Settings, app_env: Callable[[dict[str, str]], None]) -> Settings:
    ensure_topics(kafka_settings)
    app_env(settings_env(kafka_settings))
    return kafka_settings


def test_produce_form_sends_a_permanent_failure_order(live: Settings) -> None:
    from dashboard import data

    at = new_app().run()
    at.switch_page("views/produce.py").run()
    at.text_input(key="pf_order_id").input("ord-apptest-1")
    at.selectbox(key="pf_scenario").select("permanent")
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert at.success[0].value.startswith("Sent order `ord-apptest-1` (permanent failure)")
    [record] = data.latest(live, live.topic_main, 10)
    assert record.key == b"ord-apptest-1"
    assert b'"simulate":{"error":"permanent"}' in (record.value or b"")
    assert h.CE_ID in dict(record.headers)


def test_produce_form_sends_poison_bytes(live: Settings) -> None:
    from dashboard import data

    at = new_app().run()
    at.switch_page("views/produce.py").run()
    at.text_input(key="pf_order_id").input("ord-poison-1")
    at.selectbox(key="pf_scenario").select("poison")
    at.button[0].click().run()
    assert at.success and not at.error
    [record] = data.latest(live, live.topic_main, 10)
    assert record.key == b"ord-poison-1" and record.value.startswith(b'{"order_id": "ord-poison-1"')


def test_dlq_page_lists_dead_letters(live: Settings) -> None:
    dead = [(h.DLQ_REASON, b"non_retryable"), (h.ATTEMPTS, b"1")]
    write(live, live.topic_dlq, [(f"ord-{i}".encode(), b"{}", dead) for i in range(3)])
    at = new_app().run()
    at.switch_page("views/dlq.py").run()
    assert not at.exception and not at.error
    assert any(md.value.startswith("**3** dead letters") for md in at.markdown)
    assert len(at.dataframe[0].value) == 3


def test_dlq_page_says_how_far_it_searched(live: Settings, monkeypatch) -> None:
    from dashboard import data

    monkeypatch.setattr(data, "DLQ_MAX_SCAN", 40)
    dead = [(h.DLQ_REASON, b"non_retryable"), (h.ATTEMPTS, b"1")]
    write(live, live.topic_dlq, [(f"ord-{i}".encode(), b"{}", dead) for i in range(60)])
    at = new_app().run()
    at.switch_page("views/dlq.py").run()
    at.text_input(key="dlq_order_id").input("no-such-order").run()
    assert not at.exception and not at.error
    [line] = [md.value for md in at.markdown if md.value.startswith("**0** dead letters")]
    assert "searched the newest 40 offsets only" in line


def test_overview_renders_counts(live: Settings) -> None:
    at = new_app().run()
    assert not at.exception and not at.error
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["main"] == "0" and metrics["waiting for retry"] == "0"


def test_overview_gives_each_dlq_reason_a_band_of_its_own(live: Settings) -> None:
    dead = [(b"a", b"{}", [(h.DLQ_REASON, b"non_retryable")])] * 3
    dead += [(b"b", b"{}", [(h.DLQ_REASON, b"deserialization_failed")])]
    write(live, live.topic_dlq, dead)
    at = new_app().run()
    assert not at.exception and not at.error
    specs = [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]
    [bars] = [spec for spec in specs if spec["mark"]["type"] == "bar"]
    # A fixed height is the whole chart's (Streamlit fits it): the axis took most of it and two
    # reasons got 12 px bands with overlapping labels. A step is per bar, however many there are.
    assert isinstance(bars["height"], dict) and bars["height"].get("step", 0) >= 24, bars["height"]
