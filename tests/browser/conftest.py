"""A real stack for browser tests: fresh topics, the two processors, ``orderflow dashboard`` on a
free port, and headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from processors.kafka.topics import provision
from processors.settings import Settings, load_settings
from tests.processors.harness import Proc, delete_topics, settings_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
FAST_RETRIES = {
    "max_attempts": 3,
    "backoff_initial_ms": 300,
    "backoff_multiplier": 2.0,
    "backoff_max_ms": 2000,
    "commit_interval_s": 0.2,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    settings: Settings
    url: str
    logs: dict[str, Path]

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {name}\n{path.read_text(errors='replace')[-3000:]}"
            for name, path in self.logs.items()
        )


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dashboard exited:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"dashboard not healthy within {timeout_s}s")


@contextmanager
def running_dashboard(env: dict[str, str], workdir: Path) -> Iterator[tuple[str, Path]]:
    """``orderflow dashboard`` on a free port with ``env``; yields its URL and log file."""
    port = free_port()
    log = workdir / "dashboard.log"
    with log.open("wb") as out:
        dashboard = subprocess.Popen(
            [sys.executable, "-m", "processors", "dashboard", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, dashboard, log)
        yield url, log
    finally:
        dashboard.terminate()  # the command passes SIGTERM on to Streamlit
        try:
            dashboard.wait(timeout=15)
        except subprocess.TimeoutExpired:
            dashboard.kill()


@pytest.fixture
def stack(kafka_bootstrap: str, unique: str, tmp_path: Path) -> Iterator[Stack]:
    """Topics of its own, ``python -m processors.main``/``.retry`` and ``orderflow dashboard``."""
    settings = load_settings(
        bootstrap_servers=kafka_bootstrap,
        topic_main=f"b-{unique}.orders.v1",
        topic_retry=f"b-{unique}.orders.retry",
        topic_dlq=f"b-{unique}.orders.dlq",
        topic_processed=f"b-{unique}.orders.processed",
        topic_redriven=f"b-{unique}.orders.dlq.redriven",
        group_main=f"b-{unique}-main",
        group_retry=f"b-{unique}-retry",
        state_dir=tmp_path / "state",
        **FAST_RETRIES,
    )
    provision(settings)  # the real topic specs: the DLQ takes any record main accepted
    env = settings_env(settings, instance_id=f"browser-{unique}")
    processors = [Proc(role, env, tmp_path / f"{role}.log").start() for role in ("main", "retry")]
    try:
        with running_dashboard(env, tmp_path) as (url, dash_log):
            logs = {
                "main": processors[0].log_path,
                "retry": processors[1].log_path,
                "dashboard": dash_log,
            }
            yield Stack(settings, url, logs)
    finally:
        for proc in processors:
            proc.kill()
        delete_topics(settings)


@pytest.fixture
def browser_page():
    """A fresh headless Chromium page (1400×1000)."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: `sudo apt-get install chromium` enables this test")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # two shared cores: a page can take seconds to settle

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,  # Playwright gives each launch a fresh temporary profile
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(20_000)
            yield page
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:
    """Save a screenshot of the current page as ``artifacts/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Elements still being computed show as skeletons; wait until the page has settled.
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=\"stSkeleton\"]').length === 0",
        timeout=15_000,
    )
    # Streamlit scrolls inside its main container, so a "full page" shot is one viewport:
    # make the viewport as tall as the content for the picture.
    height = page.evaluate(
        "Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"] *')]"
        ".map(e => e.getBoundingClientRect().bottom + window.scrollY), 1000)"
    )
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 4000)})
    path = SCREENSHOTS / f"{name}.png"
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)
    return path
