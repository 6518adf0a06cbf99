"""Page logic through Streamlit's AppTest: auth gate, Kafka-down banner, form validation."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest

from tests.dashboard.conftest import new_app

pytestmark = pytest.mark.usefixtures("kafka_down")


def texts(elements) -> list[str]:
    return [element.value for element in elements]


def test_password_gate_blocks_every_page_until_signed_in() -> None:
    at = new_app({"auth": {"password": "s3cret"}}).run()
    assert not at.exception
    assert [title.value for title in at.title] == ["orderflow"]
    assert len(at.text_input) == 1 and at.text_input[0].label == "Password"
    assert not at.sidebar.button  # no navigation, no page content

    at.text_input[0].input("wrong")
    at.button[0].click().run()
    assert "Wrong password." in texts(at.error)
    assert "authenticated" not in at.session_state

    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["authenticated"] is True
    assert at.title[0].value == "Overview"


def test_password_gate_applies_to_pages_other_than_the_default() -> None:
    at = new_app({"auth": {"password": "s3cret"}}).run()
    at.switch_page("views/dlq.py").run()
    assert [title.value for title in at.title] == ["orderflow"]
    assert at.text_input[0].label == "Password"


def test_open_dashboard_on_loopback_says_so() -> None:
    at = new_app().run()
    assert at.title[0].value == "Overview"
    notes = " ".join(texts(at.sidebar.caption))
    assert "No login configured" in notes and "127.0.0.1" in notes


OIDC = {
    "auth": {
        "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
        "cookie_secret": "not-a-real-secret",
        "client_id": "orderflow",
        "client_secret": "not-a-real-secret",
        "server_metadata_url": "https://login.example/.well-known/openid-configuration",
    }
}


def test_oidc_gate_asks_for_login() -> None:
    at = new_app(OIDC)
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception
    assert [title.value for title in at.title] == ["orderflow"]
    assert [button.label for button in at.button] == ["Log in"]


def test_oidc_signed_in_user_sees_the_pages() -> None:
    at = new_app(OIDC)
    at.user = {"is_logged_in": True, "email": "ops@example.com"}
    at.run()
    assert not at.exception
    assert at.title[0].value == "Overview"
    assert "Signed in as ops@example.com" in texts(at.sidebar.caption)


@pytest.mark.parametrize("listen_address", ["0.0.0.0", ""], indirect=True)
def test_open_dashboard_refuses_to_render_beyond_loopback() -> None:
    at = new_app().run()
    assert not at.title
    assert any("must listen on 127.0.0.1 only" in text for text in texts(at.error))


def test_overview_shows_banner_not_traceback_when_kafka_is_down() -> None:
    at = new_app().run()
    assert not at.exception
    banners = texts(at.error)
    assert len(banners) == 1 and "Kafka unreachable" in banners[0]
    assert "recover by themselves" in banners[0]


@pytest.mark.parametrize("page", ["views/topics.py", "views/trace.py", "views/dlq.py"])
def test_every_live_page_shows_banner_when_kafka_is_down(page: str) -> None:
    at = new_app().run()
    if page == "views/trace.py":
        at.session_state["trace_order_id"] = "ord-1"
    at.switch_page(page).run()
    assert not at.exception
    banners = [text for text in texts(at.error) if "Kafka unreachable" in text]
    assert len(banners) == 1, texts(at.error)


def test_produce_form_reports_each_bad_field_and_sends_nothing() -> None:
    at = new_app().run()
    at.switch_page("views/produce.py").run()
    assert not at.exception
    at.text_input(key="pf_customer_id").input("")
    at.text_input(key="pf_order_id").input("bad id with spaces")
    at.selectbox(key="pf_scenario").select("fail_then_succeed")
    at.number_input(key="pf_fail_attempts").set_value(0)
    at.button[0].click().run()
    assert not at.exception
    errors = texts(at.error)
    assert any(text.startswith("String should match pattern") for text in errors), errors
    assert any("at least 1 character" in text for text in errors), errors
    assert "must be between 1 and 100" in errors
    assert texts(at.warning) == ["Nothing was sent: fix the fields marked above."]
    assert not at.success


def test_produce_form_with_kafka_down_says_not_sent() -> None:
    at = new_app().run()
    at.switch_page("views/produce.py").run()
    at.button[0].click().run()
    assert not at.exception
    assert any(text.startswith("Not sent:") for text in texts(at.error))


def test_bulk_generator_needs_a_scenario_weight() -> None:
    at = new_app().run()
    at.switch_page("views/produce.py").run()
    for name in ("success", "transient", "permanent", "poison"):
        at.number_input(key=f"mix_{name}").set_value(0)
    at.button[1].click().run()
    assert not at.exception
    assert "give at least one scenario a weight above 0" in texts(at.error)


def test_password_gate_slows_down_and_locks_out_guessing(caplog, monkeypatch) -> None:
    from dashboard import ui
    from dashboard.throttle import LoginThrottle

    throttle = LoginThrottle(base_delay_s=3600)  # no AppTest run is ever that slow
    monkeypatch.setattr(ui, "login_throttle", lambda: throttle)
    at = new_app({"auth": {"password": "s3cret"}}).run()
    guesses = ["guess-1", "guess-2"]
    with caplog.at_level("INFO", logger="dashboard.ui"):
        for guess in guesses:
            at.text_input[0].input(guess)
            at.button[0].click().run()
            assert "Wrong password." in texts(at.error)
        at.text_input[0].input("s3cret")  # right, but too soon after two failures
        at.button[0].click().run()
    assert "authenticated" not in at.session_state
    assert any(text.startswith("Slow down: try again in") for text in texts(at.error))
    refused = [r.getMessage() for r in caplog.records if "login result=" in r.getMessage()]
    assert len(refused) == 3 and all("guess" not in line for line in refused)
    assert ui.LOGIN_FAILURES.labels("wrong_password")._value.get() >= 2
    assert ui.LOGIN_FAILURES.labels("throttled")._value.get() >= 1
    for _ in range(throttle.client_limit):
        throttle.failed("unknown", time.monotonic())
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    assert any(text.startswith("Too many failed logins") for text in texts(at.error))
    assert "authenticated" not in at.session_state


def test_refused_logins_are_counted_on_the_dashboards_metrics_endpoint(app_env) -> None:
    from dashboard import ui
    from deploy.localkafka.net import free_ports

    port = free_ports(1)[0]
    app_env({"ORDERFLOW_METRICS_PORT": str(port)})
    at = new_app({"auth": {"password": "s3cret"}}).run()
    at.text_input[0].input("not-it")
    at.button[0].click().run()
    assert "Wrong password." in texts(at.error)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        body = answer.read().decode()
    counted = re.search(
        r'^orderflow_dashboard_login_failures_total\{outcome="wrong_password"\} (\S+)$',
        body,
        re.MULTILINE,
    )
    assert counted is not None and float(counted.group(1)) >= 1, body
    assert "not-it" not in body
    ui.metrics_endpoint.clear()  # the server thread stays; a later test takes another port
    ui.login_throttle.clear()
