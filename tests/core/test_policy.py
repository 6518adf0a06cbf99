from __future__ import annotations

import pytest

from processors.core.classify import ErrorCategory
from processors.core.policy import RetryPolicy, build_policy
from processors.errors import SettingsError
from processors.settings import load_settings

DEFAULT = RetryPolicy()


@pytest.mark.parametrize(
    ("failed", "rand", "expected"),
    [
        (1, 0.5, 1000),  # initial, no jitter at the midpoint
        (2, 0.5, 3000),
        (3, 0.5, 9000),
        (4, 0.5, 27000),
        (6, 0.5, 243000),
        (7, 0.5, 300000),  # 729 s capped at 5 min
        (60, 0.5, 300000),
        (1000, 0.5, 300000),  # no float overflow
        (1, 0.0, 900),  # -10 %
        (1, 0.999999, 1100),  # +10 %
        (7, 0.999999, 300000),  # jitter never exceeds the cap
        (7, 0.0, 270000),
        (0, 0.5, 1000),  # defensive: treated like the first failure
    ],
)
def test_backoff_table(failed: int, rand: float, expected: int) -> None:
    assert DEFAULT.backoff_ms(failed, rand) == expected


def test_zero_jitter_and_zero_delay() -> None:
    policy = RetryPolicy(backoff_initial_ms=0, backoff_max_ms=0, jitter=0.0)
    assert policy.backoff_ms(3, 0.9) == 0


def test_rand_outside_unit_interval_is_clamped() -> None:
    assert DEFAULT.backoff_ms(1, -5) == 900
    assert DEFAULT.backoff_ms(1, 7) == 1100


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 101}, "max_attempts"),
        ({"backoff_initial_ms": -1}, "backoff_initial_ms"),
        ({"backoff_multiplier": 0.5}, "backoff_multiplier"),
        ({"backoff_initial_ms": 10, "backoff_max_ms": 5}, "backoff_max_ms"),
        ({"jitter": 1.5}, "jitter"),
        ({"deadline_ms": 0}, "deadline_ms"),
    ],
)
def test_nonsense_policy_is_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)


def test_policy_is_frozen() -> None:
    with pytest.raises(AttributeError):
        DEFAULT.max_attempts = 3  # type: ignore[misc]


def test_build_from_settings() -> None:
    settings = load_settings(
        max_attempts=3,
        backoff_initial_ms=200,
        backoff_multiplier=2,
        backoff_max_ms=1000,
        backoff_jitter=0,
        retry_deadline_ms=60000,
        retry_unknown_errors=False,
        permanent_errors="KeyError, json.JSONDecodeError",
    )
    policy = build_policy(settings)
    assert (policy.max_attempts, policy.backoff_initial_ms, policy.deadline_ms) == (3, 200, 60000)
    assert [policy.backoff_ms(n, 0.3) for n in (1, 2, 3, 4)] == [200, 400, 800, 1000]
    assert policy.retry_unknown is False
    assert policy.classifier.classify(KeyError()) is ErrorCategory.PERMANENT


def test_unimportable_error_class_fails_at_start() -> None:
    settings = load_settings(transient_errors="nosuch.module.Boom")
    with pytest.raises(SettingsError, match=r"nosuch\.module\.Boom"):
        build_policy(settings)
