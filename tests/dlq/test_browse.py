"""Listing, inspecting and exporting dead letters against a real broker."""

from __future__ import annotations

import io
import json

import pytest

from processors.dlq import DlqFilter, export_jsonl, get_dead_letter, list_dead_letters
from processors.dlq.browse import search_dead_letters
from processors.dlq.model import bytes_from_json
from processors.kafka import tail
from tests.dlq.conftest import dead_letter
from tests.dlq.support import group_ids

pytestmark = pytest.mark.kafka

T0 = 1_700_000_000_000


def test_list_is_newest_first_and_filtered(dlq_topics, write_dlq) -> None:
    settings = dlq_topics
    write_dlq([dead_letter(settings, order_id=f"o{i}", dlq_at=T0 + i) for i in range(60)])
    write_dlq(
        [dead_letter(settings, order_id="slow", reason="max_attempts_exhausted", dlq_at=T0 - 5)],
        partition=1,
    )

    newest = list_dead_letters(settings, limit=10)
    assert [d.order_id for d in newest] == [f"o{i}" for i in range(59, 49, -1)]

    [slow] = list_dead_letters(settings, DlqFilter(reason="max_attempts_exhausted"), 10)
    assert slow.order_id == "slow" and slow.partition == 1
    assert [d.order_id for d in list_dead_letters(settings, DlqFilter(order_id="o3"))] == ["o3"]
    window = DlqFilter(since_ms=T0 + 10, until_ms=T0 + 13)
    assert [d.order_id for d in list_dead_letters(settings, window)] == ["o12", "o11", "o10"]
    assert list_dead_letters(settings, DlqFilter(error_class="nope")) == []
    assert tail.TAIL_GROUP_ID not in group_ids(settings)


def test_search_is_bounded(dlq_topics, write_dlq) -> None:
    settings = dlq_topics
    write_dlq([dead_letter(settings, order_id="needle", dlq_at=T0)], partition=0)
    write_dlq(
        [dead_letter(settings, order_id=f"hay{i}", dlq_at=T0 + i) for i in range(400)], partition=0
    )

    found, complete = search_dead_letters(settings, DlqFilter(order_id="needle"), 5, max_scan=150)
    assert (found, complete) == ([], False)
    found, complete = search_dead_letters(settings, DlqFilter(order_id="needle"), 5, max_scan=None)
    assert [d.order_id for d in found] == ["needle"] and complete


def test_search_reads_at_most_max_scan_offsets(dlq_topics, write_dlq) -> None:
    settings = dlq_topics
    write_dlq([dead_letter(settings, order_id="needle", dlq_at=T0)], partition=0)
    for partition, count in ((0, 149), (1, 150), (2, 150)):
        hay = [dead_letter(settings, order_id=f"hay{partition}-{i}") for i in range(count)]
        write_dlq(hay, partition=partition)
    needle = DlqFilter(order_id="needle")

    def search(max_scan: int | None) -> tuple[list[str], bool, int]:
        covered: list[int] = []
        found, complete = search_dead_letters(
            settings, needle, 5, max_scan=max_scan, progress=covered.append
        )
        return [d.order_id for d in found], complete, sum(covered)

    # 250: less than the first page (100 per partition); 400: part of the second page.
    assert search(250) == ([], False, 250)
    assert search(400) == ([], False, 400)
    assert search(449)[1:] == (False, 449)  # one offset short of all 450
    assert search(450) == (["needle"], True, 450)
    assert search(None) == (["needle"], True, 450)


def test_get_by_location(dlq_topics, write_dlq) -> None:
    settings = dlq_topics
    write_dlq([dead_letter(settings, order_id=f"g{i}") for i in range(3)], partition=2)
    letter = get_dead_letter(settings, 2, 1)
    assert letter is not None and (letter.order_id, letter.ref) == (
        "g1",
        f"{settings.topic_dlq}:2:1",
    )
    assert get_dead_letter(settings, 2, 3) is None


def test_export_jsonl_round_trips_bytes(dlq_topics, write_dlq) -> None:
    settings = dlq_topics
    records = [dead_letter(settings, order_id=f"e{i}") for i in range(5)]
    records.append((b"poison", b"\xff\xfe\x00", [("x-dlq-reason", b"deserialization_failed")]))
    write_dlq(records, partition=0)
    out = io.StringIO()

    count = export_jsonl(settings, DlqFilter(), out)

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == len(lines) == 6
    exported = [
        (
            bytes_from_json(o, "key"),
            bytes_from_json(o, "value"),
            [(x["name"], bytes_from_json(x, "value")) for x in o["headers"]],
        )
        for o in lines
    ]
    assert exported == [(k, v, list(hs)) for k, v, hs in records]
    out = io.StringIO()
    assert export_jsonl(settings, DlqFilter(reason="deserialization_failed"), out) == 1
