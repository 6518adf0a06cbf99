"""Which dead letters a filter selects, and which offsets it needs to read (pure)."""

from __future__ import annotations

from dataclasses import fields

import pytest

from processors.core.envelope import Record
from processors.dlq.filters import DlqFilter
from processors.dlq.model import REPLAY_HEADERS, DeadLetter
from tests.dlq.conftest import dead_letter
from tests.dlq.test_model import SETTINGS


def letter(order_id: str = "ord-1", partition: int = 0, offset: int = 5, **kw) -> DeadLetter:
    key, value, headers = dead_letter(SETTINGS, order_id=order_id, **kw)
    return DeadLetter.from_record(Record("o.dlq", partition, offset, 1, key, value, headers))


@pytest.mark.parametrize(
    ("flt", "selected"),
    [
        (DlqFilter(), True),
        (DlqFilter(reason="non_retryable"), True),
        (DlqFilter(reason="max_attempts_exhausted"), False),
        (DlqFilter(error_class="paymentdeclined"), True),
        (DlqFilter(error_class="Timeout"), False),
        (DlqFilter(error_category="permanent"), True),
        (DlqFilter(order_id="ord-1"), True),
        (DlqFilter(order_id="ord-2"), False),
        (DlqFilter(since_ms=1_700_000_000_000), True),
        (DlqFilter(since_ms=1_700_000_000_001), False),
        (DlqFilter(until_ms=1_700_000_000_000), False),
        (DlqFilter(until_ms=1_700_000_000_001), True),
        (DlqFilter(partition=0, offset=5), True),
        (DlqFilter(partition=1), False),
        (DlqFilter(offset=6), False),
        (DlqFilter(positions=frozenset({(0, 5), (2, 1)})), True),
        (DlqFilter(positions=frozenset({(0, 6)})), False),
        (DlqFilter(reason="non_retryable", order_id="ord-2"), False),
    ],
)
def test_matches(flt: DlqFilter, selected: bool) -> None:
    assert flt.matches(letter()) is selected
    # A replay decodes only REPLAY_HEADERS when the filter reads no context: same answer.
    key, value, headers = dead_letter(SETTINGS, order_id="ord-1")
    only = None if flt.reads_content else REPLAY_HEADERS
    light = DeadLetter.from_record(Record("o.dlq", 0, 5, 1, key, value, headers), only)
    assert flt.matches(light) is selected


def test_every_field_that_reads_context_says_so() -> None:
    context = {"reason", "error_class", "error_category", "order_id", "since_ms", "until_ms"}
    location = {"partition", "offset", "positions", "state"}
    assert context | location == {f.name for f in fields(DlqFilter)}  # a new field: decide
    for name in context:
        assert DlqFilter(**{name: 1}).reads_content
    assert not DlqFilter(partition=0, offset=1, state="pending").reads_content


def test_ranges_narrow_to_locations() -> None:
    marks = {0: (0, 100), 1: (10, 20), 2: (0, 0)}
    assert DlqFilter(reason="x").ranges(marks) == {0: (0, 100), 1: (10, 20)}
    assert DlqFilter(partition=1).ranges(marks) == {1: (10, 20)}
    assert DlqFilter(partition=0, offset=42).ranges(marks) == {0: (42, 43)}
    assert DlqFilter(offset=15).ranges(marks) == {0: (15, 16), 1: (15, 16)}
    assert DlqFilter(offset=5).ranges(marks) == {0: (5, 6)}
    assert DlqFilter(offset=500).ranges(marks) == {}
    positions = frozenset({(0, 3), (0, 9), (1, 12)})
    assert DlqFilter(positions=positions).ranges(marks) == {0: (3, 10), 1: (12, 13)}


def test_describe_and_fingerprint() -> None:
    assert DlqFilter().describe() == "all"
    flt = DlqFilter(reason="non_retryable", positions=frozenset({(1, 2), (0, 3)}))
    assert flt.describe() == "reason=non_retryable positions=0:3,1:2"
    assert (
        flt.fingerprint()
        == DlqFilter(reason="non_retryable", positions=frozenset({(0, 3), (1, 2)})).fingerprint()
    )
    assert DlqFilter(reason="a").fingerprint() != DlqFilter(reason="b").fingerprint()
