"""Order trace: one order's journey across all of orderflow's topics, as a timeline."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import data, shape, ui

settings = ui.settings()
PER_PARTITION = (50, 100, 200, 500, 1000)

st.title("Order trace")
left, right = st.columns([3, 1])
order_id = left.text_input("Order id", key="trace_order_id", placeholder="ord-…").strip()
per_partition = right.select_slider(
    "Look back per partition", PER_PARTITION, value=200, key="trace_limit"
)
st.caption(
    f"Looks at the newest {per_partition} records of each partition of "
    f"{', '.join(settings.all_topics)} and keeps those keyed by the order id. A hop older than "
    "that window is not shown: raise the look-back, or use `orderflow dlq list` for older "
    "dead letters."
)


@st.fragment(run_every=ui.run_every())
def timeline() -> None:
    if not order_id:
        st.info("Enter an order id to follow it through main → retry → DLQ → processed.")
        return
    with ui.guarded(settings):
        records = data.trace(settings, order_id, per_partition)
        frame = shape.timeline_frame(records, data.topic_stages(settings))
        if frame.empty:
            st.warning(f"No record with this key in the newest {per_partition} per partition:")
            st.text(order_id)
            return
        final = shape.final_stage(frame)
        icon = {
            "processed": ":green[:material/check_circle:]",
            "DLQ": ":red[:material/report:]",
            "retry": ":orange[:material/schedule:]",
        }.get(final or "", ":material/arrow_forward:")
        st.markdown(f"### {icon} Latest: **{final}** · {len(frame)} hops · updated {ui.clock()}")
        stages = list(data.stage_topics(settings))
        chart = (
            alt.Chart(frame)
            .mark_circle(size=160)
            .encode(
                x=alt.X("time:T", title=None, axis=alt.Axis(format="%H:%M:%S")),
                y=alt.Y("stage:N", sort=stages, title=None),
                color=alt.Color("stage:N", scale=ui.stage_colors(stages), legend=None),
                tooltip=["time:T", "stage", "partition", "offset", "attempts", "detail"],
            )
            .properties(height=60 + 40 * len(stages))
        )
        st.altair_chart(chart, width="stretch")
        st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            column_config={
                "time": st.column_config.DatetimeColumn("time", format="YYYY-MM-DD HH:mm:ss.SSS"),
                "detail": st.column_config.TextColumn("detail", width="large"),
            },
        )


timeline()
