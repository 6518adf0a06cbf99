"""DLQ: dead letters with their context; inspect, replay (as is or edited) behind a confirmation.

The table refreshes by itself while nothing is selected. Selecting rows freezes it, so the
rows an operator acts on are exactly the rows they see.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, forms, shape, ui
from processors.dlq.filters import DlqFilter
from processors.dlq.model import DeadLetter

settings = ui.settings()
REASONS = (
    "non_retryable",
    "max_attempts_exhausted",
    "validation_failed",
    "deserialization_failed",
    "retry_deadline_exceeded",
)
LIMITS = (50, 100, 200, 500, 1000)
TARGETS = {"original": "original topic (x-original-topic)", "retry": "retry topic"}

st.title("Dead letters")
state = st.session_state
state.setdefault("dlq_generation", 0)
table_key = f"dlq_table_{state['dlq_generation']}"

controls = st.columns([2, 2, 2, 1])
reason = controls[0].selectbox("Reason", ("any", *REASONS), key="dlq_reason")
order_id = controls[1].text_input("Order id", key="dlq_order_id").strip()
error_class = controls[2].text_input("Error class contains", key="dlq_error_class").strip()
limit = controls[3].selectbox("Show newest", LIMITS, key="dlq_limit")
flt = DlqFilter(
    reason=None if reason == "any" else reason,
    order_id=order_id or None,
    error_class=error_class or None,
)

outcome = state.get("dlq_outcome")
if outcome:
    kind, text = outcome
    banner = st.success if kind == "ok" else st.warning
    banner(
        "Replay finished." if kind == "ok" else "Replay finished with problems:",
        icon=":material/replay:",
    )
    st.text(text)  # refs, topics and reasons come from records: plain text only


def _selected_rows() -> list[int]:
    selection = state.get(table_key)
    return list(selection.selection.rows) if selection else []


had_selection = bool(_selected_rows())


@st.fragment(run_every=None if had_selection else ui.run_every())
def table() -> None:
    with ui.guarded(settings):
        if not _selected_rows() or "dlq_letters" not in state:
            letters, complete = data.dead_letters(settings, flt, limit)
            state["dlq_letters"], state["dlq_complete"] = letters, complete
        letters = state["dlq_letters"]
        note = (
            "refresh paused while rows are selected"
            if _selected_rows()
            else f"updated {ui.clock()}"
        )
        if not state["dlq_complete"]:
            note += f" · searched the newest {data.DLQ_MAX_SCAN:,} offsets only"
        st.write(f"**{len(letters)}** dead letters · {note}")
        event = st.dataframe(
            shape.dead_letter_frame(letters, ui.now_ms()),
            key=table_key,
            on_select="rerun",
            selection_mode="multi-row",
            hide_index=True,
            width="stretch",
            column_config={
                "first_failure": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
                "last_failure": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
                "error_message": st.column_config.TextColumn(width="large"),
            },
        )
        if bool(event.selection.rows) != had_selection:
            st.rerun(scope="app")  # show or hide the actions below, and pause or resume


table()


def _done(kind: str, text: str) -> None:
    state["dlq_outcome"] = (kind, text)
    state["dlq_generation"] += 1  # a new table key: the selection is cleared
    state.pop("dlq_letters", None)
    st.rerun()


@st.dialog("Replay dead letters?")
def confirm_replay(letters: list[DeadLetter], to: str) -> None:
    st.write(
        f"Republish **{len(letters)}** dead letter(s) to the **{TARGETS[to]}** with replay "
        "headers and a reset attempt counter. The DLQ itself is not changed."
    )
    st.text(", ".join(letter.order_id or letter.ref for letter in letters[:20]))
    left, right = st.columns(2)
    if left.button("Replay", type="primary", key="dlq_confirm_replay"):
        with ui.guarded(settings):
            report = data.replay_letters(settings, letters, to)
            _done(*shape.replay_outcome(report))
    if right.button("Cancel", key="dlq_cancel_replay"):
        st.rerun()


@st.dialog("Replay the edited order?")
def confirm_edited(letter: DeadLetter, payload: bytes, to: str) -> None:
    st.write(
        f"Publish the edited payload of this dead letter to the **{TARGETS[to]}**. "
        "The original dead letter stays in the DLQ unchanged."
    )
    st.text(letter.order_id or letter.ref)
    left, right = st.columns(2)
    if left.button("Replay edited", type="primary", key="dlq_confirm_edited"):
        with ui.guarded(settings):
            report = data.replay_edited(settings, letter, payload, to)
            label = f"edited {letter.order_id or letter.ref} (original kept in the DLQ)"
            _done(*shape.replay_outcome(report, label))
    if right.button("Cancel", key="dlq_cancel_edited"):
        st.rerun()


rows = _selected_rows()
letters_shown: list[DeadLetter] = state.get("dlq_letters", [])
chosen = [letters_shown[i] for i in rows if i < len(letters_shown)]
if chosen:
    st.divider()
    left, right = st.columns([3, 1])
    to = left.radio(
        "Replay the selected records unchanged to",
        list(TARGETS),
        format_func=TARGETS.__getitem__,
        horizontal=True,
        key="dlq_target",
    )
    if right.button(f"Replay {len(chosen)} selected…", type="primary", key="dlq_replay"):
        confirm_replay(chosen, to)

if len(chosen) == 1:
    letter = chosen[0]
    details, edit = st.tabs(["Details", "Edit & replay"])
    with details:
        # Everything below comes from the record: tables, code and plain text, never markup.
        st.dataframe(
            shape.dead_letter_context(letter, ui.now_ms()),
            hide_index=True,
            width="stretch",
            column_config={"value": st.column_config.TextColumn(width="large")},
        )
        ui.record_detail(letter.value, letter.headers, label="Payload")
        st.markdown("**Stack trace**")
        st.code(letter.stacktrace or "(none recorded)", language="python")
    with edit:
        st.caption(
            "Fix the payload (it must be a valid order), then replay it. The starting point is "
            "the original payload without its `simulate` block."
        )
        text = st.text_area(
            "Payload (JSON)",
            value=forms.without_simulation(letter.payload.text),
            height=320,
            key=f"dlq_edit_{letter.ref}",
        )
        message = st.empty()
        to_edited = st.radio(
            "Replay to",
            list(TARGETS),
            format_func=TARGETS.__getitem__,
            horizontal=True,
            key="dlq_edit_target",
        )
        if st.button("Validate and replay edited…", key="dlq_edit_replay"):
            try:
                order = forms.parse_edited_payload(text)
            except forms.FormErrors as exc:
                with message.container():
                    st.error("Not a valid order:", icon=":material/error:")
                    st.text(exc.fields["payload"])  # may quote the payload
            else:
                confirm_edited(letter, order.to_json_bytes(), to_edited)
