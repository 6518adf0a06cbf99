"""The retry policy: frozen data built once from the settings and validated at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from processors.core.classify import Classifier, build_classifier
from processors.errors import SettingsError
from processors.settings import Settings


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how late a failed record is tried again.

    ``max_attempts`` counts the first attempt. After the n-th failed attempt the next one is due
    ``min(initial × multiplier^(n-1), max)`` ms later, spread by ``±jitter`` (a fraction) and
    never beyond ``backoff_max_ms``. With ``deadline_ms`` set, a retry is scheduled only if it
    is due within that many ms of the first failure.
    """

    max_attempts: int = 5
    backoff_initial_ms: int = 1000
    backoff_multiplier: float = 3.0
    backoff_max_ms: int = 5 * 60 * 1000
    jitter: float = 0.1
    deadline_ms: int | None = None
    retry_unknown: bool = True
    classifier: Classifier = field(default_factory=Classifier)

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.max_attempts <= 100:
            problems.append(f"max_attempts must be 1..100, got {self.max_attempts}")
        if self.backoff_initial_ms < 0:
            problems.append(f"backoff_initial_ms must be >= 0, got {self.backoff_initial_ms}")
        if self.backoff_multiplier < 1:
            problems.append(f"backoff_multiplier must be >= 1, got {self.backoff_multiplier}")
        if self.backoff_max_ms < self.backoff_initial_ms:
            problems.append("backoff_max_ms must be at least backoff_initial_ms")
        if not 0 <= self.jitter <= 1:
            problems.append(f"jitter must be 0..1, got {self.jitter}")
        if self.deadline_ms is not None and self.deadline_ms <= 0:
            problems.append(f"deadline_ms must be > 0, got {self.deadline_ms}")
        if problems:
            raise ValueError("; ".join(problems))

    def backoff_ms(self, failed_attempts: int, rand: float) -> int:
        """Delay before the next attempt after ``failed_attempts`` failures; ``rand`` in [0, 1)."""
        exponent = max(failed_attempts - 1, 0)
        base = float(self.backoff_max_ms)
        # Avoid float overflow for absurd exponents: once past the cap, it stays capped.
        if exponent < 200:
            base = min(self.backoff_initial_ms * self.backoff_multiplier**exponent, base)
        spread = 1.0 + self.jitter * (2.0 * min(max(rand, 0.0), 1.0) - 1.0)
        return max(0, min(round(base * spread), self.backoff_max_ms))


def build_policy(settings: Settings) -> RetryPolicy:
    """The policy from the settings; any nonsense becomes one ``SettingsError`` at start-up."""
    try:
        classifier = build_classifier(settings.permanent_errors, settings.transient_errors)
        return RetryPolicy(
            max_attempts=settings.max_attempts,
            backoff_initial_ms=settings.backoff_initial_ms,
            backoff_multiplier=settings.backoff_multiplier,
            backoff_max_ms=settings.backoff_max_ms,
            jitter=settings.backoff_jitter,
            deadline_ms=settings.retry_deadline_ms,
            retry_unknown=settings.retry_unknown_errors,
            classifier=classifier,
        )
    except ValueError as exc:
        raise SettingsError(f"invalid retry policy: {exc}") from None
