"""Clients kept open between calls (a dashboard refresh reuses them), all built the same way.

A kept client outlives outages: when its broker goes away, librdkafka keeps reconnecting in its
own threads and reports every failure. Without a ``logger`` it writes those reports to stderr as
raw ``%3|…|FAIL|…`` lines; every client built here hands them to the Python logger
``processors.kafka.rdkafka`` instead (the CLI silences it; a service's logging config formats
it). librdkafka delivers a client's lines only when that client is polled.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from processors.kafka import clients
from processors.settings import Settings

RDKAFKA_LOGGER = logging.getLogger("processors.kafka.rdkafka")

ConnectionKey = tuple[tuple[str, str], ...]

_admins: dict[ConnectionKey, AdminClient] = {}
_admins_lock = threading.Lock()


def connection_key(settings: Settings) -> ConnectionKey:
    """Equal for settings that reach the same cluster the same way: one kept client serves both.
    Holds the password (never log it)."""
    return tuple(sorted((k, str(v)) for k, v in clients.connection_config(settings).items()))


def reader(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    """A consumer (``clients.consumer``) whose librdkafka lines go to ``RDKAFKA_LOGGER``; its
    own polls deliver them. Pool it yourself: a consumer serves one thread at a time."""
    return clients.consumer(settings, group_id, logger=RDKAFKA_LOGGER, **overrides)


def admin(settings: Settings) -> AdminClient:
    """The one AdminClient of this connection, created on first use and kept for the life of
    the process (safe to share between threads). Each call delivers the lines librdkafka
    queued since the previous one, so they stay few even while the broker is away."""
    key = connection_key(settings)
    with _admins_lock:
        client = _admins.get(key)
        if client is None:
            client = _admins[key] = clients.admin_client(settings, logger=RDKAFKA_LOGGER)
    client.poll(0)
    return client
