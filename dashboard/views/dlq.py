"""DLQ: dead letters with their context and redrive state; inspect, redrive (as is or edited)
behind a confirmation.

Each dead letter is *pending* (never redriven) or *redriven* (the redrive ledger says when, by
which run, and where to); the counts on top make "what is left" one number. A redrive moves:
already-redriven rows are skipped unless the operator asks to redrive them again. The table
refreshes by itself while nothing is selected. Selecting rows freezes it, so the rows an
operator acts on are exactly the rows they see.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, forms, shape, ui
from processors.dlq.filters import DlqFilter
from processors.dlq.ledger import Ledger, LedgerCache
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
STATES = ("any", "pending", "redriven")

st.title("Dead letters")
state = st.session_state
state.setdefault("dlq_generation", 0)
table_key = f"dlq_table_{state['dlq_generation']}"

controls = st.columns([2, 2, 2, 1, 1])
reason = controls[0].selectbox("Reason", ("any", *REASONS), key="dlq_reason")
order_id = controls[1].text_input("Order id", key="dlq_order_id").strip()
error_class = controls[2].text_input("Error class contains", key="dlq_error_class").strip()
redrive_state = controls[3].selectbox("State", STATES, key="dlq_state")
limit = controls[4].selectbox("Show newest", LIMITS, key="dlq_limit")
flt = DlqFilter(
    reason=None if reason == "any" else reason,
    order_id=order_id or None,
    error_class=error_class or None,
    state=None if redrive_state == "any" else redrive_state,  # type: ignore[arg-type]
)

outcome = state.get("dlq_outcome")
if outcome:
    kind, text = outcome
    if kind == "ok":
        st.success("Redrive finished", icon=":material/replay:")
    else:
        st.warning("Redrive finished with warnings", icon=":material/replay:")
    st.text(text)  # plain text: it quotes refs and header values


def _selected_rows() -> list[int]:
    selection = state.get(table_key)
    return list(selection.selection.rows) if selection else []


had_selection = bool(_selected_rows())


def _ledger() -> Ledger:
    return state.get("dlq_ledger", Ledger())


def _counts(counts: data.DlqCounts) -> None:
    cols = st.columns(4)
    approx = "" if counts.exact else "≈"
    cols[0].metric("Pending (left to do)", f"{approx}{counts.pending:,}")
    cols[1].metric("Redriven", f"{counts.redriven:,}")
    cols[2].metric("Dead letters", f"{approx}{counts.dead_letters:,}")
    cols[3].metric("Ledger entries skipped", f"{counts.ledger_garbage + counts.ledger_stale:,}")
    notes = []
    if counts.ledger_missing:
        notes.append(f"no redrive ledger ({settings.topic_redriven}) yet: nothing was redriven")
    if not counts.ledger_complete:
        notes.append("the redrive ledger is still being read: more may show as redriven")
    if counts.ledger_garbage or counts.ledger_stale:
        notes.append(
            f"ledger entries skipped: {counts.ledger_garbage} unreadable,"
            f" {counts.ledger_stale} for dead letters retention removed"
        )
    if not counts.exact:
        notes.append("≈: estimated from offsets (transaction markers included)")
    if notes:
        st.caption(" · ".join(notes))


@st.fragment(run_every=None if had_selection else ui.run_every())
def table() -> None:
    with ui.guarded(settings):
        if not _selected_rows() or "dlq_letters" not in state:
            cache = state.setdefault("dlq_ledger_cache", LedgerCache())
            ledger = data.redrive_ledger(settings, cache)
            counts = data.dlq_counts(
                settings, state.setdefault("dlq_record_counts", shape.RecordCounts()),
                ledger, cache.complete,
            )  # fmt: skip
            letters, complete = data.dead_letters(settings, flt, limit, redriven=ledger)
            state["dlq_letters"], state["dlq_complete"] = letters, complete
            state["dlq_ledger"], state["dlq_counts"] = ledger, counts
        _counts(state["dlq_counts"])
        letters = state["dlq_letters"]
        note = (
            "refresh paused while rows are selected"
            if _selected_rows()
            else f"updated {ui.clock()}"
        )
        if not state["dlq_complete"]:
            note += f" · searched the newest {data.DLQ_MAX_SCAN:,} offsets only"
        st.write(f"**{len(letters)}** dead letters · {note}")
        frame = shape.dead_letter_frame(letters, ui.now_ms())
        event = st.dataframe(
            shape.with_redrive_state(frame, [letter.ref for letter in letters], _ledger()),
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
        rows_now = list(event.selection.rows)
        if rows_now != state.get("dlq_rows_acted_on", []):
            # The actions below live outside this fragment: show, update or hide them (for the
            # rows now selected), and pause or resume the refresh.
            state["dlq_rows_acted_on"] = rows_now
            st.rerun(scope="app")


table()


def _done(kind: str, text: str) -> None:
    state["dlq_outcome"] = (kind, text)
    state["dlq_generation"] += 1  # a new table key: the selection is cleared
    state.pop("dlq_letters", None)
    st.rerun()


@st.dialog("Redrive dead letters?")
def confirm_replay(letters: list[DeadLetter], to: str, again: bool) -> None:
    redriven = sum(letter.ref in _ledger() for letter in letters)
    pending = len(letters) - redriven
    moved = len(letters) if again else pending
    st.write(
        f"Move **{moved}** dead letter(s) to the **{TARGETS[to]}** with replay headers and a "
        "reset attempt counter, and record each in the redrive ledger. The DLQ itself is not "
        "changed."
    )
    if redriven:
        st.text(
            f"{redriven} of the {len(letters)} selected were redriven before: "
            + ("they are redriven again (counted)." if again else "they are skipped.")
        )
    st.text(", ".join(letter.order_id or letter.ref for letter in letters[:20]))
    left, right = st.columns(2)
    if left.button("Redrive", type="primary", key="dlq_confirm_replay"):
        with ui.guarded(settings):
            report = data.replay_letters(settings, letters, to, again=again)
            kind, text = shape.replay_outcome(report)
            if report.skipped_redriven:
                text += f" Skipped {report.skipped_redriven} already redriven."
                kind = "ok" if not report.refused_count and not report.failed else kind
            if report.again:
                text += f" {report.again} redriven again on purpose."
            _done(kind, text)
    if right.button("Cancel", key="dlq_cancel_replay"):
        st.rerun()


@st.dialog("Replay the edited order?")
def confirm_edited(letter: DeadLetter, payload: bytes, to: str) -> None:
    st.text(
        f"Publish the edited payload of {letter.order_id or letter.ref} to the "
        f"{TARGETS[to]}. The original dead letter stays in the DLQ unchanged."
    )
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
    left, middle, right = st.columns([3, 2, 1])
    to = left.radio(
        "Redrive the selected records unchanged to",
        list(TARGETS),
        format_func=TARGETS.__getitem__,
        horizontal=True,
        key="dlq_target",
    )
    again = middle.checkbox(
        "Also redrive those already redriven (again)",
        key="dlq_again",
        help="By default a redrive moves pending dead letters only: each is redriven once.",
    )
    if right.button(f"Redrive {len(chosen)} selected…", type="primary", key="dlq_replay"):
        confirm_replay(chosen, to, again)

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
        entry = _ledger().get(letter.ref)
        st.text(
            "pending: never redriven"
            if entry is None
            else f"redriven at {shape.to_timestamp(entry.at_ms):%Y-%m-%d %H:%M:%S} by run "
            f"{entry.run_id} → {entry.landed}"
            + (f" ({entry.count} times)" if entry.count > 1 else "")
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
