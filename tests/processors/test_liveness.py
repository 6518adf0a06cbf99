"""The watchdog: its verdicts on a fake clock, and real processes whose main thread is blocked
(signals arrive while a call never returns, as in a hung librdkafka call)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from processors.liveness import EXIT_STALLED, PROBE_AFTER_S, FetchStalls, Watchdog, sd_notify

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watchdog(clock: Clock, **options: float) -> Watchdog:
    return Watchdog(
        "test",
        loop_timeout_s=options.get("loop", 60.0),
        shutdown_timeout_s=options.get("shutdown", 25.0),
        clock=clock,
    )


def test_a_call_over_its_budget_is_named() -> None:
    clock = Clock()
    wd = watchdog(clock)
    with wd.call("commit_transaction", 25.0):
        clock.now += 24.9
        assert wd.verdict(clock.now) is None
        with wd.call("send_offsets_to_transaction", 30.0):
            clock.now += 0.2
            assert wd.verdict(clock.now) == pytest.approx(("commit_transaction", 25.1))
    assert wd.verdict(clock.now) is None  # returned: the call counts as a beat


def test_a_loop_that_stops_beating_outside_calls() -> None:
    clock = Clock()
    wd = watchdog(clock)
    clock.now += 59
    assert wd.verdict(clock.now) is None
    wd.beat()
    clock.now += 60
    assert wd.verdict(clock.now) == ("loop", 60.0)


def test_no_progress_counts_only_while_work_waits() -> None:
    clock = Clock()
    wd = watchdog(clock)
    waiting = [False]
    wd.work_waiting = lambda: waiting[0]
    for _ in range(100):  # idle for 500 s, beating: fine
        clock.now += PROBE_AFTER_S
        wd.beat()
        assert wd.verdict(clock.now) is None
    waiting[0] = True  # records arrive: the 500 idle seconds do not count against them
    for _ in range(12):  # the first probe that sees work starts the count
        clock.now += PROBE_AFTER_S
        wd.beat()
        assert wd.verdict(clock.now) is None
    clock.now += PROBE_AFTER_S
    wd.beat()
    assert wd.verdict(clock.now) == ("no_progress", 60.0)
    wd.progressed()
    assert wd.verdict(clock.now) is None


def test_a_probe_that_fails_is_no_verdict() -> None:
    clock = Clock()
    wd = watchdog(clock)

    def closed() -> bool:
        raise RuntimeError("Consumer closed")

    wd.work_waiting = closed
    for _ in range(30):
        clock.now += PROBE_AFTER_S
        wd.beat()
        assert wd.verdict(clock.now) is None


def test_fetch_stalls_follow_each_partition_on_its_own() -> None:
    stalls = FetchStalls()
    stalls.observe(0.0, {("t", 0): 10, ("t", 1): 5})
    stalls.observe(30.0, {("t", 0): 10, ("t", 1): 9})  # partition 1 moved
    assert stalls.longest(30.0) == (("t", 0), 30.0)
    stalls.observe(40.0, {("t", 1): 9})  # partition 0 caught up (or was revoked)
    assert stalls.longest(50.0) == (("t", 1), 20.0)
    stalls.observe(60.0, {("t", 1): 8})  # rewound: a move, the count starts over
    assert stalls.longest(60.0) == (("t", 1), 0.0)
    stalls.observe(61.0, {})
    assert stalls.longest(61.0) is None


def test_a_partition_whose_fetch_stopped_ends_the_process_while_others_progress() -> None:
    clock = Clock()
    wd = watchdog(clock)
    position = {("orders", 0): 100, ("orders", 1): 7}
    wd.lagging = lambda: dict(position)
    for _ in range(12):  # partition 0 moves and commits; partition 1 sits at offset 7
        clock.now += PROBE_AFTER_S
        position[("orders", 0)] += 50
        wd.progressed()
        assert wd.verdict(clock.now) is None
    clock.now += PROBE_AFTER_S
    wd.progressed()
    assert wd.verdict(clock.now) == ("fetch:orders[1]", 60.0)


def test_only_a_fetch_probe_that_answers_concludes() -> None:
    clock = Clock()
    wd = watchdog(clock)
    answers: list[dict[tuple[str, int], int] | None] = [{("orders", 2): 3}] + [None] * 19

    def lagging() -> dict[tuple[str, int], int]:
        answer = answers.pop(0) if answers else {("orders", 2): 3}
        if answer is None:
            raise RuntimeError("KafkaException: timed out")  # the leader away: no news
        return answer

    wd.lagging = lagging
    for _ in range(20):  # 100 s without an answer: no verdict, whatever was seen before
        clock.now += PROBE_AFTER_S
        wd.beat()
        assert wd.verdict(clock.now) is None
    clock.now += PROBE_AFTER_S  # it answers, still at offset 3: stuck since the first probe
    wd.beat()
    assert wd.verdict(clock.now) == ("fetch:orders[2]", 100.0)


def test_shutdown_bound() -> None:
    clock = Clock()
    wd = watchdog(clock, shutdown=25)
    stopped: list[bool] = []
    wd.on_stop = lambda: stopped.append(True)
    wd.request_stop()
    assert stopped == [True] and wd.stopping
    clock.now += 24
    assert wd.verdict(clock.now) is None
    clock.now += 1
    assert wd.verdict(clock.now) == ("shutdown", 25.0)


def test_sd_notify_sends_a_datagram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert sd_notify("WATCHDOG=1")
        assert server.recv(64) == b"WATCHDOG=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not sd_notify("READY=1")


# A process whose main thread blocks for good inside a "Kafka call" once it has printed ready.
# Its SIGTERM handler only sets a flag, like Quix Streams' (Python runs it between retries of
# the lock, and the blocked call never reads the flag).
BLOCKED = """
import logging, signal, sys, threading
from processors.liveness import Watchdog
from processors import logs
logs.configure()
wd = Watchdog("test", loop_timeout_s=3600, shutdown_timeout_s={shutdown})
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
wd.start()
lock = threading.Lock()
lock.acquire()
print("ready", flush=True)
with wd.call("send_offsets_to_transaction", {budget}):
    lock.acquire()
"""


def blocked(tmp_path: Path, shutdown: float = 2.0, budget: float = 3600.0) -> subprocess.Popen:
    script = tmp_path / "blocked.py"
    script.write_text(textwrap.dedent(BLOCKED.format(shutdown=shutdown, budget=budget)))
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_call_past_its_budget_ends_the_process(tmp_path: Path) -> None:
    proc = blocked(tmp_path, budget=1.0)
    code = proc.wait(timeout=30)
    err = proc.stderr.read() if proc.stderr else ""
    assert code == EXIT_STALLED, err
    assert "event=stalled processor=test call=send_offsets_to_transaction" in err


def test_sigterm_during_a_call_that_never_returns_ends_within_the_bound(tmp_path: Path) -> None:
    proc = blocked(tmp_path, shutdown=2.0)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    elapsed = time.monotonic() - started
    err = proc.stderr.read() if proc.stderr else ""
    assert code == EXIT_STALLED, err
    assert "event=stopping" in err and "call=shutdown" in err
    assert elapsed >= 2.0  # the bound, not earlier: the loop had its chance to stop


def test_a_second_signal_ends_at_once(tmp_path: Path) -> None:
    proc = blocked(tmp_path, shutdown=3600.0)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    err = proc.stderr.read() if proc.stderr else ""
    assert code == 128 + signal.SIGTERM, err
    assert "event=killed processor=test signal=SIGTERM" in err
