"""The watchdog: a thread that ends a processor whose loop or Kafka call stopped moving.

librdkafka calls can block past their own timeouts (upstream issues #5511 and #3013:
``send_offsets_to_transaction`` waiting for a coordinator that is gone), and a Python signal
handler never runs while the main thread sits in such a call. So everything here works from its
own thread:

- a **bounded call** (:meth:`Watchdog.call`) that outlives its budget ends the process with
  ``event=stalled call=<name> waited_s=…`` and exit code 3;
- a **loop** that stops beating (:meth:`Watchdog.beat`) for ``watchdog_timeout_s`` outside any
  bounded call, or that beats without progress (:meth:`Watchdog.progressed`) while work waits
  (``work_waiting``: records processed but not committed, overdue retries) for that long,
  likewise;
- a **partition whose fetch stopped**: an assigned, unpaused partition with records beyond the
  consumer's position that stays at the same position for ``watchdog_timeout_s``, however well
  the other partitions move (a librdkafka consumer can stop fetching one partition after its
  leader's broker died and never resume: upstream #5153), likewise;
- **signals**: the C-level handler writes each SIGTERM/SIGINT to a wakeup socket this thread
  reads, even while the main thread is blocked. The first asks the loop to stop and ends the
  process with exit code 3 if it is still there after ``shutdown_timeout_s``; the second ends it
  at once (128 + signal number);
- **the GIL held**: should this thread itself not run for ``BACKSTOP_S``, faulthandler's C
  thread prints every stack and ends the process (exit 1);
- **systemd**: ``READY=1`` once running, ``WATCHDOG=1`` every second while the loop is healthy
  (so a hang nobody here can see still gets the unit killed by ``WatchdogSec=``), ``STOPPING=1``.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from processors.logs import event

logger = logging.getLogger(__name__)

EXIT_STALLED = 3
EXIT_FENCED = 4
TICK_S = 1.0
# If this thread itself cannot run for this long (the GIL held by a stuck C call), faulthandler's
# own C thread dumps every stack and ends the process (exit 1).
BACKSTOP_S = 30.0
PROBE_AFTER_S = 5.0  # ask work_waiting() once progress is this old, then every PROBE_AFTER_S


def sd_notify(message: str) -> bool:
    """Send one sd_notify(3) datagram to ``$NOTIFY_SOCKET`` (set by systemd for Type=notify
    units; absent elsewhere). Never raises; ``False`` when there is no socket or it failed."""
    path = os.environ.get("NOTIFY_SOCKET")  # the service manager's protocol, not a setting
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)
    except OSError:
        return False
    return True


Partition = tuple[str, int]


class FetchStalls:
    """Which lagging partitions keep the same position, and since when (pure: no clock, no
    Kafka). Fed, once per probe, the partitions that have records beyond their position."""

    def __init__(self) -> None:
        self.since: dict[Partition, tuple[int, float]] = {}

    def observe(self, now: float, lagging: dict[Partition, int]) -> None:
        """``lagging``: partition -> the consumer's position there, for partitions with records
        beyond it. A partition that moved, or has nothing waiting, starts over."""
        kept = {}
        for partition, position in lagging.items():
            seen = self.since.get(partition)
            kept[partition] = seen if seen is not None and seen[0] == position else (position, now)
        self.since = kept

    def longest(self, now: float) -> tuple[Partition, float] | None:
        """The partition stuck the longest and for how long, or ``None``."""
        if not self.since:
            return None
        partition, (_, since) = min(self.since.items(), key=lambda item: item[1][1])
        return partition, now - since

    def clear(self) -> None:
        self.since = {}


@dataclass
class _Call:
    name: str
    started: float
    budget_s: float


class Watchdog:
    """One per process. The main thread reports; :meth:`start` launches the checking thread."""

    def __init__(
        self,
        processor: str,
        *,
        loop_timeout_s: float,
        shutdown_timeout_s: float,
        progress_gauge: Callable[[float], None] | None = None,
        exit_process: Callable[[int], None] = os._exit,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.processor = processor
        self.loop_timeout_s = loop_timeout_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.progress_gauge = progress_gauge or (lambda _wall: None)
        self.exit_process = exit_process
        self.clock = clock
        self.work_waiting: Callable[[], bool] = lambda: False
        # Assigned partitions with records beyond the position (see FetchStalls.observe).
        self.lagging: Callable[[], dict[Partition, int]] = dict
        self.fetch_stalls = FetchStalls()
        self.last_fetch_probe = float("-inf")
        self.fetch_seen_now = False
        self.on_stop: Callable[[], None] = lambda: None
        self.last_beat = clock()
        self.last_progress = self.last_beat
        self.waiting_since: float | None = None
        self.last_probe = float("-inf")
        self.stop_requested_at: float | None = None
        self.signals_seen = 0
        self.calls: list[_Call] = []
        # The last bounded call that ran out of time (name, seconds), set by the guard.
        self.timed_out: tuple[str, float] | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._wakeup: tuple[socket.socket, socket.socket] | None = None
        self._previous_wakeup_fd = -1

    # --- reports from the main thread -----------------------------------------------------------
    def beat(self) -> None:
        """The loop went round once (cheap: call it every iteration)."""
        self.last_beat = self.clock()

    def progressed(self) -> None:
        """Records were processed or committed."""
        self.last_progress = self.last_beat = self.clock()
        self.waiting_since = None
        self.timed_out = None

    @contextlib.contextmanager
    def call(self, name: str, budget_s: float) -> Iterator[None]:
        """Run a blocking call that must return within ``budget_s`` (else: exit 3)."""
        self.calls.append(_Call(name, self.clock(), budget_s))
        try:
            yield
        finally:
            self.calls.pop()
            self.last_beat = self.clock()

    @property
    def stopping(self) -> bool:
        return self.stop_requested_at is not None

    # --- the decision (pure given the state; tested directly) ------------------------------------
    def verdict(self, now: float) -> tuple[str, float] | None:
        """``(what stalled, seconds it waited)`` if the process must end now, else ``None``."""
        if self.stop_requested_at is not None:
            waited = now - self.stop_requested_at
            if waited >= self.shutdown_timeout_s:
                return "shutdown", waited
        for call in reversed(self.calls):  # innermost first
            if now - call.started >= call.budget_s:
                return call.name, now - call.started
        if not self.calls and now - self.last_beat >= self.loop_timeout_s:
            return "loop", now - self.last_beat
        if self._waiting_without_progress(now):
            return "no_progress", now - max(self.last_progress, self.waiting_since or now)
        stuck = self._stuck_partition(now)
        if stuck is not None:
            return stuck
        return None

    def _stuck_partition(self, now: float) -> tuple[str, float] | None:
        if now - self.last_fetch_probe >= PROBE_AFTER_S:
            self.last_fetch_probe = now
            try:
                self.fetch_stalls.observe(now, self.lagging())
                self.fetch_seen_now = True
            except Exception:  # a broker away or a client closing: no news, keep what was seen
                self.fetch_seen_now = False
        longest = self.fetch_stalls.longest(now)
        # Only a probe that just saw the lag again concludes: a leader away is not a stuck fetch.
        if not self.fetch_seen_now or longest is None or longest[1] < self.loop_timeout_s:
            return None
        (topic, partition), waited = longest
        return f"fetch:{topic}[{partition}]", waited

    def _waiting_without_progress(self, now: float) -> bool:
        if now - self.last_progress < PROBE_AFTER_S:
            self.waiting_since = None
            return False
        if now - self.last_probe >= PROBE_AFTER_S:
            self.last_probe = now
            try:
                waiting = self.work_waiting()
            except Exception:  # a client closing under the probe: no verdict from it
                waiting = False
            if not waiting:
                self.waiting_since = None
            elif self.waiting_since is None:
                self.waiting_since = now
        return (
            self.waiting_since is not None
            and now - self.waiting_since >= self.loop_timeout_s
            and now - self.last_progress >= self.loop_timeout_s
        )

    # --- the thread -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start checking (call from the main thread: it takes the signal wakeup fd)."""
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        self._wakeup = (reader, writer)
        self._previous_wakeup_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            # Signals with the default action kill at once; our handler is replaced by the
            # loop's own (Quix installs one in app.run()): either way the C handler wakes us.
            if signal.getsignal(signum) in (signal.SIG_DFL, signal.SIG_IGN):
                signal.signal(signum, lambda *_: self.request_stop())
        self.last_beat = self.last_progress = self.clock()
        self._thread = threading.Thread(target=self._run, name="orderflow-watchdog", daemon=True)
        self._thread.start()
        sd_notify("READY=1")

    def close(self) -> None:
        """Stop checking (the main thread is done)."""
        sd_notify("STOPPING=1")
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * TICK_S)
        faulthandler.cancel_dump_traceback_later()
        if self._wakeup is not None:
            with contextlib.suppress(ValueError):  # not the main thread (tests)
                signal.set_wakeup_fd(self._previous_wakeup_fd)
            for sock in self._wakeup:
                sock.close()
            self._wakeup = None

    def request_stop(self) -> None:
        if self.stop_requested_at is None:
            self.stop_requested_at = self.clock()
            event(logger, "stopping", processor=self.processor, bound_s=self.shutdown_timeout_s)
        try:
            self.on_stop()
        except Exception as exc:  # the loop is between clients: it checks `stopping` itself
            logger.debug("on_stop failed: %s", exc)

    def _run(self) -> None:
        assert self._wakeup is not None
        reader = self._wakeup[0]
        while not self._closed.is_set():
            faulthandler.dump_traceback_later(BACKSTOP_S, exit=True)
            ready, _, _ = select.select([reader], [], [], TICK_S)
            if ready:
                self._signals(reader)
            if self._closed.is_set():
                return
            verdict = self.verdict(self.clock())
            if verdict is not None:
                self._end(*verdict)
                return
            now = self.clock()
            self.progress_gauge(time.time() - (now - self.last_progress))
            if now - self.last_beat < self.loop_timeout_s:
                sd_notify("WATCHDOG=1")

    def _signals(self, reader: socket.socket) -> None:
        try:
            data = reader.recv(64)
        except BlockingIOError:
            return
        for signum in data:
            if signum not in (signal.SIGTERM, signal.SIGINT):
                continue
            # Counted here, not by stop_requested_at: a Python handler may have run first.
            self.signals_seen += 1
            if self.signals_seen > 1:
                name = signal.Signals(signum).name
                event(logger, "killed", logging.WARNING, processor=self.processor, signal=name)
                self.exit_process(128 + signum)
                return
            self.request_stop()

    def _end(self, what: str, waited_s: float) -> None:
        event(
            logger,
            "stalled",
            logging.ERROR,
            processor=self.processor,
            call=what,
            waited_s=round(waited_s, 1),
            exit_code=EXIT_STALLED,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        self.exit_process(EXIT_STALLED)
