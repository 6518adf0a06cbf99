"""The one Kafka client factory: every client orderflow opens is built here from ``Settings``.

Only adapter modules import this; the pure core never does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from processors.settings import Settings

if TYPE_CHECKING:
    from quixstreams import Application
    from quixstreams.kafka.configuration import ConnectionConfig

# Quiet librdkafka: no log line per idle poll; errors still surface through callbacks.
_COMMON: dict[str, Any] = {"log_level": 3}

# Record size limits (bytes, as the broker's max.message.bytes counts them). The retry and DLQ
# topics take more than the main topic so that any record the main topic accepted still fits
# after a hop adds its headers (at most ~10 KiB: error message, stack trace, positions).
# Otherwise an oversized dead letter would be refused and its processor would crash-loop on it.
MAIN_RECORD_LIMIT = 1_048_588  # Kafka's default
FAILURE_RECORD_LIMIT = MAIN_RECORD_LIMIT + 256 * 1024
# Produce requests in flight per broker connection for our idempotent producers (see producer()).
IDEMPOTENT_IN_FLIGHT = 1


def connection_config(settings: Settings) -> dict[str, Any]:
    """librdkafka connection and security properties (the password included, never logged)."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "security.protocol": settings.security_protocol,
        **_COMMON,
    }
    if settings.security_protocol.startswith("SASL_"):
        config["sasl.mechanism"] = settings.sasl_mechanism
        config["sasl.username"] = settings.sasl_username
        assert settings.sasl_password is not None  # enforced by Settings validation
        config["sasl.password"] = settings.sasl_password.get_secret_value()
    if settings.ssl_ca_location is not None:
        config["ssl.ca.location"] = str(settings.ssl_ca_location)
    return config


def admin_client(settings: Settings, **overrides: Any) -> AdminClient:
    return AdminClient({**connection_config(settings), **overrides})


def producer(settings: Settings, **overrides: Any) -> Producer:
    """An idempotent producer with ``acks=all``: no duplicates from internal retries, no loss.

    Keys are partitioned with murmur2 like the Java client and Quix Streams, so an order keeps
    its partition number across orders.v1, orders.retry and orders.dlq.

    One produce request in flight per broker (``IDEMPOTENT_IN_FLIGHT``), not librdkafka's 5:
    with several, a leader taking over can refuse one batch (NOT_LEADER_OR_FOLLOWER) and accept
    the next, and librdkafka then reports the refused one delivered without an offset
    ("implicitly acked by subsequent batch success"). A leader that knows nothing of the
    producer (its first batch on that partition) accepts that gap in sequence numbers, so the
    records reported delivered were never written: issue 14, 4 orders of a rolling restart.
    """
    config = {
        **connection_config(settings),
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "max.in.flight.requests.per.connection": IDEMPOTENT_IN_FLIGHT,
        **overrides,
    }
    return Producer(config)


def consumer(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    """A consumer that sees only committed records and commits only when told to."""
    config = {
        **connection_config(settings),
        "group.id": group_id,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        **overrides,
    }
    return Consumer(config)


def quix_connection(settings: Settings) -> ConnectionConfig:
    """The same connection, in Quix Streams' typed form."""
    from quixstreams.kafka.configuration import ConnectionConfig

    fields: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol.startswith("SASL_"):
        fields |= {
            "sasl_mechanism": settings.sasl_mechanism,
            "sasl_username": settings.sasl_username,
            "sasl_password": settings.sasl_password,
        }
    if settings.ssl_ca_location is not None:
        fields["ssl_ca_location"] = str(settings.ssl_ca_location)
    return ConnectionConfig(**fields)


def quix_application(
    settings: Settings,
    consumer_group: str,
    *,
    producer_extra: dict[str, Any] | None = None,
    consumer_extra: dict[str, Any] | None = None,
    **overrides: Any,
) -> Application:
    """A Quix Streams ``Application`` wired to our connection and delivery guarantee.

    ``producer_extra``/``consumer_extra`` add librdkafka properties to our defaults (e.g. a
    stable ``transactional.id``: Quix keeps one given here instead of a random one).
    """
    from quixstreams import Application

    options: dict[str, Any] = {
        "broker_address": quix_connection(settings),
        "consumer_group": consumer_group,
        "auto_offset_reset": "earliest",
        "processing_guarantee": settings.processing_guarantee,
        "commit_interval": settings.commit_interval_s,
        "state_dir": str(settings.state_dir),
        "use_changelog_topics": False,
        "auto_create_topics": False,
        "consumer_extra_config": {
            "isolation.level": "read_committed",
            **_COMMON,
            **(consumer_extra or {}),
        },
        "producer_extra_config": {
            **_COMMON,
            "message.max.bytes": FAILURE_RECORD_LIMIT,
            # As for producer(): a refused batch is retried before the next one is sent, so no
            # output is reported delivered that a new leader never wrote (a new instance id
            # means a producer id no broker knows, which accepts such a gap).
            "max.in.flight.requests.per.connection": IDEMPOTENT_IN_FLIGHT,
            **(producer_extra or {}),
        },
        **overrides,
    }
    return Application(**options)
