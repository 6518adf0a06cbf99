"""A test handler: the first order whose id ends in ``-freeze`` writes ``freeze-now`` in the
working directory and then takes 1.5 s, so the test can freeze the broker (SIGSTOP) before the
checkpoint that holds this order commits. Once per working directory (a restarted processor
does not wait again). Otherwise the built-in handler."""

from __future__ import annotations

import time
from pathlib import Path

from processors.core.order import Order
from processors.handler import HandlerContext, handle_order

MARKER = Path("freeze-now")


def handle(order: Order, ctx: HandlerContext) -> None:
    if order.order_id.endswith("-freeze") and not MARKER.exists():
        MARKER.write_text("1")
        time.sleep(1.5)
    handle_order(order, ctx)
