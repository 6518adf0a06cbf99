from __future__ import annotations

import os
import socket

from processors.runtime import consumer_extra, identity, instance_id, producer_extra
from processors.settings import load_settings


def test_stable_ids_with_an_instance_id() -> None:
    settings = load_settings(instance_id="eu-1")
    assert producer_extra(settings, "main") == {
        "transactional.id": "orderflow-main-eu-1",
        "transaction.timeout.ms": 20000,
    }
    assert producer_extra(settings, "retry")["transactional.id"] == "orderflow-retry-eu-1"
    assert consumer_extra(settings, "retry") == {
        "session.timeout.ms": 10000,
        "group.instance.id": "orderflow-retry-eu-1",
    }
    assert identity(settings, "retry").processor == "orderflow-retry/0.1.0/eu-1"
    assert identity(settings, "retry").consumer_group == settings.group_retry


def test_default_instance_is_host_and_pid_without_static_membership() -> None:
    settings = load_settings()
    assert instance_id(settings) == f"{socket.gethostname()}-{os.getpid()}"
    assert "group.instance.id" not in consumer_extra(settings, "main")


def test_at_least_once_has_no_transactions() -> None:
    assert producer_extra(load_settings(processing_guarantee="at-least-once"), "main") == {}
