"""One-line explanations of authentication, TLS and authorization failures.

``check_access`` is what a command runs first: one metadata request that either succeeds,
fails with a line naming the user and the cause (wrong password, untrusted certificate, a
PLAINTEXT client on a TLS listener, …), or — for any other failure, e.g. a broker that is down —
returns and lets the command report the problem its own way. No password is ever part of a
message: only the user name, the mechanism and the CA file's path.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException

from processors.errors import AuthenticationError, AuthorizationError
from processors.kafka.clients import admin_client
from processors.settings import Settings

log = logging.getLogger(__name__)

DENIED_RESOURCE = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "topic",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "group",
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "transactional id",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "cluster",
}


def who(settings: Settings) -> str:
    """``user main (SCRAM-SHA-512)``, or ``a PLAINTEXT client (no user)``."""
    if settings.security_protocol.startswith("SASL_"):
        return f"user {settings.sasl_username} ({settings.sasl_mechanism})"
    return f"a {settings.security_protocol} client (no user)"


def cause(settings: Settings, text: str) -> str | None:
    """The access problem librdkafka's error ``text`` reveals, as one line; else ``None``."""
    where = settings.bootstrap_servers
    lowered = text.lower()
    if "invalid credentials" in lowered or "sasl authentication error" in lowered:
        return f"Kafka at {where} rejected {who(settings)}: wrong password or unknown user"
    if "unsupported sasl mechanism" in lowered or "unsupported_sasl_mechanism" in lowered:
        return f"Kafka at {where} does not offer {settings.sasl_mechanism} to {who(settings)}"
    if "certificate verify failed" in lowered or "unable to get local issuer" in lowered:
        ca = settings.ssl_ca_location or "unset: the system's CAs"
        return (
            f"TLS to {where} failed for {who(settings)}: the broker's certificate is not "
            f"signed by a trusted CA (ORDERFLOW_SSL_CA_LOCATION={ca})"
        )
    closed = "closed by peer" in lowered
    if closed and "apiversion_query" in lowered and not settings.security_protocol.endswith("SSL"):
        return (
            f"Kafka at {where} closed the connection of {who(settings)} at its first request: "
            "the listener expects TLS (set ORDERFLOW_SECURITY_PROTOCOL=SASL_SSL, the user's "
            "credentials and ORDERFLOW_SSL_CA_LOCATION)"
        )
    if closed and "in state up" in lowered and not settings.security_protocol.startswith("SASL"):
        return (
            f"Kafka at {where} closed the connection of {who(settings)} after the TLS handshake: "
            "the listener expects SASL (set ORDERFLOW_SECURITY_PROTOCOL=SASL_SSL and the user's "
            "credentials)"
        )
    if "ssl handshake failed" in lowered:
        return f"TLS handshake with {where} failed for {who(settings)}: {_tail(text)}"
    return None


def denied(settings: Settings, err: KafkaError, operation: str, name: str) -> str | None:
    """``user producer (…) is not allowed to WRITE topic orders.dlq``, if ``err`` is a denial."""
    resource = DENIED_RESOURCE.get(err.code())
    if resource is None:
        return None
    target = resource if resource == "cluster" else f"{resource} {name}"
    return f"{who(settings)} is not allowed to {operation} {target} ({err.name()})"


def raise_if_denied(settings: Settings, exc: BaseException, operation: str, name: str) -> None:
    """Raise ``AuthorizationError`` when ``exc`` wraps an authorization failure."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    if isinstance(err, KafkaError) and (line := denied(settings, err, operation, name)):
        raise AuthorizationError(line) from None


def raise_if_topic_denied(
    settings: Settings, topic: str, operation: str, timeout_s: float = 10.0
) -> None:
    """Raise ``AuthorizationError`` if the broker hides ``topic`` from this principal (no
    DESCRIBE: Kafka then answers "not authorized" rather than revealing whether it exists)."""
    try:
        metadata = admin_client(settings).list_topics(topic, timeout=timeout_s)
    except KafkaException:
        return  # not an authorization answer: the caller reports it
    err = metadata.topics.get(topic).error if topic in metadata.topics else None
    if err is not None and (line := denied(settings, err, operation, topic)):
        raise AuthorizationError(line)


def check_access(settings: Settings, timeout_s: float = 15.0) -> None:
    """Fetch metadata once; raise ``AuthenticationError`` (one line) on an access problem.

    Returns quietly on success and on failures that are not about access (the caller's own
    error handling reports a broker that is down). Bounded by ``timeout_s``.
    """
    seen: list[str] = []
    admin = admin_client(
        settings,
        error_cb=lambda err: seen.append(err.str()),
        logger=_Collector(seen),
        **{"log_level": 6},  # the "closed by peer" lines are INFO
    )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin.list_topics(timeout=min(2.0, max(0.1, deadline - time.monotonic())))
            return
        except KafkaException as exc:
            seen.append(str(exc))
        admin.poll(0.1)  # serves error_cb and the log lines
        for text in seen:
            if line := cause(settings, text):
                raise AuthenticationError(line)
        if any("refused" in text.lower() for text in seen) or time.monotonic() >= deadline:
            log.debug("check_access inconclusive: %s", seen[-1:] or "no error seen")
            return


class _Collector(logging.Logger):
    """A librdkafka ``logger`` that keeps the lines (they carry the TLS/SASL causes)."""

    def __init__(self, sink: list[str]) -> None:
        super().__init__("processors.kafka.access.rdkafka")
        self._sink = sink

    def log(self, level: int, msg: object, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        self._sink.append(str(msg) % args if args else str(msg))


def _tail(text: str) -> str:
    return text.strip().splitlines()[-1][-200:] if text.strip() else "no detail"
