"""Fixtures for the dashboard's AppTests: the app reads ``ORDERFLOW_*`` like a real process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit import config
from streamlit.testing.v1 import AppTest

from dashboard import data
from deploy.localkafka.net import free_ports
from processors.settings import Settings

APP = str(Path(__file__).parents[2] / "dashboard" / "app.py")
# A bad broker makes every Kafka call wait for its timeout; a page does a few of them.
RUN_TIMEOUT_S = 60


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes the app load ``settings``' connection, topics and groups."""
    return {
        "ORDERFLOW_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "ORDERFLOW_TOPIC_MAIN": settings.topic_main,
        "ORDERFLOW_TOPIC_RETRY": settings.topic_retry,
        "ORDERFLOW_TOPIC_DLQ": settings.topic_dlq,
        "ORDERFLOW_TOPIC_PROCESSED": settings.topic_processed,
        "ORDERFLOW_TOPIC_REDRIVEN": settings.topic_redriven,
        "ORDERFLOW_GROUP_MAIN": settings.group_main,
        "ORDERFLOW_GROUP_RETRY": settings.group_retry,
    }


def closed_port() -> int:
    """A loopback port nothing listens on, outside the ephemeral range (a client retrying an
    ephemeral one can be handed it as its own source port and connect to itself)."""
    [port] = free_ports(1)
    return port


@pytest.fixture(autouse=True)
def listen_address(request: pytest.FixtureRequest) -> Iterator[None]:
    """``server.address`` as ``orderflow dashboard`` sets it (loopback) unless a test is
    parametrized indirectly with another address."""
    before = config.get_option("server.address")
    config.set_option("server.address", getattr(request, "param", "127.0.0.1"))
    yield
    config.set_option("server.address", before)


@pytest.fixture(autouse=True)
def fresh_login_throttle() -> Iterator[None]:
    """Each test starts with no failed logins on record (the throttle is per process)."""
    from dashboard import ui

    ui.login_throttle.clear()
    yield
    ui.login_throttle.clear()


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, str]], None]]:
    """Set the app's environment; the settings cache is cleared before and after each test."""
    st.cache_resource.clear()

    def apply(env: dict[str, str]) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    yield apply
    st.cache_resource.clear()


@pytest.fixture
def kafka_down(app_env: Callable[[dict[str, str]], None], monkeypatch: pytest.MonkeyPatch) -> None:
    """The app pointed at a closed port: every Kafka call fails after its (shortened) timeout."""
    app_env({"ORDERFLOW_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}"})
    monkeypatch.setattr(data, "TIMEOUT_S", 0.5)


def new_app(secrets: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    if secrets:
        at.secrets.update(secrets)
    return at
