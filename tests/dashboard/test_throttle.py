"""The login throttle (dashboard.throttle): a fixed clock, no Streamlit."""

from __future__ import annotations

from dashboard.throttle import LoginThrottle


def fail(throttle: LoginThrottle, client: str, now: float, times: int = 1) -> None:
    for _ in range(times):
        assert throttle.check(client, now).allowed
        throttle.failed(client, now)


def test_two_typos_are_free_then_the_wait_doubles() -> None:
    t = LoginThrottle()
    fail(t, "a", 0.0, 2)  # the second try came at once
    verdict = t.check("a", 0.5)
    assert (verdict.allowed, verdict.reason, verdict.wait_s) == (False, "throttled", 0.5)
    assert t.check("a", 1.0).allowed
    t.failed("a", 1.0)
    assert not t.check("a", 2.9).allowed and t.check("a", 3.0).allowed  # now 2 s


def test_client_is_locked_out_after_its_limit_and_others_are_not() -> None:
    t = LoginThrottle(client_limit=4, lockout_s=600)
    for i in range(4):
        now = 100.0 * i
        assert t.check("a", now).allowed
        t.failed("a", now)
    verdict = t.check("a", 400.0)
    assert (verdict.allowed, verdict.reason) == (False, "locked_out")
    assert verdict.wait_s == 300.0 + 600 - 400.0
    assert t.check("b", 400.0).allowed
    assert t.check("a", 300.0 + 600).allowed  # the lock-out ends


def test_many_clients_failing_lock_everyone_out() -> None:
    t = LoginThrottle(global_limit=10, lockout_s=60)
    for i in range(10):
        fail(t, f"client-{i}", float(i))
    verdict = t.check("innocent", 10.0)
    assert (verdict.allowed, verdict.reason) == (False, "locked_out")
    assert t.check("innocent", 60.0 + 9).allowed


def test_success_clears_the_record() -> None:
    t = LoginThrottle()
    fail(t, "a", 0.0, 2)
    assert not t.check("a", 0.0).allowed
    t.succeeded("a")
    assert t.check("a", 0.0).allowed
