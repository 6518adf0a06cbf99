from __future__ import annotations

import random

import pytest

from processors.core.progress import METADATA_BUDGET, PartitionProgress, decode, encode


def test_example_from_the_docstring() -> None:
    assert encode(1000, 1500, {1000, 1003, 1004, 1200}) == "o1:dw:0,3-4,5k"
    snapshot = decode(1000, "o1:dw:0,3-4,5k")
    assert snapshot is not None
    assert snapshot.read_upto == 1500
    assert snapshot.pending == {1000, 1003, 1004, 1200}


def test_nothing_above_the_committed_offset() -> None:
    assert encode(10, 10, []) == ""
    assert decode(10, "") is None


@pytest.mark.parametrize(
    "garbage",
    ["x", "o2:1:0", "o1:zz", "o1:5:9", "o1:5:3-1", "o1:0:", "o1:-1:", "o1:5:a-", "o1:5:!"],
)
def test_garbage_metadata_decodes_to_none(garbage: str) -> None:
    assert decode(100, garbage) is None


def test_out_of_order_finish_and_position() -> None:
    progress = PartitionProgress(committed=None)
    assert progress.position() is None
    for offset in (5, 6, 8, 9):  # 7 is a transaction marker: never delivered
        assert progress.admit(offset)
    assert progress.position() == 5
    progress.finish(6)
    progress.finish(9)
    assert progress.position() == 5
    assert progress.metadata() == encode(5, 10, {5, 8})
    progress.finish(5)
    assert progress.position() == 8
    progress.finish(8)
    assert progress.position() == 10
    assert progress.metadata() == ""


def test_restart_skips_finished_offsets_and_keeps_pending_ones() -> None:
    before = PartitionProgress(committed=0)
    for offset in range(0, 20):
        before.admit(offset)
    for offset in range(0, 20):
        if offset not in (3, 11, 12):
            before.finish(offset)
    committed, metadata = before.position(), before.metadata()
    assert committed == 3

    after = PartitionProgress(committed=committed, metadata=metadata)
    assert after.restored_pending == 3
    delivered = [o for o in range(committed, 25) if after.admit(o)]
    assert delivered == [3, 11, 12, 20, 21, 22, 23, 24]
    assert after.position() == 3


def test_restored_pending_counts_before_it_is_redelivered() -> None:
    progress = PartitionProgress(committed=100, metadata=encode(100, 200, {100, 150}))
    assert progress.position() == 100
    progress.admit(100)
    progress.finish(100)
    # 150 is known pending although not re-read yet: the commit must not pass it
    assert progress.position() == 150
    assert decode(150, progress.metadata()).read_upto == 200


def test_offsets_below_the_committed_one_are_finished() -> None:
    progress = PartitionProgress(committed=50)
    assert not progress.admit(49)
    assert progress.admit(50)


def test_corrupt_metadata_means_no_skipping() -> None:
    progress = PartitionProgress(committed=7, metadata="not ours")
    assert all(progress.admit(o) for o in range(7, 12))


def test_worst_case_size_fits_the_budget() -> None:
    """500 pending, scattered over a window of 10 million offsets: still under the budget."""
    rng = random.Random(3)
    committed = 123_456_789_000
    pending = {committed} | {committed + rng.randrange(1, 10_000_000, 2) for _ in range(499)}
    metadata = encode(committed, committed + 10_000_000, pending)
    assert len(metadata.encode()) < METADATA_BUDGET
    assert decode(committed, metadata).pending == pending


def test_roundtrip_random() -> None:
    rng = random.Random(7)
    for _ in range(200):
        committed = rng.randrange(0, 10**9)
        span = rng.randrange(1, 5000)
        pending = {committed} | {committed + rng.randrange(span) for _ in range(rng.randrange(50))}
        snapshot = decode(committed, encode(committed, committed + span, pending))
        assert snapshot is not None
        assert (snapshot.read_upto, snapshot.pending) == (committed + span, pending)
