"""``orderflow dlq …`` end to end against a real broker, including a replay killed with -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from processors.cli import cli
from processors.core import headers as h
from processors.dlq.ledger import read_ledger
from processors.kafka import tail
from tests.dlq.conftest import dead_letter
from tests.dlq.support import committed, read_all

pytestmark = pytest.mark.kafka

ORDERFLOW = [sys.executable, "-c", "from processors.cli import main; main()"]
ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000_000


def env_of(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env |= {
        "ORDERFLOW_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "ORDERFLOW_TOPIC_MAIN": settings.topic_main,
        "ORDERFLOW_TOPIC_RETRY": settings.topic_retry,
        "ORDERFLOW_TOPIC_DLQ": settings.topic_dlq,
        "ORDERFLOW_TOPIC_PROCESSED": settings.topic_processed,
        "ORDERFLOW_TOPIC_REDRIVEN": settings.topic_redriven,
        "ORDERFLOW_PROCESSING_GUARANTEE": settings.processing_guarantee,
        "PYTHONPATH": str(ROOT),
    }
    return env


@pytest.fixture
def run(dlq_topics):
    env = env_of(dlq_topics)

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["dlq", *args], env=env, catch_exceptions=False)

    return invoke


def test_stats_list_inspect_export(run, dlq_topics, write_dlq, tmp_path) -> None:
    settings = dlq_topics
    write_dlq(
        [dead_letter(settings, order_id=f"o{i}", dlq_at=T0 + i) for i in range(4)]
        + [dead_letter(settings, order_id="late", reason="max_attempts_exhausted", dlq_at=T0 + 9)],
        partition=0,
    )
    write_dlq([(b"bad", b"\xff\xfe", [(h.DLQ_REASON, b"deserialization_failed")])], partition=1)

    result = run("stats")
    assert result.exit_code == 0, result.output
    assert "6 dead letters" in result.output
    assert "non_retryable" in result.output and "deserialization_failed" in result.output

    result = run("list", "--limit", "3")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    assert "bad" in rows[0] and "late" in rows[1] and "o3" in rows[2] and len(rows) == 3

    result = run("list", "--reason", "max_attempts_exhausted", "--since", "2023-11-14T22:13:20Z")
    assert "late" in result.output and "o1" not in result.output

    result = run("inspect", "0:4")
    assert result.exit_code == 0, result.output
    for text in ("late", "max_attempts_exhausted", "PaymentDeclined", "Traceback", h.TRACEPARENT):
        assert text in result.output
    result = run("inspect", "--json", "1:0")
    assert json.loads(result.output)["value_b64"] == "//4="
    assert run("inspect", "1:99").exit_code == 1

    out = tmp_path / "dlq.jsonl"
    result = run("export", "--reason", "non_retryable", "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["o0", "o1", "o2", "o3"]


def test_replay_dry_run_then_real(run, dlq_topics, write_dlq) -> None:
    settings = dlq_topics
    write_dlq([dead_letter(settings, order_id=f"d{i}") for i in range(5)])
    write_dlq([dead_letter(settings, order_id="loop", replay_count=3)])

    result = run("replay", "--dry-run")
    assert result.exit_code == 3, result.output  # finished, but one refused
    assert "would replay 5 of 6 selected" in result.output
    assert "already replayed 3 times" in result.output
    assert tail.topic_totals(settings, [settings.topic_main])[settings.topic_main] == 0

    result = run("replay", "--order-id", "d1")
    assert result.exit_code == 0, result.output
    assert "replayed 1 of 1 selected" in result.output
    result = run("replay", "--order-id", "loop", "--force")
    assert result.exit_code == 0, result.output
    keys = sorted(key for *_, key, _, _ in read_all(settings, settings.topic_main, 2))
    assert keys == [b"d1", b"loop"]


@pytest.mark.slow
@pytest.mark.parametrize("guarantee", ["exactly-once", "at-least-once"])
def test_replay_killed_with_sigkill_resumes_and_stops_at_the_end(
    dlq_topics, write_dlq, unique, guarantee
) -> None:
    settings = dlq_topics.model_copy(update={"processing_guarantee": guarantee})
    selected = [dead_letter(settings, order_id=f"k{i:04d}", dlq_at=T0 + i) for i in range(2000)]
    others = [
        dead_letter(settings, order_id=f"x{i}", reason="max_attempts_exhausted") for i in range(200)
    ]
    write_dlq(selected[:1000] + others + selected[1000:])
    group = f"g-{unique}-kill"
    command = [
        *ORDERFLOW,
        "dlq",
        "replay",
        "--reason",
        "non_retryable",
        "--rate",
        "400",
        "--group",
        group,
    ]
    env = env_of(settings)
    main = settings.topic_main

    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while tail.topic_totals(settings, [main])[main] < 700:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert first.returncode == -signal.SIGKILL
    at_kill = committed(settings, group, settings.topic_dlq)
    progress = sum(at_kill.values())
    assert 0 < progress < 2200, progress  # some, not all, committed before the kill
    killed_at = tail.topic_totals(settings, [main])[main]

    started = time.monotonic()
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resumed run" in second.stdout
    replayed_now = int(second.stdout.split("replayed ")[1].split(" ")[0])

    exactly_once = guarantee == "exactly-once"
    # Offsets count transaction markers too: in exactly-once mode they are an upper bound.
    republished = tail.topic_totals(settings, [main])[main]
    out = read_all(settings, main, 2000 if exactly_once else republished)
    keys = [key for *_, key, _, _ in out]
    assert set(keys) == {f"k{i:04d}".encode() for i in range(2000)}  # every selected one
    duplicates = len(keys) - 2000
    refs = [dict(headers)[h.REPLAY_OF].decode() for *_, headers in out]
    assert len(set(refs)) == 2000
    if exactly_once:
        # The republish, its ledger entry and the position were one transaction: the killed
        # run's open one was aborted when the second run started, nothing else repeated.
        assert duplicates == 0 and len(out) == 2000
    else:
        assert len(out) == republished
    # Committed only after the republish was acknowledged: what lies below the position committed
    # at the kill went out exactly once; only what the killed run sent after it is sent again
    # (at least once: just the records republished but not yet in the ledger at the kill).
    for ref, count in Counter(refs).items():
        _, partition, offset = ref.rsplit(":", 2)
        if int(offset) < at_kill.get(int(partition), 0):
            assert count == 1, ref
        else:
            assert count <= 2, ref
    ledger = read_ledger(settings)
    assert len(ledger) == 2000 and ledger.garbage == 0
    # It stopped at the end: the DLQ's end is fully committed and nothing more arrives.
    ends = tail.watermarks(settings, [settings.topic_dlq])[settings.topic_dlq]
    assert committed(settings, group, settings.topic_dlq) == {p: hi for p, (_, hi) in ends.items()}
    assert tail.topic_totals(settings, [main])[main] == republished
    # rate accuracy of the resumed run
    rate = replayed_now / elapsed
    print(
        f"\nkill -9 after {killed_at} republished; resumed run {replayed_now} in {elapsed:.2f} s"
        f" ({rate:.0f}/s incl. start-up, target 400/s); {guarantee}: duplicates {duplicates}"
    )
    assert replayed_now / 400 <= elapsed


@pytest.mark.slow
def test_replay_whose_transaction_the_broker_aborted_recovers_inside_the_run(
    dlq_topics, write_dlq, unique
) -> None:
    """A run frozen (SIGSTOP) past its transaction timeout: the coordinator aborts the open
    transaction and bumps the producer epoch, as after a coordinator failover. Not a zombie:
    the run renews its producer, rewinds to its last commit and finishes, exactly once."""
    settings = dlq_topics
    write_dlq([dead_letter(settings, order_id=f"z{i:03d}") for i in range(600)])
    group = f"g-{unique}-fenced"
    env = env_of(settings) | {"ORDERFLOW_TRANSACTION_TIMEOUT_MS": "2000"}
    command = [*ORDERFLOW, "dlq", "replay", "--rate", "100", "--group", group]
    replay = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ledger_topic = settings.topic_redriven
    deadline = time.monotonic() + 60
    while not tail.watermarks(settings, [ledger_topic])[ledger_topic] or (
        tail.topic_totals(settings, [ledger_topic])[ledger_topic] < 100
    ):
        assert replay.poll() is None, replay.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    replay.send_signal(signal.SIGSTOP)
    # The broker looks for expired transactions every 10 s (Kafka's default): 15 s frozen is
    # past the 2 s timeout by at least one sweep.
    time.sleep(15)
    replay.send_signal(signal.SIGCONT)
    stdout, stderr = replay.communicate(timeout=120)
    out_text, err_text = stdout.decode(), stderr.decode()
    assert replay.returncode == 0, out_text + err_text
    assert "replayed 600 of 600 selected" in out_text, out_text + err_text
    assert "recovered" in err_text, err_text  # the abort happened, and was recovered from
    out = read_all(settings, settings.topic_main, 601, timeout_s=10)
    refs = Counter(dict(headers)[h.REPLAY_OF].decode() for *_, headers in out)
    assert len(refs) == 600 and len(out) == 600  # nothing lost, nothing twice
    assert len(read_ledger(settings)) == 600
    print(f"\n{[line for line in err_text.splitlines() if 'recover' in line]}")
