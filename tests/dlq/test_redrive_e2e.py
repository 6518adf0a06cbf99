"""The whole redrive story with the real processors: a cause makes orders dead-letter, the cause
is fixed (the processor restarts with a working handler), ``orderflow dlq replay`` sends them
back, and every one ends in orders.processed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from processors.cli import cli
from processors.core import headers as h
from processors.dlq import DlqFilter, list_dead_letters
from processors.orders_gen import generate_orders
from processors.producer import produce_orders
from tests.dlq.support import read_all

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
_PASSED = (
    "bootstrap_servers",
    "topic_main",
    "topic_retry",
    "topic_dlq",
    "topic_processed",
    "topic_redriven",
    "group_main",
    "group_retry",
    "state_dir",
    "commit_interval_s",
)


def processor_env(settings, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    for name in _PASSED:
        env[f"ORDERFLOW_{name.upper()}"] = str(getattr(settings, name))
    env |= {f"ORDERFLOW_{k.upper()}": v for k, v in overrides.items()}
    env["PYTHONPATH"] = str(ROOT)
    return env


class MainProcessor:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "processors.main"],
                env=env,
                cwd=log.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def check_alive(self) -> None:
        assert self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]


def wait_for(condition, timeout_s: float, what: str, proc: MainProcessor):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        proc.check_alive()
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}:\n" + proc.log.read_text()[-3000:])


def test_replayed_dead_letters_end_in_processed(dlq_topics, tmp_path) -> None:
    settings = dlq_topics
    orders = list(generate_orders(5, "success", seed=11))
    broken = MainProcessor(
        processor_env(settings, handler="tests.dlq.handlers:account_suspended"),
        tmp_path / "main-broken.log",
    )
    try:
        summary = produce_orders(settings, orders)
        assert summary.delivered == 5
        letters = wait_for(
            lambda: len(found := list_dead_letters(settings, DlqFilter(), 10)) == 5 and found,
            90,
            "5 dead letters",
            broken,
        )
    finally:
        broken.stop()
    assert {d.reason for d in letters} == {"non_retryable"}
    assert {d.error_class for d in letters} == {"tests.dlq.handlers.MerchantAccountSuspended"}
    originals = {d.order_id: d for d in letters}
    assert set(originals) == {o.order_id for o in orders}

    fixed = MainProcessor(processor_env(settings), tmp_path / "main-fixed.log")
    try:
        env = {"ORDERFLOW_BOOTSTRAP_SERVERS": settings.bootstrap_servers}
        env |= {
            f"ORDERFLOW_TOPIC_{t}": getattr(settings, f"topic_{t.lower()}")
            for t in ("MAIN", "RETRY", "DLQ", "PROCESSED")
        }
        result = CliRunner().invoke(cli, ["dlq", "replay", "--reason", "non_retryable"], env=env)
        assert result.exit_code == 0, result.output
        assert "replayed 5 of 5 selected" in result.output

        processed = read_all(settings, settings.topic_processed, 5, timeout_s=90)
    finally:
        fixed.stop()
    assert len(processed) == 5, (tmp_path / "main-fixed.log").read_text()[-3000:]
    for *_, key, value, headers in processed:
        body = json.loads(value)
        letter = originals[key.decode()]
        assert body["status"] == "processed" and body["order_id"] == letter.order_id
        assert body["event_id"] == letter.event_id  # same idempotency key as the first attempt
        assert body["attempts"] == 1
        assert dict(headers)[h.TRACEPARENT].decode() == letter.traceparent  # same trace

    replayed = [r for r in read_all(settings, settings.topic_main, 10) if h.REPLAY_OF in dict(r[4])]
    assert len(replayed) == 5
    for *_, key, _, headers in replayed:
        values = dict(headers)
        assert values[h.REPLAY_COUNT] == b"1"
        assert values[h.REPLAY_OF].decode() == originals[key.decode()].ref
    assert len(list_dead_letters(settings, DlqFilter(), 10)) == 5  # the DLQ is untouched
