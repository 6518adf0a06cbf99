"""Topic browser: the newest records of one of orderflow's topics, filtered, with a detail view."""

from __future__ import annotations

import streamlit as st

from dashboard import data, shape, ui

settings = ui.settings()
PER_PARTITION = (10, 25, 50, 100, 200, 500)
WINDOWS_MIN = {"any time": None, "1 min": 1, "5 min": 5, "15 min": 15, "1 h": 60, "24 h": 1440}

st.title("Topics")
topics = data.stage_topics(settings)
controls = st.columns([2, 1, 2, 1])
label = controls[0].selectbox(
    "Topic", list(topics), format_func=lambda name: f"{name} · {topics[name]}", key="tb_topic"
)
topic = topics[label]
per_partition = controls[1].select_slider(
    "Newest per partition", PER_PARTITION, value=50, key="tb_limit"
)
key_contains = controls[2].text_input("Order id / key contains", key="tb_key").strip()
window = controls[3].selectbox("Newer than", list(WINDOWS_MIN), key="tb_window")
st.caption(
    f"Reads only the newest {per_partition} records of each partition (assign + seek from the "
    "end, no consumer group); filters apply to those. Internal topics are not listed."
)


@st.fragment(run_every=ui.run_every())
def browse() -> None:
    table_key = f"tb_table_{topic}"
    selection = st.session_state.get(table_key)
    frozen = bool(selection and selection.selection.rows)
    with ui.guarded(settings):
        if not frozen or "tb_records" not in st.session_state:
            st.session_state["tb_records"] = data.latest(settings, topic, per_partition)
        seen = {record.partition for record in st.session_state["tb_records"]}
        parts_key = f"tb_parts_{topic}"
        choices = sorted(seen | set(st.session_state.get(parts_key, [])))
        chosen = st.multiselect("Partitions", choices, key=parts_key, placeholder="all")
        minutes = WINDOWS_MIN[window]
        flt = shape.RecordFilter(
            key_contains=key_contains,
            partitions=frozenset(chosen),
            since_ms=None if minutes is None else ui.now_ms() - minutes * 60_000,
        )
        records = shape.filter_records(st.session_state["tb_records"], flt)
        frame = shape.records_frame(records)
        st.write(
            f"**{len(frame)}** records"
            + (
                " · refresh paused while a row is selected"
                if frozen
                else f" · updated {ui.clock()}"
            )
        )
        event = st.dataframe(
            frame,
            key=table_key,
            on_select="rerun",
            selection_mode="single-row",
            hide_index=True,
            width="stretch",
            column_order=["partition", "offset", "time", "key", "value", "headers"],
            column_config={
                "time": st.column_config.DatetimeColumn("time", format="YYYY-MM-DD HH:mm:ss.SSS"),
                "value": st.column_config.TextColumn("value", width="large"),
                "headers": st.column_config.JsonColumn("headers", width="medium"),
            },
        )
        rows = event.selection.rows
        if rows and rows[0] < len(frame):
            row = frame.iloc[rows[0]]
            where = (int(row["partition"]), int(row["offset"]))
            record = next(r for r in records if (r.partition, r.offset) == where)
            st.subheader(f"{topic} · partition {record.partition} · offset {record.offset}")
            ui.record_detail(record.value, record.headers)


browse()
