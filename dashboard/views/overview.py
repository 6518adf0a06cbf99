"""Overview: the flow with live counts, totals and throughput over time, lag, DLQ by reason."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, shape, ui

settings = ui.settings()

st.title("Overview")
st.caption(
    "Counts: watermarks, plus the records that arrived since the last refresh (at most "
    f"{shape.RecordCounts.budget:,} read per refresh). Lag: consumer-group offsets. DLQ by "
    f"reason: the newest {data.DLQ_SAMPLE_PER_PARTITION} dead letters per partition. A refresh "
    "never costs more however many records the topics hold."
)


def _history() -> shape.History:
    if "overview_history" not in st.session_state:
        st.session_state["overview_history"] = shape.History(keep=180)
    return st.session_state["overview_history"]


def _counts() -> shape.RecordCounts:
    if "overview_counts" not in st.session_state:
        st.session_state["overview_counts"] = shape.RecordCounts()
    return st.session_state["overview_counts"]


def _lines(frame: pd.DataFrame, value: str) -> alt.Chart:
    order = list(data.stage_topics(settings))
    return (
        alt.Chart(frame)
        .mark_line(point=len(frame) < 40)
        .encode(
            x=alt.X("time:T", title=None, axis=alt.Axis(format="%H:%M:%S")),
            # "~" trims trailing zeros: an idle stream reads 0, not 0.000000.
            y=alt.Y(f"{value}:Q", title=value.replace("_", " "), axis=alt.Axis(format=",.2~f")),
            color=alt.Color("topic:N", title="stage", scale=ui.stage_colors(order)),
            tooltip=["time:T", "topic:N", f"{value}:Q"],
        )
        .properties(height=260)
    )


@st.fragment(run_every=ui.run_every())
def live() -> None:
    with ui.guarded(settings):
        snapshot = data.overview(settings, _counts())
        history = _history()
        previous = history.samples[-1][1] if history.samples else {}
        stages = shape.flow_stages(data.stage_topics(settings), snapshot.totals)
        history.push(ui.now_ms(), {s.label: s.count for s in stages if s.count is not None})

        columns = st.columns(len(stages) + 2)
        for column, stage in zip(columns, stages, strict=False):
            before = previous.get(stage.label)
            delta = None if before is None or stage.count is None else stage.count - before
            approx = "" if snapshot.exact.get(stage.topic, True) else "≈"
            column.metric(
                stage.label,
                "?" if stage.count is None else f"{approx}{stage.count:,}",
                delta=delta or None,
                delta_color="inverse" if stage.label in ("DLQ", "retry") else "normal",
                help=f"Records in `{stage.topic}`. Counted once as they arrive, at most "
                f"{shape.RecordCounts.budget:,} per refresh; beyond that (≈) estimated from "
                "offsets, which include one transaction marker per partition per commit.",
            )
        by_label = {lag.label: lag for lag in snapshot.lags}
        columns[-2].metric(
            "main lag",
            f"{by_label['main'].total:,}",
            help=f"Records of {settings.topic_main} not yet handled by {settings.group_main}.",
        )
        columns[-1].metric(
            "waiting for retry",
            f"{by_label['retry'].total:,}",
            help=f"Lag of {settings.group_retry} on {settings.topic_retry}: records waiting "
            "for their due time plus any being retried.",
        )

        st.graphviz_chart(shape.flow_dot(stages), width="stretch")

        left, right = st.columns(2)
        with left:
            st.subheader("Records per topic")
            st.altair_chart(_lines(shape.totals_frame(history), "records"), width="stretch")
        with right:
            st.subheader("Throughput (records/s)")
            rates = shape.throughput_frame(history)
            if rates.empty:
                st.caption("Needs two refreshes.")
            else:
                st.altair_chart(_lines(rates, "per_second"), width="stretch")

        left, right = st.columns(2)
        with left:
            st.subheader("Consumer-group lag")
            frame = shape.lag_frame((lag.group, lag.topic, lag.partitions) for lag in snapshot.lags)
            st.dataframe(frame, hide_index=True, width="stretch")
        with right:
            st.subheader("DLQ by reason")
            reasons = shape.reason_counts(snapshot.dlq_sample)
            if reasons.empty:
                st.caption("No dead letters.")
            else:
                bars = (
                    alt.Chart(reasons)
                    .mark_bar(color=ui.STAGE_COLORS["DLQ"])
                    .encode(
                        x=alt.X("count:Q", title="dead letters", axis=alt.Axis(tickMinStep=1)),
                        y=alt.Y("reason:N", sort="-x", title=None, axis=alt.Axis(labelLimit=240)),
                        tooltip=["reason", "count"],
                    )
                    .properties(height=alt.Step(28))  # a fixed band per reason
                )
                st.altair_chart(bars, width="stretch")
        st.caption(f"Updated {ui.clock()}")


live()
