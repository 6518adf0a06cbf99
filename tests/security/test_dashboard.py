"""The dashboard as the operator principal, its Kafka credentials from Streamlit secrets."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from confluent_kafka import KafkaException, TopicPartition

from processors.core import headers as h
from processors.kafka import clients
from processors.settings import Settings
from tests.dashboard.conftest import settings_env
from tests.dlq.support import read_all, write
from tests.security.conftest import ROOT, SecureCluster
from tests.security.support import orderflow

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def commit_once(settings: Settings, topic: str) -> None:
    """Make the cluster's __consumer_offsets exist before the dashboard asks for group offsets.

    Against a cluster where no group ever committed, the overview's ListConsumerGroupOffsets
    crashed the dashboard process (SIGSEGV in librdkafka 2.12.1's rd_kafka_handle_OffsetFetch,
    seen here with gdb): a librdkafka bug independent of security, reported, not hidden.
    """
    consumer = clients.consumer(settings, "orderflow-test-first-commit")
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
                return
            except KafkaException:  # NOT_COORDINATOR while __consumer_offsets is created
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


def test_operator_dashboard_reads_and_produces_with_secrets_credentials(
    secure: SecureCluster, names: Settings
) -> None:
    assert orderflow(secure, secure.env("admin", names), "topics", "create").returncode == 0
    superuser = secure.as_user("broker", names)
    dead = [(h.DLQ_REASON, b"non_retryable"), (h.ATTEMPTS, b"1")]
    write(superuser, names.topic_dlq, [(b"ord-d1", b"{}", dead)])
    commit_once(superuser, names.topic_dlq)
    env = secure.env(None, names)  # topics and groups only: the credentials come from secrets
    env |= settings_env(names.model_copy(update={"bootstrap_servers": secure.bootstrap}))
    password = secure.passwords()["operator"]
    secrets = {
        "kafka": {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "operator",
            "sasl_password": password,
            "ssl_ca_location": str(secure.secrets.ca_file),
        }
    }
    probe = subprocess.run(
        [sys.executable, "-m", "tests.security.dashboard_probe", json.dumps(secrets)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=240,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    (secure.log_dir / "dashboard-probe.log").write_text(probe.stderr)
    assert probe.returncode == 0, probe.stderr[-3000:]
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert not result["exception"], result["exception"]
    pages = result["pages"]
    assert all(not page["errors"] for page in pages.values()), pages
    assert any(text.startswith("**1** dead letters") for text in pages["dlq"]["texts"])
    assert pages["produce"]["success"][0].startswith("Sent order `ord-dash-1`")
    assert not any(password in text for page in pages.values() for text in page["texts"])
    sent = [r for r in read_all(superuser, names.topic_main, 1, 5) if r[2] == b"ord-dash-1"]
    assert len(sent) == 1
