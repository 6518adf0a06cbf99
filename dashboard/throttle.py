"""Slowing down password guessing at the dashboard's login: pure, the clock passed in.

After ``free_failures`` typos, each failed attempt of a client doubles the wait before its
next one (1 s, 2 s, 4 s … capped),
``client_limit`` failures lock that client out for ``lockout_s``, and ``global_limit`` failures
from all clients within ``lockout_s`` lock everyone out (many clients guessing at once). A
success clears the client's failures. One instance per dashboard process (in memory: a restart
clears it, which a restart rate limit in systemd bounds).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from prometheus_client import Counter

LOGIN_FAILURES = Counter(
    "orderflow_dashboard_login_failures_total",
    "Refused dashboard logins, by outcome (wrong_password, throttled, locked_out).",
    ["outcome"],
)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    wait_s: float = 0.0
    reason: str = ""  # "", "throttled", "locked_out"


@dataclass
class _Client:
    failures: int = 0
    last_failure: float = float("-inf")


@dataclass
class LoginThrottle:
    free_failures: int = 2
    client_limit: int = 6
    global_limit: int = 50
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    lockout_s: float = 900.0
    _clients: dict[str, _Client] = field(default_factory=dict)
    _recent: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, client: str, now: float) -> Verdict:
        """May ``client`` try a password at monotonic time ``now``?"""
        with self._lock:
            self._expire(now)
            if len(self._recent) >= self.global_limit:
                return Verdict(False, self._recent[0] + self.lockout_s - now, "locked_out")
            state = self._clients.get(client)
            if state is None or state.failures < self.free_failures:
                return Verdict(True)
            if state.failures >= self.client_limit:
                return Verdict(False, state.last_failure + self.lockout_s - now, "locked_out")
            steps = state.failures - self.free_failures
            delay = min(self.max_delay_s, self.base_delay_s * 2**steps)
            wait = state.last_failure + delay - now
            return Verdict(True) if wait <= 0 else Verdict(False, wait, "throttled")

    def failed(self, client: str, now: float) -> int:
        """Record a wrong password; returns the client's failure count."""
        with self._lock:
            state = self._clients.setdefault(client, _Client())
            state.failures += 1
            state.last_failure = now
            self._recent.append(now)
            return state.failures

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)

    def _expire(self, now: float) -> None:
        while self._recent and self._recent[0] + self.lockout_s <= now:
            self._recent.popleft()
        for name in [n for n, s in self._clients.items() if s.last_failure + self.lockout_s <= now]:
            del self._clients[name]
