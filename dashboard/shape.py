"""Pure shaping: records, totals and lags in; small frames and numbers for the pages out.

No Kafka, no Streamlit, no clock: every function that needs "now" takes ``now_ms``. Records are
envelopes (``processors.core.envelope.Record``), so tests feed canned records. Nothing here
raises on a record's bytes: display decoding is bounded (``processors.core.display``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from processors.core import display
from processors.core import headers as h
from processors.core.envelope import Record

# A table cell shows at most this many characters of a key, value or header list.
CELL_LIMIT = 2_000


# --- bytes for people ---------------------------------------------------------------------------
def as_text(raw: bytes | str | None) -> str:
    """Bytes as text for display; invalid UTF-8 shows as ``\\x..`` escapes, ``None`` as ''."""
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    return raw.decode("utf-8", errors="backslashreplace")


def cell(text: str, limit: int = CELL_LIMIT) -> str:
    """``text`` cut to ``limit`` characters for a table cell (the detail view shows it all)."""
    return text if len(text) <= limit else text[:limit] + f"… ({len(text):,} characters)"


def pretty_json(raw: bytes | str | None) -> str:
    """Indented JSON when the value parses safely, else the text, hex or base64 as it is
    (poison stays visible; see ``processors.core.display``). Never raises."""
    return display.show(raw.encode("utf-8") if isinstance(raw, str) else raw).text


def age_text(age_ms: int | None) -> str:
    """``42s``, ``3m 05s``, ``2h 10m``, ``4d 03h``; negative ages (clock skew) show as ``0s``."""
    if age_ms is None:
        return ""
    seconds = max(0, age_ms // 1000)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def to_timestamp(ms: int | None) -> pd.Timestamp | None:
    """Epoch milliseconds as a UTC timestamp; ``None`` and non-positive values as ``None``."""
    if ms is None or ms <= 0:
        return None
    try:
        return pd.Timestamp(ms, unit="ms", tz="UTC")
    except (OverflowError, ValueError):  # a garbage header past the year 2262
        return None


# --- topic browser ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordFilter:
    """What the topic browser keeps. Empty/None fields keep everything."""

    key_contains: str = ""
    partitions: frozenset[int] = frozenset()
    since_ms: int | None = None
    until_ms: int | None = None

    def keeps(self, record: Record) -> bool:
        if self.key_contains and self.key_contains not in as_text(record.key):
            return False
        if self.partitions and record.partition not in self.partitions:
            return False
        if self.since_ms is not None and record.timestamp_ms < self.since_ms:
            return False
        return self.until_ms is None or record.timestamp_ms <= self.until_ms


def filter_records(records: Iterable[Record], flt: RecordFilter) -> list[Record]:
    return [record for record in records if flt.keeps(record)]


RECORD_COLUMNS = ["topic", "partition", "offset", "time", "key", "value", "headers"]


def records_frame(records: Iterable[Record]) -> pd.DataFrame:
    """One row per record, newest first: headers decoded to a JSON object of text values."""
    rows = [
        {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "time": to_timestamp(record.timestamp_ms),
            "key": cell(as_text(record.key)),
            "value": cell(as_text(record.value)),
            # Each value cut, not the whole: the cell stays valid JSON for the JSON column.
            "headers": json.dumps(
                {
                    k: None if v is None else cell(v, 200)
                    for k, v in h.decoded_text(record.headers).items()
                },
                ensure_ascii=False,
            ),
        }
        for record in records
    ]
    frame = pd.DataFrame(rows, columns=RECORD_COLUMNS)
    if frame.empty:
        return frame
    return frame.sort_values(["time", "offset"], ascending=False, ignore_index=True)


HEADER_COLUMNS = ["name", "value", "bytes"]


def headers_frame(headers: Sequence[tuple[str, bytes | None]]) -> pd.DataFrame:
    """Every header in order, repeated names and null values included, as text cells."""
    rows = [
        {
            "name": cell(name, 200),
            "value": "(null)" if value is None else cell(as_text(value)),
            "bytes": None if value is None else len(value),
        }
        for name, value in headers
    ]
    return pd.DataFrame(rows, columns=HEADER_COLUMNS).astype({"bytes": "Int64"})


# --- overview -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    """One box of the flow diagram: its label, topic and record count (``None`` = unknown)."""

    label: str
    topic: str
    count: int | None


def flow_stages(topics: Mapping[str, str], totals: Mapping[str, int]) -> list[Stage]:
    """The flow main → retry → DLQ → processed, in that order, from ``label → topic`` and totals.

    Labels whose topic is empty (e.g. the outcome record disabled) are left out.
    """
    return [
        Stage(label, topic, totals.get(topic))
        for label, topic in topics.items()
        if topic  # an empty name disables that topic
    ]


Marks = Mapping[str, Mapping[int, tuple[int, int]]]
Ranges = dict[str, dict[int, tuple[int, int]]]


@dataclass
class _Counted:
    low: int  # the low watermark the count starts at
    high: int  # offsets below this are counted
    records: int


@dataclass
class RecordCounts:
    """Exact record counts per topic, kept up to date a little at a time.

    Watermarks count offsets, and offsets include transaction commit markers (one per partition
    per transaction), so a topic written in exactly-once mode can show twice its records. Each
    refresh counts only the offsets that are new since the previous one, and at most ``budget``
    of them, so a refresh never reads more than ``budget`` records however large the topics.
    A partition whose new offsets exceed the budget, or whose low watermark moved (retention),
    is shown as an offset-based estimate (``exact=False``) from then on.
    """

    budget: int = 2_000
    _known: dict[tuple[str, int], _Counted] = field(default_factory=dict)
    _estimated: set[tuple[str, int]] = field(default_factory=set)

    def plan(self, marks: Marks) -> Ranges:
        """The ``{topic: {partition: (start, end)}}`` ranges to count now."""
        left = self.budget
        plan: Ranges = {}
        for topic, parts in marks.items():
            for partition, (low, high) in parts.items():
                slot = (topic, partition)
                known = self._known.get(slot)
                if known is not None and (high < known.high or low != known.low):
                    del self._known[slot]  # recreated, or retention removed records
                    if high >= known.high:
                        self._estimated.add(slot)
                    known = None
                if slot in self._estimated:
                    continue
                start = low if known is None else known.high
                if start >= high:
                    continue
                if high - start > left:
                    self._estimated.add(slot)
                    self._known.pop(slot, None)
                    continue
                left -= high - start
                plan.setdefault(topic, {})[partition] = (start, high)
        return plan

    def apply(
        self, marks: Marks, plan: Ranges, counted: Mapping[str, Mapping[int, int] | None]
    ) -> dict[str, tuple[int, bool]]:
        """Fold in the counts of ``plan`` (``None`` for a topic whose count failed) and return
        ``{topic: (records, exact)}``. A failed count is retried on the next refresh."""
        totals: dict[str, tuple[int, bool]] = {}
        for topic, parts in marks.items():
            records, exact = 0, True
            for partition, (low, high) in parts.items():
                slot = (topic, partition)
                known = self._known.get(slot)
                planned = plan.get(topic, {}).get(partition)
                got = (counted.get(topic) or {}).get(partition)
                if slot in self._estimated:
                    records, exact = records + (high - low), False
                elif planned is not None and got is not None:
                    base = 0 if known is None else known.records
                    self._known[slot] = _Counted(low, planned[1], base + got)
                    records += base + got
                elif planned is not None:  # the count failed: estimate this time only
                    base = 0 if known is None else known.records
                    records, exact = records + base + (high - planned[0]), False
                elif known is not None:
                    records += known.records
            totals[topic] = (records, exact)
        return totals


@dataclass
class History:
    """A rolling series of ``(t_ms, totals)`` samples; keeps at most ``keep`` of them."""

    keep: int = 120
    samples: list[tuple[int, dict[str, int]]] = field(default_factory=list)

    def push(self, t_ms: int, totals: Mapping[str, int]) -> None:
        """Append a sample; a sample not newer than the last one replaces it."""
        if self.samples and t_ms <= self.samples[-1][0]:
            self.samples[-1] = (self.samples[-1][0], dict(totals))
        else:
            self.samples.append((t_ms, dict(totals)))
        del self.samples[: -self.keep]


_EDGES = (
    ("main", "processed", "ok"),
    ("main", "retry", "transient"),
    ("main", "DLQ", "permanent"),
    ("retry", "processed", "ok"),
    ("retry", "retry", "again"),
    ("retry", "DLQ", "exhausted"),
)


def flow_dot(stages: Sequence[Stage]) -> str:
    """Graphviz DOT of the flow with each stage's topic and count; a non-empty DLQ is red."""
    present = {stage.label for stage in stages}
    lines = [
        "digraph flow {",
        "  rankdir=LR; bgcolor=transparent;",
        '  node [shape=box style="rounded,filled" fontname="sans-serif" fillcolor="#eef3fb"];',
        '  edge [fontname="sans-serif" fontsize=10 color="#6b7a90"];',
    ]
    for stage in stages:
        count = "?" if stage.count is None else f"{stage.count:,}"
        fill = "#fde2e1" if stage.label == "DLQ" and stage.count else "#eef3fb"
        label = f"{stage.label}\\n{stage.topic}\\n{count}"
        lines.append(f'  "{stage.label}" [label="{label}" fillcolor="{fill}"];')
    for source, target, text in _EDGES:
        if source in present and target in present:
            lines.append(f'  "{source}" -> "{target}" [label="{text}"];')
    lines.append("}")
    return "\n".join(lines)


def totals_frame(history: History) -> pd.DataFrame:
    """Long form ``time, topic, records`` for a line chart of totals over time."""
    rows = [
        {"time": to_timestamp(t_ms), "topic": topic, "records": count}
        for t_ms, totals in history.samples
        for topic, count in totals.items()
    ]
    return pd.DataFrame(rows, columns=["time", "topic", "records"])


def throughput_frame(history: History) -> pd.DataFrame:
    """Long form ``time, topic, per_second``: delta of totals over the time between samples.

    A total that went down (retention deleted records, topic recreated) counts as 0, not as a
    negative rate. Needs two samples; returns an empty frame before that.
    """
    rows = []
    for (t0, before), (t1, after) in zip(history.samples, history.samples[1:], strict=False):
        seconds = (t1 - t0) / 1000
        for topic, count in after.items():
            if topic not in before:
                continue
            delta = max(0, count - before[topic])
            rows.append(
                {"time": to_timestamp(t1), "topic": topic, "per_second": round(delta / seconds, 2)}
            )
    return pd.DataFrame(rows, columns=["time", "topic", "per_second"])


def reason_counts(records: Iterable[Record]) -> pd.DataFrame:
    """Dead letters by ``x-dlq-reason`` (missing → ``unknown``), most frequent first."""
    counter: Counter[str] = Counter()
    for record in records:
        reason = h.known(h.decode(record.headers).dlq_reason)
        counter[cell(reason, 200) if reason else "unknown"] += 1
    rows = [{"reason": reason, "count": count} for reason, count in counter.most_common()]
    return pd.DataFrame(rows, columns=["reason", "count"])


# --- order trace --------------------------------------------------------------------------------
TIMELINE_COLUMNS = ["time", "stage", "topic", "partition", "offset", "attempts", "detail"]


def _detail(record: Record, contract: h.Contract) -> str:
    text = {name: as_text(raw) for name, raw in record.headers}  # last occurrence wins
    parts: list[str] = []
    if h.DLQ_REASON in text:
        parts.append(f"dead-lettered: {text[h.DLQ_REASON]}")
    if h.ERROR_CLASS in text:
        parts.append(f"{text[h.ERROR_CLASS]}: {text.get(h.ERROR_MESSAGE, '')}".rstrip(": "))
    if h.RETRY_DUE_AT in text and h.DLQ_REASON not in text:
        due = to_timestamp(h.known(contract.due_at))
        if due is not None:
            parts.append(f"retry due {due:%H:%M:%S.%f}"[:-3])
    if h.REPLAY_OF in text:
        parts.append(f"replay #{text.get(h.REPLAY_COUNT, '?')} of {text[h.REPLAY_OF]}")
    if not parts and record.value is not None:
        parts.append(as_text(record.value[:800]))
    return cell("; ".join(parts), 400)


def timeline_frame(records: Iterable[Record], stages: Mapping[str, str]) -> pd.DataFrame:
    """An order's journey, oldest first. ``stages`` maps topic → stage label."""
    rows = []
    for record in records:
        contract = h.decode(record.headers)
        rows.append(
            {
                "time": to_timestamp(record.timestamp_ms),
                "stage": stages.get(record.topic, record.topic),
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "attempts": h.known(contract.attempts),
                "detail": _detail(record, contract),
            }
        )
    frame = pd.DataFrame(rows, columns=TIMELINE_COLUMNS).astype({"attempts": "Int64"})
    if frame.empty:
        return frame
    return frame.sort_values(["time", "offset"], ignore_index=True)


def final_stage(timeline: pd.DataFrame) -> str | None:
    """The stage of the newest record of a journey, or ``None`` for an empty one."""
    if timeline.empty:
        return None
    return str(timeline.iloc[-1]["stage"])


def lag_frame(lags: Iterable[tuple[str, str, Mapping[int, int]]]) -> pd.DataFrame:
    """``group, topic, partition, lag`` rows from ``(group, topic, {partition: lag})`` triples."""
    rows = [
        {"group": group, "topic": topic, "partition": partition, "lag": lag}
        for group, topic, per_partition in lags
        for partition, lag in sorted(per_partition.items())
    ]
    return pd.DataFrame(rows, columns=["group", "topic", "partition", "lag"])


# --- DLQ ----------------------------------------------------------------------------------------
DEAD_LETTER_COLUMNS = [
    "order_id",
    "reason",
    "error_class",
    "error_message",
    "attempts",
    "first_failure",
    "last_failure",
    "age",
    "replays",
    "partition",
    "offset",
]


class DeadLetterLike(Protocol):
    partition: int
    offset: int
    timestamp_ms: int
    order_id: str | None
    reason: str | None
    error_class: str | None
    error_message: str | None
    attempts: int | None
    first_failure_at: int | None
    last_failure_at: int | None
    replay_count: int | None

    def age_ms(self, now_ms: int) -> int: ...


def dead_letter_frame(letters: Sequence[DeadLetterLike], now_ms: int) -> pd.DataFrame:
    """One row per dead letter, in the given order (row i is ``letters[i]``, for selections).

    The error class is shortened to its last dotted name; the full one is in the detail view.
    """
    rows = [
        {
            "order_id": letter.order_id or "",
            "reason": letter.reason or "unknown",
            "error_class": (letter.error_class or "").rsplit(".", 1)[-1],
            "error_message": letter.error_message or "",
            "attempts": letter.attempts,
            "first_failure": to_timestamp(letter.first_failure_at),
            "last_failure": to_timestamp(letter.last_failure_at or letter.timestamp_ms),
            "age": age_text(letter.age_ms(now_ms)),
            "replays": letter.replay_count,
            "partition": letter.partition,
            "offset": letter.offset,
        }
        for letter in letters
    ]
    return pd.DataFrame(rows, columns=DEAD_LETTER_COLUMNS).astype(
        {"attempts": "Int64", "replays": "Int64"}
    )


def dead_letter_context(letter: Any, now_ms: int) -> pd.DataFrame:
    """``field, value`` rows: what an operator reads about one dead letter, all as text cells
    (record content is never rendered as markup)."""

    def text(value: object) -> str:
        return "-" if value is None else cell(str(value), 4_000)

    when = to_timestamp
    rows = [
        ("dead letter", letter.ref),
        ("order id", letter.order_id),
        ("reason", letter.reason),
        ("error class", letter.error_class),
        ("error message", letter.error_message),
        ("error category", letter.error_category),
        ("attempts", f"{text(letter.attempts)} of {text(letter.max_attempts)}"),
        ("first failure", when(letter.first_failure_at)),
        ("last failure", when(letter.last_failure_at)),
        ("age", age_text(letter.age_ms(now_ms))),
        ("replays", f"{text(letter.replay_count)} (of {text(letter.replay_of)})"),
        (
            "original",
            f"{text(letter.original_topic)}:{text(letter.original_partition)}:"
            f"{text(letter.original_offset)}",
        ),
        ("processor", letter.processor),
        ("consumer group", letter.consumer_group),
        ("event id", letter.event_id),
        ("traceparent", letter.traceparent),
    ]
    return pd.DataFrame(
        [{"field": k, "value": text(v)} for k, v in rows], columns=["field", "value"]
    )


class ReplayReportLike(Protocol):
    replayed: int
    failed: int
    refused: list[tuple[str, str]]
    refused_count: int
    errors: list[str]
    targets: dict[str, int]


def replay_outcome(report: ReplayReportLike, what: str = "dead letter(s)") -> tuple[str, str]:
    """``("ok" | "warn", text)`` summing up a replay: where records went, what was refused."""
    sent = ", ".join(f"{n} to {topic}" for topic, n in sorted(report.targets.items()))
    parts = [f"Replayed {report.replayed} {what}" + (f" ({sent})" if sent else "") + "."]
    if report.refused_count:
        reasons = "; ".join(f"{ref}: {why}" for ref, why in report.refused[:5])
        parts.append(f"Refused {report.refused_count}: {reasons}.")
    if report.failed or report.errors:
        parts.append(f"Failed {report.failed}: {'; '.join(report.errors[:5])}.")
    ok = report.replayed > 0 and not report.refused_count and not report.failed
    return ("ok" if ok else "warn"), " ".join(parts)


class RedriveLike(Protocol):
    run_id: str
    at_ms: int
    landed: str
    count: int


class LedgerLike(Protocol):
    def get(self, ref: str) -> RedriveLike | None: ...


def with_redrive_state(
    frame: pd.DataFrame, refs: Sequence[str], ledger: LedgerLike
) -> pd.DataFrame:
    """``frame`` (from ``dead_letter_frame``; row i is dead letter ``refs[i]``) with each row's
    redrive ``state`` (``pending``: never redriven; ``redriven``) and ``redriven`` (when,
    which run, where the new record went) after the reason."""
    entries = [ledger.get(ref) for ref in refs]
    frame = frame.copy()
    at = frame.columns.get_loc("reason") + 1
    frame.insert(at, "state", ["pending" if e is None else "redriven" for e in entries])
    frame.insert(
        at + 1,
        "redriven",
        [
            ""
            if e is None
            else f"{to_timestamp(e.at_ms):%Y-%m-%d %H:%M:%S} · run {e.run_id} → {e.landed}"
            + (f" (×{e.count})" if e.count > 1 else "")
            for e in entries
        ],
    )
    return frame
