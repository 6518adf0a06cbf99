"""The redrive ledger: entries (pure), and a redrive that moves instead of copying, against a
real broker — two runs in a row, ``--again``, dry runs, state filters, bad ledger entries."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from confluent_kafka import TopicPartition

from processors.cli import cli
from processors.core import headers as h
from processors.core.envelope import Record
from processors.dlq import DlqFilter, dlq_stats, read_ledger, replay
from processors.dlq.ledger import Redrive, build, parse_ref
from processors.kafka import clients
from tests.dlq.conftest import dead_letter
from tests.dlq.support import read_all, write
from tests.dlq.test_dlq_cli import env_of

ENTRY = Redrive("orders.dlq:1:5", "run1", 1_700_000_000_000, "orders.v1", 2, 9, 1)
MARKS = {0: (0, 10), 1: (3, 10)}


def record(key: bytes | None, value: bytes | None) -> Record:
    return Record("orders.dlq.redriven", 0, 0, 0, key, value, [])


# --- pure ----------------------------------------------------------------------------------------
def test_an_entry_round_trips() -> None:
    assert Redrive.decode(*ENTRY.encode()) == ENTRY
    assert ENTRY.landed == "orders.v1:2:9"
    assert parse_ref("a.b:c:1:2") == ("a.b:c", 1, 2)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"orders.dlq:1:5", b"not json"),
        (b"orders.dlq:1:5", b"[1, 2]"),
        (b"orders.dlq:1:5", b'{"run": "r", "at": "soon", "to": "t", "p": 0, "o": 0}'),
        (b"orders.dlq:1:5", b'{"run": 1, "at": 1, "to": "t", "p": 0, "o": 0}'),
        (b"orders.dlq:1:5", b'{"run": "r", "at": 1, "to": "t", "p": 0, "o": 0, "n": 0}'),
        (b"orders.dlq:x:5", ENTRY.encode()[1]),
        (b"\xff\xfe", ENTRY.encode()[1]),
        (None, ENTRY.encode()[1]),
    ],
)
def test_garbage_is_not_an_entry(key: bytes | None, value: bytes) -> None:
    assert Redrive.decode(key, value) is None


def test_build_keeps_the_latest_entry_and_counts_what_it_skips() -> None:
    other = Redrive("orders.dlq:0:1", "run2", 1, "orders.v1", 0, 0, 2)
    ledger = build(
        [
            record(*ENTRY.encode()),
            record(*other.encode()),
            record(b"orders.dlq:0:1", None),  # tombstone: forgotten
            record(*Redrive("orders.dlq:0:1", "run3", 2, "orders.v1", 0, 1).encode()),
            record(b"orders.dlq:0:2", b"\x00garbage"),
            record(None, b"no key"),
            record(*Redrive("orders.dlq:1:2", "r", 1, "t", 0, 0).encode()),  # below low: stale
            record(*Redrive("orders.dlq:0:10", "r", 1, "t", 0, 0).encode()),  # never existed
            record(*Redrive("orders.dlq:7:1", "r", 1, "t", 0, 0).encode()),  # no such partition
            record(*Redrive("other.dlq:0:1", "r", 1, "t", 0, 0).encode()),  # another DLQ
        ],
        "orders.dlq",
        MARKS,
    )
    assert set(ledger.entries) == {"orders.dlq:1:5", "orders.dlq:0:1"}
    assert ledger.get("orders.dlq:0:1").run_id == "run3"
    assert (ledger.garbage, ledger.stale, ledger.records) == (5, 1, 10)
    ledger.expire({0: (0, 10), 1: (6, 10)})
    assert "orders.dlq:1:5" not in ledger and ledger.stale == 2


# --- against a broker ----------------------------------------------------------------------------


@pytest.fixture
def cli_run(dlq_topics):
    env = env_of(dlq_topics) | {"COLUMNS": "250"}  # rich: room for every column

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["dlq", *args], env=env, catch_exceptions=False)

    return invoke


def replay_of(out) -> list[str]:
    return [dict(headers)[h.REPLAY_OF].decode() for *_, headers in out]


@pytest.mark.kafka
@pytest.mark.parametrize("guarantee", ["exactly-once", "at-least-once"])
def test_two_runs_in_a_row_move_each_dead_letter_once(
    dlq_topics, write_dlq, cli_run, guarantee, monkeypatch
) -> None:
    settings = dlq_topics
    monkeypatch.setenv("ORDERFLOW_PROCESSING_GUARANTEE", guarantee)
    write_dlq([dead_letter(settings, order_id=f"m{i:03d}") for i in range(200)])

    first = cli_run("replay", "--to", "original")
    assert first.exit_code == 0, first.output
    assert "replayed 200 of 200 selected" in first.output
    second = cli_run("replay", "--to", "original")
    assert second.exit_code == 0, second.output
    assert "replayed 0 of 200 selected" in second.output
    assert "skipped 200 already redriven" in second.output

    out = read_all(settings, settings.topic_main, 201, timeout_s=5)  # waits: catches extras
    assert len(out) == 200 and len(set(replay_of(out))) == 200
    ledger = read_ledger(settings)
    assert len(ledger) == 200 and {e.count for e in ledger.entries.values()} == {1}
    for partition, offset, _, _, headers in out:  # where the ledger says each one went
        entry = ledger.get(dict(headers)[h.REPLAY_OF].decode())
        assert (entry.target, entry.partition, entry.offset) == (
            settings.topic_main,
            partition,
            offset,
        )

    dry = cli_run("replay", "--dry-run")
    assert dry.exit_code == 0 and "would replay 0 of 200" in dry.output
    assert "would skip 200 already redriven" in dry.output


@pytest.mark.kafka
def test_again_redrives_on_purpose_counted_with_the_loop_guard(
    dlq_topics, write_dlq, cli_run
) -> None:
    settings = dlq_topics
    write_dlq([dead_letter(settings, order_id=f"a{i}") for i in range(10)], partition=0)
    write_dlq([dead_letter(settings, order_id="tired", replay_count=2)], partition=0)
    assert cli_run("replay").exit_code == 0

    again = cli_run("replay", "--again")
    assert again.exit_code == 3, again.output  # "tired" reached the loop guard's limit
    assert "replayed 10 of 11 selected" in again.output and "again 10;" in again.output
    assert "refused 1" in again.output
    out = read_all(settings, settings.topic_main, 22, timeout_s=5)
    assert len(out) == 21  # 11 + 10 copies made on purpose
    ledger = read_ledger(settings)
    assert sorted(e.count for e in ledger.entries.values()) == [1] + [2] * 10

    # A filter that names a dead letter redrives it again; a broad one does not.
    named = cli_run("replay", "--order-id", "a3")
    assert "replayed 1 of 1 selected" in named.output and "again 1;" in named.output
    broad = cli_run("replay", "--reason", "non_retryable")
    assert "replayed 0 of 11 selected" in broad.output and "skipped 11" in broad.output


@pytest.mark.kafka
def test_views_show_pending_and_redriven(dlq_topics, write_dlq, cli_run) -> None:
    settings = dlq_topics
    write_dlq([dead_letter(settings, order_id=f"v{i}") for i in range(6)], partition=1)
    report = replay(settings, DlqFilter(positions=frozenset({(1, 0), (1, 1)})), group=None)
    assert report.replayed == 2
    # the redriven v1 fails again: a new dead letter that names it
    relapse = dead_letter(
        settings, order_id="v1", extra=[(h.REPLAY_OF, f"{settings.topic_dlq}:1:1".encode())]
    )
    write_dlq([relapse], partition=1)

    stats = dlq_stats(settings)
    assert (stats.total, stats.pending, stats.redriven, stats.failed_again) == (7, 5, 2, 1)
    assert stats.by_run == {report.run_id: 2}
    only = dlq_stats(settings, DlqFilter(state="redriven"))
    assert (only.total, only.redriven) == (2, 2)

    shown = " ".join(cli_run("stats").output.split())  # as one line, however rich wraps it
    assert "5 pending (left to do), 2 redriven (1 of them dead-lettered again)" in shown
    listed = cli_run("list", "--state", "redriven")
    assert listed.exit_code == 0, listed.output
    assert "shown: 0 pending, 2 redriven" in listed.output
    assert f"run {report.run_id}" in listed.output
    assert "dead-lettered again 1:6" in listed.output
    pending = cli_run("list", "--state", "pending")
    assert "shown: 5 pending, 0 redriven" in pending.output


@pytest.mark.kafka
def test_garbage_and_expired_ledger_entries_are_skipped_and_counted(
    dlq_topics, write_dlq, cli_run
) -> None:
    settings = dlq_topics
    write_dlq([dead_letter(settings, order_id=f"g{i}") for i in range(4)], partition=2)
    assert replay(settings, DlqFilter(offset=0, partition=2), group=None).replayed == 1
    write(
        settings,
        settings.topic_redriven,
        [
            (b"rubbish", b"\xff\x00", []),
            (f"{settings.topic_dlq}:2:1".encode(), b"{not json", []),
            (f"{settings.topic_dlq}:2:99".encode(), ENTRY.encode()[1], []),
        ],  # (a keyless record cannot be written: a compacted topic refuses it)
    )
    # retention removes DLQ offsets 0..1 of partition 2 (the redriven one among them)
    admin = clients.admin_client(settings)
    futures = admin.delete_records([TopicPartition(settings.topic_dlq, 2, 2)])
    for future in futures.values():
        future.result(timeout=30)

    ledger = read_ledger(settings)
    assert (len(ledger), ledger.garbage, ledger.stale) == (0, 3, 1)
    stats = cli_run("stats")
    assert stats.exit_code == 0, stats.output
    shown = " ".join(stats.output.split())
    assert "2 pending" in shown
    assert "ledger entries skipped: 3 unreadable, 1 for dead letters retention removed" in shown
    assert cli_run("list").exit_code == 0
    again = replay(settings, DlqFilter(), group=None)
    assert (again.replayed, again.ledger_garbage, again.ledger_stale) == (2, 3, 1)
