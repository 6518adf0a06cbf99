"""A test handler: an order whose id ends in ``-slow`` stalls longer than the test's transaction
timeout (1 s) plus the broker's 10 s expiry check, with 5 s to spare for a busy broker (12 s left
one). Only in the first process run in a working directory (a marker file holds its pid), so a
restarted processor does not stall again, and only once per order in it (a processor that
recovers in-process reprocesses the order). Otherwise the built-in handler."""

from __future__ import annotations

import os
import time
from pathlib import Path

from processors.core.order import Order
from processors.handler import HandlerContext, handle_order

MARKER = Path("stalling-pid")
_stalled: set[str] = set()


def handle(order: Order, ctx: HandlerContext) -> None:
    if order.order_id.endswith("-slow"):
        if not MARKER.exists():
            MARKER.write_text(str(os.getpid()))
        if MARKER.read_text() == str(os.getpid()) and order.order_id not in _stalled:
            _stalled.add(order.order_id)
            time.sleep(16)
    handle_order(order, ctx)
