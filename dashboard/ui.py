"""Render helpers shared by the pages: settings, the auth gate, refresh controls, error banners.

Only render modules (this one, ``app.py`` and ``views/``) import Streamlit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import altair as alt
import streamlit as st
from prometheus_client import REGISTRY
from streamlit.errors import StreamlitSecretNotFoundError

from dashboard import shape
from dashboard.auth import (
    AuthConfig,
    auth_config,
    is_loopback,
    kafka_overrides,
    password_matches,
)
from dashboard.throttle import LOGIN_FAILURES, LoginThrottle
from processors.core import display
from processors.errors import KafkaUnavailableError, OrderflowError, SettingsError
from processors.metrics import serve_registry
from processors.settings import Settings, load_settings

log = logging.getLogger(__name__)

REFRESH_CHOICES = (1, 2, 5, 10, 30, 60)
STAGE_COLORS = {"main": "#3b6fd4", "retry": "#e8a13a", "DLQ": "#d9453d", "processed": "#3f9e5a"}
DEFAULT_REFRESH_S = 2


@st.cache_resource(show_spinner=False)
def _settings() -> Settings:
    return load_settings(**kafka_overrides(_secrets()))


def settings() -> Settings:
    """The process's settings (``ORDERFLOW_*``), loaded once. Stops the page on a bad setting."""
    try:
        return _settings()
    except SettingsError as exc:
        st.error(f"orderflow settings are invalid: {exc}", icon=":material/settings:")
        st.stop()
        raise  # unreachable: st.stop() ends the run


@st.cache_resource(show_spinner=False)
def metrics_endpoint(port: int | None, host: str) -> object:
    """The process's ``/metrics`` (``ORDERFLOW_METRICS_PORT``; the login-failure counter),
    started once. A port in use is logged and the pages go on without it."""
    try:
        return serve_registry(REGISTRY, port, host)
    except OSError as exc:
        log.warning("event=metrics_unavailable host=%s port=%s error=%r", host, port, str(exc))
        return None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- auth ---------------------------------------------------------------------------------------
def _secrets() -> dict:
    try:
        return st.secrets.to_dict()
    except (StreamlitSecretNotFoundError, FileNotFoundError):
        return {}


def auth() -> AuthConfig:
    return auth_config(_secrets())


def gate() -> bool:
    """Render the login when auth is configured and the visitor has not passed it yet.

    Returns True when the page may render. With no auth configured, returns True only when the
    server listens on loopback, and otherwise explains why it refuses.
    """
    config = auth()
    if config.mode == "oidc":
        if st.user.is_logged_in:
            return True
        st.title("orderflow")
        st.info("Sign in to open the dashboard.", icon=":material/lock:")
        st.button("Log in", type="primary", on_click=st.login, args=(config.provider,))
        return False
    if config.mode == "password":
        if st.session_state.get("authenticated"):
            return True
        _password_form(str(_secrets()["auth"]["password"]))
        return False
    address = str(st.get_option("server.address") or "")
    if is_loopback(address):
        return True
    st.error(
        f"No login is configured, so this dashboard must listen on 127.0.0.1 only, not on "
        f"{address or 'every interface'}. Set `[auth] password` or OIDC in "
        "`.streamlit/secrets.toml`, or start it with `orderflow dashboard`.",
        icon=":material/lock_open:",
    )
    return False


@st.cache_resource(show_spinner=False)
def login_throttle() -> LoginThrottle:
    """One per dashboard process, shared by every session."""
    return LoginThrottle()


def _client() -> str:
    """The visitor's address as Streamlit sees it (behind a proxy: the proxy's, so the
    per-client limit then acts as a global one)."""
    address = st.context.ip_address
    return address if isinstance(address, str) and address else "unknown"


def _password_form(expected: str) -> None:
    st.title("orderflow")
    with st.form("login"):
        given = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    throttle, client, now = login_throttle(), _client(), time.monotonic()
    verdict = throttle.check(client, now)
    if not verdict.allowed:
        LOGIN_FAILURES.labels(verdict.reason).inc()
        log.warning("login result=%s client=%s wait_s=%.0f", verdict.reason, client, verdict.wait_s)
        what = "Too many failed logins" if verdict.reason == "locked_out" else "Slow down"
        st.error(f"{what}: try again in {verdict.wait_s:.0f} s.", icon=":material/lock_clock:")
        return
    if password_matches(given, expected):
        throttle.succeeded(client)
        st.session_state["authenticated"] = True
        log.info("login result=ok client=%s", client)
        st.rerun()
    failures = throttle.failed(client, now)
    LOGIN_FAILURES.labels("wrong_password").inc()
    log.warning("login result=refused client=%s failures=%d", client, failures)  # never the guess
    st.error("Wrong password.", icon=":material/lock:")


def auth_badge() -> None:
    """Sidebar note: who is signed in, or that the open dashboard is local only."""
    config = auth()
    if config.mode == "oidc":
        st.caption(f"Signed in as {st.user.get('email') or st.user.get('name') or 'user'}")
        st.button("Log out", on_click=st.logout)
    elif config.mode == "password":
        if st.button("Log out"):
            st.session_state.pop("authenticated", None)
            st.rerun()
    else:
        st.caption(
            ":material/lock_open: No login configured: this dashboard only listens on "
            "127.0.0.1 (set `[auth]` in secrets.toml to serve it further)."
        )


# --- refresh controls -----------------------------------------------------------------------------
def refresh_controls() -> None:
    """Sidebar widgets shared by every live page: interval and pause (kept across pages)."""
    st.select_slider(
        "Refresh every (s)",
        options=REFRESH_CHOICES,
        value=DEFAULT_REFRESH_S,
        key="refresh_s",
    )
    st.toggle("Pause live updates", key="paused")


def run_every() -> float | None:
    """Seconds between fragment reruns, or ``None`` while paused."""
    if st.session_state.get("paused"):
        return None
    return float(st.session_state.get("refresh_s", DEFAULT_REFRESH_S))


# --- failures -----------------------------------------------------------------------------------
@contextmanager
def guarded(settings: Settings) -> Iterator[None]:
    """Turn orderflow errors into a banner instead of a traceback; the page keeps running."""
    try:
        yield
    except KafkaUnavailableError as exc:
        st.error(
            f"**Kafka unreachable** at `{settings.bootstrap_servers}`. "
            "Live parts retry on every refresh and recover by themselves.",
            icon=":material/cloud_off:",
        )
        st.text(str(exc))  # may name a topic taken from a record: plain text
    except OrderflowError as exc:
        st.error("That did not work:", icon=":material/error:")
        st.text(str(exc))


def record_detail(
    value: bytes | None, headers: Sequence[tuple[str, bytes | None]], label: str = "Value"
) -> None:
    """A record's value and headers side by side, as code and a table: never as markup."""
    left, right = st.columns(2)
    shown = display.show(value)
    left.markdown(f"**{label}** ({len(value or b''):,} bytes)")
    if shown.note:
        left.text(shown.note)
    left.code(shown.text, language="json" if shown.kind == "json" else None)
    right.markdown(f"**Headers** ({len(headers)})")
    right.dataframe(shape.headers_frame(headers), hide_index=True)


def clock() -> str:
    """The current UTC time of day, for "updated at" captions."""
    return time.strftime("%H:%M:%S UTC", time.gmtime())


def stage_colors(stages: list[str]) -> alt.Scale:
    """One fixed colour per flow stage, the same on every chart."""
    return alt.Scale(domain=stages, range=[STAGE_COLORS.get(name, "#888888") for name in stages])
