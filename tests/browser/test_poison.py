"""The dashboard in a real browser with the whole bad-input corpus dead-lettered.

Every corpus case is sent to the main topic (the real processors dead-letter it) and written
straight to the DLQ. Then Overview, Topics, DLQ (the list, the detail of every poison record
as written, and of the processor's dead letter of each one carrying markup) and Trace are
opened: no page shows a Streamlit exception, no ``img``, ``a``,
``script`` or ``iframe`` element carries anything that came from a record (the corpus points
every markup payload at 127.0.0.1:9 or ``javascript:``), and the browser requests nothing but
the dashboard itself.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from processors.kafka.clients import FAILURE_RECORD_LIMIT, producer
from tests.browser.conftest import Stack
from tests.browser.test_dashboard import open_page, select_option, tick_row
from tests.corpus import CASE_HEADER, load
from tests.processors.harness import produce, read_all

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.slow]

CASES = load()
# Elements that would mean record content became markup: an image, a link, a script or a frame
# whose HTML names a target of the corpus's markup payloads.
MARKUP = (b"127.0.0.1:9", b"javascript:", b"alert(1)")
INJECTED = """() => [...document.querySelectorAll('img, a, script, iframe, object, embed')]
    .filter(e => /127\\.0\\.0\\.1:9|javascript:|alert\\(1\\)/.test(e.outerHTML)).length"""


def tick(page, row: int) -> None:
    """Tick a row of the page's first table once it is drawn and the page has settled."""
    expect(page.locator('[data-stale="true"]')).to_have_count(0, timeout=30_000)
    page.get_by_test_id("stDataFrameResizable").first.wait_for(state="visible")
    page.wait_for_timeout(300)  # the grid draws its rows after the element shows
    tick_row(page, row)


def check_page(page, outside: list[str], where: str) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)
    assert page.get_by_text("This app has encountered an error").count() == 0, where
    assert page.evaluate(INJECTED) == 0, where
    assert outside == [], (where, outside)


@pytest.mark.timeout(1500)  # ~55 detail views: minutes on a shared 2-core machine
def test_pages_survive_the_corpus_and_render_no_record_markup(stack: Stack, browser_page) -> None:
    page, settings = browser_page, stack.settings
    # Poison pages read megabytes of dead letters: on a loaded machine a refresh takes long.
    # These bounds only catch a hang.
    page.set_default_timeout(60_000)
    expect.set_options(timeout=60_000)
    outside: list[str] = []
    origin = stack.url

    def on_request(request) -> None:
        if not request.url.startswith((origin, origin.replace("http", "ws", 1), "data:", "blob:")):
            outside.append(request.url)

    page.on("request", on_request)
    started = time.monotonic()

    client = producer(settings, **{"message.max.bytes": FAILURE_RECORD_LIMIT})
    produce(settings, [(c.key, c.value, c.tagged("main")) for c in CASES], client=client)
    via_main = sum(c.expect_topic == "dlq" for c in CASES)
    read_all(settings, [settings.topic_dlq], lambda r: len(r[settings.topic_dlq]) >= via_main, 120)
    # Written last, so the newest rows of the DLQ table: cases with neither key nor order id
    # can only be found by position.
    keyless = [c for c in CASES if not c.key and c.id != "null-key"]
    direct = [c for c in CASES if c not in keyless] + keyless
    for case in direct:
        record = (case.key, case.value, case.tagged("dlq"))
        produce(settings, [record], settings.topic_dlq, client)
        time.sleep(0.002)  # distinct timestamps: a stable newest-first order

    page.goto(stack.url)
    page.get_by_role("heading", name="Overview").wait_for(timeout=90_000)
    page.get_by_text("DLQ by reason", exact=True).wait_for()
    page.wait_for_timeout(2500)  # a refresh with the DLQ sample in
    check_page(page, outside, "overview")

    open_page(page, "Topics")
    for label, topic in (("DLQ", settings.topic_dlq), ("main", settings.topic_main)):
        select_option(page, "Topic", f"{label} · {topic}")
        page.get_by_text(re.compile(r"^\d+ records")).wait_for()
        for row in range(3):
            tick(page, row)
            page.get_by_text(re.compile(r"· offset \d+")).wait_for()
            check_page(page, outside, f"topics {label} row {row}")
            tick(page, row)
            expect(page.get_by_text(re.compile(r"· offset \d+"))).to_have_count(0)

    open_page(page, "DLQ")
    page.get_by_text(re.compile(r"^\d+ dead letters")).wait_for()
    check_page(page, outside, "dlq list")
    details = 0
    for row, case in enumerate(reversed(keyless)):  # the newest rows, unfiltered
        details += _detail(page, outside, row, case.id)
    search = page.get_by_label("Order id")
    for case in CASES:
        if case in keyless:
            continue
        order_id = case.key.decode("utf-8", "replace") if case.key else "nullkey-1"
        search.fill(order_id)
        search.press("Enter")
        expected = 1 + (case.expect_topic == "dlq")  # written directly, and by the processor
        page.get_by_text(re.compile(rf"^{expected} dead letters")).wait_for()
        expect(page.get_by_test_id("glide-cell-1-0")).to_have_text(order_id)
        # Row 0 is the record as written. The processor's dead letter echoes the record's
        # fields in its reason, which only matters for markup: its view is opened for those
        # (every other reader of it is covered by tests/corpus without a browser).
        for row in range(expected if _carries_markup(case) else 1):
            details += _detail(page, outside, row, case.id)
    search.fill("")
    search.press("Enter")
    assert details >= len(CASES)

    open_page(page, "Trace")
    trace = page.get_by_label("Order id")
    for case in CASES:
        if not case.key:
            continue
        trace.fill(case.key.decode("utf-8", "replace"))
        trace.press("Enter")
        page.get_by_text(re.compile(r"Latest: |No record with this key")).first.wait_for()
        check_page(page, outside, f"trace {case.id}")
    print(f"poison_browser_details={details} total_s={time.monotonic() - started:.1f}")


def _carries_markup(case) -> bool:
    blob = (case.value or b"") + b"".join(value or b"" for _, value in case.headers)
    return any(payload in blob for payload in MARKUP)


def _detail(page, outside: list[str], row: int, case_id: str) -> int:
    """Open the detail view of one row, check it, close it again."""
    tick(page, row)
    page.get_by_role("tab", name="Details").wait_for()
    page.get_by_text(re.compile(r"^Payload \(\d")).wait_for()
    check_page(page, outside, f"dlq detail {case_id} row {row}")
    header = page.get_by_test_id("stDataFrame").filter(has_text=CASE_HEADER)
    assert header.count() <= 1
    tick(page, row)
    expect(page.get_by_role("tab", name="Details")).to_have_count(0)
    return 1
