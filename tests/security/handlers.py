"""A handler with a fixable cause, loaded by the real processors through ORDERFLOW_HANDLER.

While the file named by ``ORDERFLOW_TEST_SUSPENDED_FLAG`` exists, orders of customer
``cus-suspended`` fail for good (they dead-letter); once it is removed (the cause is fixed),
they succeed. Everything else goes to the built-in handler (``simulate`` is honoured).
"""

from __future__ import annotations

import os
from pathlib import Path

from processors.core.classify import PermanentError
from processors.core.order import Order
from processors.handler import HandlerContext, handle_order


class AccountSuspended(PermanentError):
    """The fixable cause."""


def suspended_until_fixed(order: Order, ctx: HandlerContext) -> None:
    flag = os.environ.get("ORDERFLOW_TEST_SUSPENDED_FLAG", "")
    if order.customer_id == "cus-suspended" and flag and Path(flag).exists():
        raise AccountSuspended(f"account of order {order.order_id} suspended")
    handle_order(order, ctx)
