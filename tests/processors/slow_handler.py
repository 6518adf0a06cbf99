"""A test handler: the first call for an order whose id ends in ``-slow`` stalls longer than
the test's transaction timeout (1 s) plus the broker's 10 s expiry check, with 5 s to spare for a
busy broker (12 s left one). Once per working directory (a marker file), so a restarted
processor does not stall again. Otherwise the built-in handler."""

from __future__ import annotations

import time
from pathlib import Path

from processors.core.order import Order
from processors.handler import HandlerContext, handle_order

MARKER = Path("stalled-once")


def handle(order: Order, ctx: HandlerContext) -> None:
    if order.order_id.endswith("-slow") and not MARKER.exists():
        MARKER.touch()
        time.sleep(16)
    handle_order(order, ctx)
