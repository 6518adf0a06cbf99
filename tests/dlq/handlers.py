"""Handlers for the redrive test, loaded by a real processor through ORDERFLOW_HANDLER."""

from __future__ import annotations

from processors.core.classify import PermanentError
from processors.core.order import Order


class MerchantAccountSuspended(PermanentError):
    """Every payment fails for good until the account is fixed (the "cause" of the test)."""


def account_suspended(order: Order, ctx: object) -> None:
    raise MerchantAccountSuspended(f"merchant account suspended; order {order.order_id} rejected")
