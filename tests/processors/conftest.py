"""Fixtures for the processor tests: fresh topics, fast retry settings, subprocess processors."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from processors.settings import Settings, load_settings
from tests.processors.harness import Proc, create_topics, delete_topics, settings_env

FAST_RETRIES: dict[str, Any] = {
    "max_attempts": 4,
    "backoff_initial_ms": 200,
    "backoff_multiplier": 2.0,
    "backoff_max_ms": 3000,
    "backoff_jitter": 0.1,
    "commit_interval_s": 0.2,
    "transaction_timeout_ms": 15000,
    "session_timeout_ms": 6000,
}


def fresh_settings(bootstrap: str, state_dir: Path, **overrides: Any) -> Settings:
    suffix = uuid.uuid4().hex[:10]
    return load_settings(
        bootstrap_servers=bootstrap,
        topic_main=f"t-{suffix}.orders.v1",
        topic_retry=f"t-{suffix}.orders.retry",
        topic_dlq=f"t-{suffix}.orders.dlq",
        topic_processed=f"t-{suffix}.orders.processed",
        topic_redriven=f"t-{suffix}.orders.dlq.redriven",
        group_main=f"g-{suffix}-main",
        group_retry=f"g-{suffix}-retry",
        state_dir=state_dir,
        **(FAST_RETRIES | overrides),
    )


ProcFactory = Callable[..., Proc]


@pytest.fixture
def flow_settings(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings with fast retries and their own freshly created topics (deleted afterwards)."""
    settings = fresh_settings(kafka_bootstrap, tmp_path / "state")
    create_topics(settings)
    yield settings
    delete_topics(settings)


@pytest.fixture
def start_processor(tmp_path: Path) -> Iterator[ProcFactory]:
    """``start_processor(settings, "main"|"retry", instance_id="a", **overrides)``; every
    process still running at the end of the test is killed."""
    started: list[Proc] = []

    def start(settings: Settings, role: str, instance_id: str = "a", **overrides: Any) -> Proc:
        env = settings_env(settings, instance_id=instance_id, **overrides)
        log_path = tmp_path / f"{role}-{instance_id}-{len(started)}.log"
        proc = Proc(role, env, log_path).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
