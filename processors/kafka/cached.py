"""Clients kept open between calls (a dashboard refresh reuses them), all built the same way.

A kept client outlives outages: when its broker goes away, librdkafka keeps reconnecting in its
own threads and reports every failure. Without a ``logger`` it writes those reports to stderr as
raw ``%3|…|FAIL|…`` lines; every client built here hands them to the Python logger
``processors.kafka.rdkafka`` instead (the CLI silences it; a service's logging config formats
it). librdkafka delivers a client's lines only when that client is polled.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from processors.kafka import clients
from processors.settings import Settings

RDKAFKA_LOGGER = logging.getLogger("processors.kafka.rdkafka")

ConnectionKey = tuple[tuple[str, str], ...]

_admins: dict[ConnectionKey, AdminClient] = {}
_admins_lock = threading.Lock()
_offset_readers: dict[tuple[ConnectionKey, str], tuple[Consumer, threading.Lock]] = {}


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


@contextlib.contextmanager
def offset_reader(settings: Settings, group_id: str) -> Iterator[Consumer]:
    """The kept consumer of ``group_id`` that reads its committed offsets, for one thread at a
    time. It never subscribes, so it never joins the group or commits.

    Why not ``AdminClient.list_consumer_group_offsets``: on a cluster whose group coordinator
    is not ready yet (no group ever committed), librdkafka 2.12's admin client dereferences a
    null consumer group on the NOT_COORDINATOR answer and the process dies with SIGSEGV
    (``rd_kafka_handle_OffsetFetch`` → ``rd_kafka_cgrp_op``). A consumer has a group handle and
    retries the coordinator lookup instead."""
    key = (connection_key(settings), group_id)
    with _admins_lock:
        kept = _offset_readers.get(key)
        if kept is None:
            consumer = reader(settings, group_id, **{"enable.auto.commit": False})
            kept = _offset_readers[key] = (consumer, threading.Lock())
    consumer, lock = kept
    with lock:
        yield consumer
