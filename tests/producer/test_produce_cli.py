"""``orderflow produce`` end to end: validation before sending, summaries, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from processors.cli import cli
from processors.kafka import tail
from tests.dlq.support import create_topics, read_all
from tests.producer.test_producer import closed_port

pytestmark = pytest.mark.kafka

ORDERFLOW = [sys.executable, "-c", "from processors.cli import main; main()"]

GOOD = {
    "order_id": "ord-cli-1",
    "customer_id": "cus-1",
    "items": [{"sku": "MUG", "quantity": 2, "unit_price": "12.50"}],
    "currency": "EUR",
    "total": "25.00",
    "created_at": "2026-01-31T12:00:00Z",
}


@pytest.fixture
def run(kafka_settings):
    create_topics(kafka_settings, [kafka_settings.topic_main])
    env = {
        "ORDERFLOW_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "ORDERFLOW_TOPIC_MAIN": kafka_settings.topic_main,
    }

    def invoke(*args: str, input: str | bytes | None = None):
        return CliRunner().invoke(cli, ["produce", *args], input=input, env=env)

    return invoke


def topic_size(settings) -> int:
    return tail.topic_totals(settings, [settings.topic_main])[settings.topic_main]


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (["--item", "MUG:0:12.50", "--currency", "eur"], None, ["items.0.quantity", "currency"]),
        (["--item", "MUG:1:1", "--total", "5"], None, ["does not equal the sum"]),
        (["--item", "MUG-1-1"], None, ["expected SKU:QUANTITY:UNIT_PRICE"]),
        (["--file", "-"], json.dumps({**GOOD, "total": "1"}), ["does not equal"]),
        (["--file", "-"], "{not json", ["not valid JSON"]),
        (["--file", "-"], json.dumps([GOOD, {**GOOD, "currency": "XYZ"}]), ["order 2: currency"]),
        (["--file", "-"], json.dumps({"order_id": "x"}), ["customer_id", "items", "total"]),
        (["--item", "MUG:1:1", "--traceparent", "garbage"], None, ["traceparent"]),
    ],
)
def test_invalid_input_exits_2_and_sends_nothing(
    run, kafka_settings, args, stdin, expected
) -> None:
    result = run(*args, input=stdin)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("orderflow: error: ")
    for fragment in expected:
        assert fragment in lines[0]
    assert topic_size(kafka_settings) == 0


def test_one_order_from_flags_stdin_and_file(run, kafka_settings, tmp_path) -> None:
    result = run("--item", "MUG:2:12.50", "--item", "BOOK:1:39.90", "--order-id", "ord-flags")
    assert result.exit_code == 0, result.output
    assert "delivered ord-flags to" in result.output and "ce_id=" in result.output

    assert run(input=json.dumps(GOOD)).exit_code == 0
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(json.dumps({**GOOD, "order_id": f"ord-f{i}"}) for i in range(3)))
    result = run("--file", str(path))
    assert result.exit_code == 0, result.output
    assert "delivered 3 of 3, failed 0" in result.output

    records = read_all(kafka_settings, kafka_settings.topic_main, 5)
    by_key = {key: json.loads(value) for _, _, key, value, _ in records}
    assert set(by_key) == {b"ord-flags", b"ord-cli-1", b"ord-f0", b"ord-f1", b"ord-f2"}
    assert by_key[b"ord-flags"]["total"] == "64.90"


def test_count_with_scenario_and_summary(run, kafka_settings) -> None:
    result = run("--count", "40", "--scenario", "poison", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "delivered 40 of 40, failed 0" in result.output
    assert len(read_all(kafka_settings, kafka_settings.topic_main, 40)) == 40


def test_broker_down_reports_failures_and_exits_non_zero(tmp_path) -> None:
    env = {**os.environ, "ORDERFLOW_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}"}
    started = time.monotonic()
    done = subprocess.run(
        [*ORDERFLOW, "produce", "--count", "30", "--timeout", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert "delivered 0 of 30, failed 30" in done.stdout
    assert "Message timed out (×30)" in done.stderr
    assert "Connection refused" not in done.stderr  # librdkafka chatter stays out of the way
    assert elapsed < 20, elapsed
