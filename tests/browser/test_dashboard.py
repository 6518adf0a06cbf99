"""The dashboard in a real browser against a real broker and real processors.

Produce a "permanent failure" order in the form → it shows up in the DLQ table, reason
non_retryable, by auto-refresh (no reload) → fix its payload and replay it → the trace shows it
processed. Every page is screenshotted to artifacts/screenshots/.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Stack, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.slow]

ROW_HEIGHT = 35  # Streamlit's dataframe rows and header, in CSS pixels


# Sidebar link → the page's own title. Waiting for *a* heading is not enough: the previous
# page's heading is still on screen right after the click, and a form filled then goes to the
# previous page (both DLQ and Trace have an "Order id" input).
PAGE_TITLES = {
    "Overview": "Overview",
    "Produce": "Produce",
    "DLQ": "Dead letters",
    "Trace": "Order trace",
    "Topics": "Topics",
}


def open_page(page, name: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name).click()
    page.get_by_role("heading", level=1, name=PAGE_TITLES[name], exact=True).wait_for()
    # Elements of the previous page linger, marked stale, until the new page's run ends.
    expect(page.locator('[data-stale="true"]')).to_have_count(0, timeout=30_000)


def select_option(page, label: str, option: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def dataframe_row_of(page, text: str, timeout_s: float) -> int:
    """Row index of the first dataframe row whose first column is ``text``, waiting for it."""
    cell = page.locator('[data-testid^="glide-cell-1-"]', has_text=re.compile(f"^{text}$"))
    cell.first.wait_for(state="attached", timeout=timeout_s * 1000)
    testid = cell.first.get_attribute("data-testid")
    assert testid is not None
    return int(testid.rsplit("-", 1)[1])


def tick_row(page, row: int) -> None:
    """Click the selection checkbox of ``row`` (the grid is a canvas: click by position)."""
    grid = page.get_by_test_id("stDataFrameResizable").first
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 15, box["y"] + ROW_HEIGHT * (row + 1) + ROW_HEIGHT / 2)


def test_permanent_failure_to_dlq_then_edited_replay_is_processed(
    stack: Stack, browser_page
) -> None:
    page = browser_page
    order_id = f"ord-browser-{int(time.time())}"
    started = time.monotonic()

    page.goto(stack.url)
    page.get_by_role("heading", name="Overview").wait_for()

    # --- produce one order that fails for good -------------------------------------------------
    open_page(page, "Produce")
    page.get_by_label("Order id").fill(order_id)
    select_option(page, "Scenario", "permanent failure")
    page.get_by_role("button", name="Send order").click()
    page.get_by_text(f"Sent order {order_id}").wait_for()
    screenshot(page, "produce")
    sent_at = time.monotonic()

    # --- it appears in the DLQ table by itself ---------------------------------------------------
    open_page(page, "DLQ")
    page.evaluate("window.__noReload = true")
    try:
        row = dataframe_row_of(page, order_id, timeout_s=60)
    except Exception:
        print(stack.log_tail())
        raise
    appeared_s = time.monotonic() - sent_at
    assert page.evaluate("window.__noReload") is True, "the page was reloaded"
    reason = page.get_by_test_id(f"glide-cell-2-{row}").text_content()
    assert reason == "non_retryable"

    # --- select it, fix the payload, replay the edited version ----------------------------------
    tick_row(page, row)
    page.get_by_role("tab", name="Edit & replay").wait_for()
    page.get_by_text("refresh paused while rows are selected").wait_for()
    page.get_by_role("tab", name="Details").click()
    expect(page.get_by_test_id("stCode").filter(has_text="PaymentDeclined")).to_be_visible()
    screenshot(page, "dlq")
    page.get_by_role("tab", name="Edit & replay").click()
    editor = page.get_by_label("Payload (JSON)")
    expect(editor).to_have_value(re.compile(order_id))
    assert '"simulate"' not in editor.input_value()
    page.get_by_role("button", name="Validate and replay edited…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("The original dead letter stays in the DLQ unchanged").wait_for()
    screenshot(page, "dlq-confirm")
    dialog.get_by_role("button", name="Replay edited").click()
    page.get_by_text(re.compile(r"Replayed 1 edited")).wait_for()
    replayed_at = time.monotonic()

    # --- the trace shows it processed ----------------------------------------------------------
    open_page(page, "Trace")
    page.get_by_label("Order id").fill(order_id)
    page.get_by_label("Order id").press("Enter")
    page.get_by_text("Latest: processed").wait_for(timeout=60_000)
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    expect(page.get_by_test_id("stVegaLiteChart")).to_be_visible()
    screenshot(page, "trace")
    processed_s = time.monotonic() - replayed_at

    # --- a generated batch, with progress ---------------------------------------------------------
    open_page(page, "Produce")
    page.get_by_role("tab", name="Generate many").click()
    page.get_by_label("Orders", exact=True).fill("60")
    page.get_by_label("Rate (orders/s, 0 = as fast as possible)").fill("40")
    page.get_by_role("button", name="Generate and send").click()
    page.get_by_text(re.compile(r"Delivered 60 orders")).wait_for(timeout=30_000)
    screenshot(page, "produce-many")

    # --- the other pages, for the record ------------------------------------------------------
    open_page(page, "Topics")
    select_option(page, "Topic", f"processed · {stack.settings.topic_processed}")
    page.get_by_text(re.compile(r"^\d+ records")).wait_for()
    expect(page.get_by_test_id("stDataFrame")).to_have_count(1)  # the old topic's table is gone
    screenshot(page, "topics")
    open_page(page, "Overview")
    page.get_by_text("Records per topic").wait_for()
    expect(page.get_by_test_id("stGraphVizChart")).to_be_visible()
    time.sleep(4)  # two refreshes, so the throughput chart has points
    screenshot(page, "overview")

    # --- pause stops the live updates, resume restarts them -------------------------------------
    updated = page.get_by_text(re.compile(r"^Updated \d"))
    page.get_by_text("Pause live updates").click()
    # The rerun that applies the pause may take a while on a busy machine: wait until the
    # timestamp holds still for more than two refresh intervals (it never would if pausing
    # did not work), then check it stays still.
    paused_text, deadline = updated.text_content(), time.monotonic() + 30
    while time.monotonic() < deadline:
        page.wait_for_timeout(4500)
        now_text = updated.text_content()
        if now_text == paused_text:
            break
        paused_text = now_text
    page.wait_for_timeout(4500)
    assert updated.text_content() == paused_text
    page.get_by_text("Pause live updates").click()
    expect(updated).not_to_have_text(paused_text or "", timeout=10_000)
    print(
        f"dlq_appeared_s={appeared_s:.1f} processed_after_replay_s={processed_s:.1f} "
        f"total_s={time.monotonic() - started:.1f}"
    )
