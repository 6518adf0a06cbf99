"""What both processors set up the same way: identity, transactional id, the guarded step."""

from __future__ import annotations

import os
import socket
import warnings
from typing import Any, Literal

from processors import __version__
from processors.core.policy import build_policy
from processors.core.routing import Identity
from processors.handler import build_handler
from processors.metrics import Metrics
from processors.pipeline import GuardedStep, Topics
from processors.settings import Settings

Role = Literal["main", "retry"]


def import_quixstreams() -> None:
    """Import Quix Streams once, swallowing the authlib deprecation warning its import of
    confluent-kafka's schema registry prints on every start (third-party noise; authlib forces
    it to "always", so a filter cannot silence it)."""
    with warnings.catch_warnings(record=True):
        import quixstreams  # noqa: F401


def instance_id(settings: Settings) -> str:
    """``settings.instance_id``, else ``<hostname>-<pid>`` (unique, but not stable across
    restarts: see docs/retry-semantics.md on fencing)."""
    return settings.instance_id or f"{socket.gethostname()}-{os.getpid()}"


def consumer_group(settings: Settings, role: Role) -> str:
    return settings.group_main if role == "main" else settings.group_retry


def identity(settings: Settings, role: Role) -> Identity:
    return Identity(
        name=f"orderflow-{role}",
        version=__version__,
        instance=instance_id(settings),
        consumer_group=consumer_group(settings, role),
    )


def transactional_id(settings: Settings, role: Role) -> str:
    """Stable per instance, so a restarted instance fences its predecessor's open transaction
    at once. Two instances running at the same time must never share an instance id."""
    return f"orderflow-{role}-{instance_id(settings)}"


def raise_if_denied(settings: Settings, role: Role, exc: BaseException) -> None:
    """Raise ``AuthorizationError`` (principal, operation, resource) if an ACL stopped ``role``."""
    from confluent_kafka import KafkaError, KafkaException

    from processors.kafka.access import raise_if_denied as raise_denied

    while exc is not None and not isinstance(exc, KafkaException):
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    if exc is None or not exc.args or not isinstance(exc.args[0], KafkaError):
        return
    source = settings.topic_main if role == "main" else settings.topic_retry
    operation, name = {
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: (
            "WRITE",
            transactional_id(settings, role),
        ),
        KafkaError.GROUP_AUTHORIZATION_FAILED: ("READ", consumer_group(settings, role)),
    }.get(exc.args[0].code(), ("READ/WRITE", f"{source} or an output topic"))
    raise_denied(settings, exc, operation, name)


def producer_extra(settings: Settings, role: Role) -> dict[str, Any]:
    """librdkafka producer properties of a processor (transactions only in exactly-once)."""
    if settings.processing_guarantee != "exactly-once":
        return {}
    return {
        "transactional.id": transactional_id(settings, role),
        "transaction.timeout.ms": settings.transaction_timeout_ms,
    }


def consumer_extra(settings: Settings, role: Role) -> dict[str, Any]:
    """librdkafka consumer properties of a processor. With an explicit ``instance_id`` the
    consumer is a static group member: a restarted instance takes its partitions back at once
    instead of waiting for the crashed one's session to expire."""
    extra: dict[str, Any] = {"session.timeout.ms": settings.session_timeout_ms}
    if settings.instance_id:
        extra["group.instance.id"] = f"orderflow-{role}-{settings.instance_id}"
    return extra


def build_step(settings: Settings, role: Role, metrics: Metrics) -> GuardedStep:
    """The guarded step with the configured handler and policy; raises ``SettingsError`` for a
    bad handler or policy, before any Kafka client exists."""
    return GuardedStep(
        handler=build_handler(settings),
        policy=build_policy(settings),
        identity=identity(settings, role),
        topics=Topics(settings.topic_retry, settings.topic_dlq, settings.topic_processed),
        first_hop=role == "main",
        metrics=metrics,
    )
