"""Produce: one order from a form (with a failure scenario), or many generated ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboard import data, forms, ui
from processors.core.order import CURRENCIES
from processors.errors import OrderflowError

settings = ui.settings()
CURRENCY_CHOICES = sorted(CURRENCIES)
DEFAULT_ITEMS = pd.DataFrame(
    [{"sku": "MUG-ORDERFLOW", "quantity": 2, "unit_price": 12.50}],
).astype({"sku": "string", "quantity": "Int64", "unit_price": "float64"})

st.title("Produce")
single, bulk = st.tabs(["One order", "Generate many"])

with single, st.form("order_form"):
    left, right = st.columns(2)
    order_id = left.text_input("Order id", key="pf_order_id", placeholder="blank: generated")
    order_id_msg = left.empty()
    customer_id = right.text_input("Customer id", value="cus-00001", key="pf_customer_id")
    customer_msg = right.empty()
    currency = left.selectbox(
        "Currency", CURRENCY_CHOICES, index=CURRENCY_CHOICES.index("EUR"), key="pf_currency"
    )
    currency_msg = left.empty()
    scenario = right.selectbox(
        "Scenario",
        list(forms.SCENARIOS),
        format_func=forms.SCENARIOS.__getitem__,
        key="pf_scenario",
    )
    fail_attempts = right.number_input(
        "N (fail N times, then succeed)",
        min_value=0,
        max_value=100,
        value=2,
        step=1,
        key="pf_fail_attempts",
    )
    fail_msg = right.empty()
    st.markdown("**Items** (the total is their sum)")
    items = st.data_editor(
        DEFAULT_ITEMS,
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        key="pf_items",
        column_config={
            "sku": st.column_config.TextColumn("SKU", max_chars=64),
            "quantity": st.column_config.NumberColumn("Quantity", min_value=1, step=1),
            "unit_price": st.column_config.NumberColumn("Unit price", min_value=0, format="%.2f"),
        },
    )
    items_msg = st.empty()
    submitted = st.form_submit_button("Send order", type="primary")

if submitted:
    messages = {
        "order_id": order_id_msg,
        "customer_id": customer_msg,
        "currency": currency_msg,
        "fail_attempts": fail_msg,
        "items": items_msg,
    }
    try:
        if scenario == "poison":
            item: data.GeneratedItem = forms.poison_payload(order_id)
        else:
            item = forms.build_order(
                forms.OrderForm(
                    order_id=order_id,
                    customer_id=customer_id,
                    currency=currency,
                    items=items.to_dict("records"),
                    scenario=scenario,
                    fail_attempts=int(fail_attempts),
                ),
                created_at=datetime.now(UTC),
            )
    except forms.FormErrors as exc:
        for field, message in exc.fields.items():
            messages.get(field, items_msg).error(message, icon=":material/error:")
        single.warning("Nothing was sent: fix the fields marked above.")
    else:
        try:
            delivery = data.produce_one(settings, item)
        except OrderflowError as exc:
            single.error(f"Not sent: {exc}", icon=":material/cloud_off:")
        else:
            single.success(
                f"Sent order `{delivery.key}` ({forms.SCENARIOS[scenario]}) to "
                f"{delivery.topic} partition {delivery.partition} offset {delivery.offset}. "
                "Follow it on the Trace page.",
                icon=":material/check_circle:",
            )

with bulk:
    with st.form("bulk_form"):
        top = st.columns(3)
        count = top[0].number_input("Orders", 1, 100_000, 100, step=10, key="bulk_count")
        rate = top[1].number_input(
            "Rate (orders/s, 0 = as fast as possible)", 0, 10_000, 0, step=10, key="bulk_rate"
        )
        seed = top[2].number_input("Seed (0 = random)", 0, 2**31 - 1, 0, key="bulk_seed")
        st.markdown("**Scenario mix** (relative weights)")
        weights_cols = st.columns(4)
        weights = {
            "success": weights_cols[0].number_input("succeed", 0, 100, 80, key="mix_success"),
            "transient": weights_cols[1].number_input(
                "fail 1–2 times", 0, 100, 10, key="mix_transient"
            ),
            "permanent": weights_cols[2].number_input(
                "permanent failure", 0, 100, 5, key="mix_permanent"
            ),
            "poison": weights_cols[3].number_input("poison", 0, 100, 5, key="mix_poison"),
        }
        mix_msg = st.empty()
        generate = st.form_submit_button("Generate and send", type="primary")
    if generate:
        try:
            mix = forms.scenario_mix(weights)
        except forms.FormErrors as exc:
            mix_msg.error(exc.fields["mix"], icon=":material/error:")
        else:
            counts = forms.split_count(int(count), mix)
            batch = forms.mixed_items(counts, seed=int(seed) or None)
            bar = st.progress(0.0, text="sending…")

            def progress(delivered: int, failed: int) -> None:
                done = delivered + failed
                if done % 25 == 0 or done == len(batch):
                    bar.progress(done / len(batch), text=f"{delivered} delivered, {failed} failed")

            summary = data.produce_many(
                settings, batch, rate=float(rate) or None, progress=progress
            )
            bar.progress(1.0, text="done")
            plan = ", ".join(f"{n} {name}" for name, n in counts.items())
            if summary.ok:
                st.success(
                    f"Delivered {summary.delivered} orders ({plan}) in {summary.elapsed_s:.1f} s "
                    f"({summary.rate:.0f}/s).",
                    icon=":material/check_circle:",
                )
            else:
                st.error(
                    f"Delivered {summary.delivered}, failed {summary.failed}: "
                    + "; ".join(summary.errors),
                    icon=":material/cloud_off:",
                )
