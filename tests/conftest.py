"""Shared fixtures. ``kafka_bootstrap`` yields a real broker's address (see docs/testing.md)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from processors.settings import Settings, load_settings


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real broker: ``ORDERFLOW_TEST_BOOTSTRAP`` if set, else one started for this session."""
    external = os.environ.get("ORDERFLOW_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    from tests.brokers import session_broker  # started once, stopped at the end

    with session_broker() as bootstrap:
        yield bootstrap


@pytest.fixture
def unique() -> str:
    """A short random suffix so each test owns its topics and consumer groups."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, unique: str, tmp_path) -> Settings:
    """Settings pointing at the test broker, with topic and group names no other test uses."""
    return load_settings(
        bootstrap_servers=kafka_bootstrap,
        topic_main=f"t-{unique}.orders.v1",
        topic_retry=f"t-{unique}.orders.retry",
        topic_dlq=f"t-{unique}.orders.dlq",
        topic_processed=f"t-{unique}.orders.processed",
        topic_redriven=f"t-{unique}.orders.dlq.redriven",
        group_main=f"g-{unique}-main",
        group_retry=f"g-{unique}-retry",
        state_dir=tmp_path / "state",
        commit_interval_s=0.2,
    )
