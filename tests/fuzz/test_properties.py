"""Property tests: for any bytes and any headers, the codec, the envelope, display decoding, the
DLQ model and the dashboard's shaping never raise, and what is encoded decodes back.

``make fuzz`` runs them with many examples (``--hypothesis-profile=fuzz``); the suite runs the
``ci`` profile (see tests/conftest.py).
"""

from __future__ import annotations

import json
import string

from hypothesis import given
from hypothesis import strategies as st

from dashboard import shape
from processors.core import display
from processors.core import headers as h
from processors.core.envelope import Record, from_message
from processors.core.policy import RetryPolicy
from processors.core.routing import Identity, Route
from processors.dlq.model import DeadLetter, bytes_from_json
from processors.dlq.rewrite import replay_headers
from processors.handler import handle_order
from processors.metrics import Metrics
from processors.pipeline import GuardedStep, Topics

CONTRACT = sorted(h.KINDS)
names = st.one_of(st.sampled_from(CONTRACT), st.text(max_size=20))
values = st.one_of(st.none(), st.binary(max_size=64), st.sampled_from([b"", b"1", b"-0", b" 7 "]))
header_lists = st.lists(st.tuples(names, values), max_size=12)
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
texts = st.text(max_size=300)


def _json_leaves() -> st.SearchStrategy:
    return st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
    )


documents = st.recursive(
    _json_leaves(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
payloads = st.one_of(
    st.none(),
    st.binary(max_size=300),
    documents.map(lambda d: json.dumps(d).encode()),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
    st.sampled_from([b"\xef\xbb\xbf{}", b"NaN", b'{"a":1,"a":2}', b"9" * 5000]),
)


class FakeMessage:
    """What confluent-kafka's ``Message`` returns from its accessors (it cannot be built)."""

    def __init__(self, key, value, headers) -> None:
        self._key, self._value, self._headers = key, value, headers

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 9

    def timestamp(self) -> tuple[int, int]:
        return (1, 1234)

    def key(self):
        return self._key

    def value(self):
        return self._value

    def headers(self):
        return self._headers


@given(header_lists)
def test_decode_never_raises_and_is_typed(headers) -> None:
    contract = h.decode(headers)
    for field in contract._fields:
        value = getattr(contract, field)
        assert value is None or value is h.INVALID or isinstance(value, int | str)


@given(
    st.fixed_dictionaries(
        {},
        optional={name: (ints if kind == h.INT else texts) for name, kind in h.KINDS.items()},
    )
)
def test_encode_then_decode_round_trips(values) -> None:
    encoded = h.encode(values)
    decoded = {name: h.decode_value(name, raw) for name, raw in encoded.items()}
    for name, value in values.items():
        if h.KINDS[name] == h.INT:
            assert decoded[name] == value
        else:  # text: cut to the limit on a character boundary, never altered otherwise
            got = decoded[name]
            assert isinstance(got, str)
            if len(value.encode()) <= h.ERROR_MESSAGE_LIMIT:
                assert got == value
            elif h.KINDS[name] == h.TEXT:
                assert value.startswith(got)


@given(header_lists, st.dictionaries(st.sampled_from(CONTRACT), st.none() | st.binary(max_size=8)))
def test_rewrite_keeps_foreign_headers_byte_for_byte(headers, updates) -> None:
    out = h.rewrite(headers, updates)
    assert [hd for hd in out if hd[0] not in updates] == [
        hd for hd in headers if hd[0] not in updates
    ]
    for name, value in updates.items():
        assert [v for n, v in out if n == name] == ([] if value is None else [value])


@given(st.none() | st.binary(max_size=40) | st.text(max_size=10), payloads, header_lists)
def test_envelope_from_message_is_lossless(key, value, headers) -> None:
    record = from_message(FakeMessage(key, value, headers))
    assert record.headers == tuple(headers)  # null values, repeated names and order kept
    assert record.value == value
    assert record.key == (key.encode() if isinstance(key, str) else key)
    assert isinstance(record.headers, tuple)
    assert Record(*[getattr(record, f) for f in Record.__slots__]) == record


@given(payloads)
def test_display_never_raises_and_is_bounded(raw) -> None:
    shown = display.show(raw)
    assert len(shown.text) <= display.SHOW_LIMIT * 4 // 3 + 100
    if shown.kind == "json":
        assert shown.note is None or "showing the first" in shown.note
    else:
        assert shown.note  # why it is not shown as JSON, in one line
        assert "\n" not in shown.note


@given(st.none() | st.binary(max_size=40), payloads, header_lists)
def test_dead_letter_and_its_readers_never_raise(key, value, headers) -> None:
    letter = DeadLetter.from_record(Record("o.dlq", 0, 5, 1000, key, value, headers))
    exported = json.loads(json.dumps(letter.to_json()))
    assert bytes_from_json(exported, "value") == value
    assert bytes_from_json(exported, "key") == key
    assert [(x["name"], bytes_from_json(x, "value")) for x in exported["headers"]] == headers
    letter.replay_refusal()
    assert letter.payload.text is not None
    shape.dead_letter_frame([letter], 5000)
    replayed = replay_headers(
        letter.headers,
        replay_of=letter.ref,
        replay_count=letter.replay_count,
        now_ms=1,
        target="original",
    )
    foreign = [hd for hd in headers if hd[0] not in h.KINDS]
    assert [hd for hd in replayed if hd[0] not in h.KINDS] == foreign


@given(st.lists(st.tuples(st.none() | st.binary(max_size=20), payloads, header_lists), max_size=5))
def test_shaping_functions_never_raise(items) -> None:
    records = [Record("orders.dlq", 0, i, 1000 + i, k, v, hs) for i, (k, v, hs) in enumerate(items)]
    for cell in shape.records_frame(records)["headers"]:
        json.loads(cell)  # the JSON column's cells stay JSON, however long the headers
    shape.reason_counts(records)
    shape.timeline_frame(records, {"orders.dlq": "DLQ"})
    shape.filter_records(records, shape.RecordFilter(key_contains=string.ascii_letters[:2]))
    for record in records:
        shape.pretty_json(record.value)


@given(st.none() | st.binary(max_size=20), payloads, header_lists, st.booleans())
def test_the_guarded_step_routes_any_record_and_keeps_its_bytes(
    key, value, headers, first_hop
) -> None:
    step = GuardedStep(
        handler=handle_order,
        policy=RetryPolicy(jitter=0.0),
        identity=Identity("orderflow-main", "0.1.0", "fuzz", "g"),
        topics=Topics(retry="r", dlq="d", processed="p"),
        first_hop=first_hop,
        metrics=Metrics("main"),
        clock_ms=lambda: 2_000_000_000_000,
        rand=lambda: 0.5,
    )
    result = step(Record("orders.v1", 0, 3, 1_000, key, value, headers))
    out = result.output
    assert out is not None
    if result.decision.route is not Route.PROCESSED:
        assert (out.key, out.value) == (key, value)
        foreign = [hd for hd in headers if hd[0] not in h.KINDS]
        assert [hd for hd in out.headers if hd[0] not in h.KINDS] == foreign
