"""Least-privilege ACLs per orderflow principal, as plain data (no Kafka import).

``grants(role, settings)`` says what each principal may do, following the configured topic and
group names; ``processors.kafka.acls`` applies them with the Admin API. Every other operation is
denied by the broker (``allow.everyone.if.no.acl.found=false``).

- ``main``: read the main topic; write retry, DLQ and processed; its group; its transactions.
- ``retry``: read the retry topic; write retry, DLQ and processed; its group; its transactions.
- ``producer``: write the main topic (idempotently: WRITE implies it since Kafka 3.0, KIP-679).
- ``operator`` (dashboard, ``orderflow dlq``): read all four topics; write main and retry
  (redrive); the tail-reader and replay groups; see the processors' groups' offsets (lag).
- ``admin`` (``orderflow topics``): create, inspect, alter and delete the four topics.
- ``console`` (Redpanda Console on the VMs): read and describe the topics and the redrive
  ledger, describe the processors' groups; no write, no group of its own (it reads by
  assignment), no topic changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from processors.settings import Settings

Role = Literal["main", "retry", "producer", "operator", "admin", "console"]
ROLES: tuple[Role, ...] = ("main", "retry", "producer", "operator", "admin", "console")

ResourceType = Literal["TOPIC", "GROUP", "TRANSACTIONAL_ID"]
PatternType = Literal["LITERAL", "PREFIXED"]

# Fixed names the operator's readers use (processors.kafka.tail, processors.dlq.replay).
TAIL_GROUP = "orderflow-tail-reader"
REPLAY_GROUP_PREFIX = "orderflow-dlq-replay"


@dataclass(frozen=True, order=True)
class Grant:
    """``principal`` may do ``operation`` on the ``resource_type`` named (or prefixed) ``name``."""

    principal: str  # "User:<name>"
    resource_type: ResourceType
    name: str
    pattern: PatternType
    operation: str  # Kafka's AclOperation name: READ, WRITE, DESCRIBE, CREATE…


# processors.dlq.replay.transactional_id: orderflow-dlq-replay.<group> / orderflow-dlq-redrive.<run>
REPLAY_TRANSACTION_PREFIX = "orderflow-dlq-"


def principal(username: str) -> str:
    return f"User:{username}"


def transactional_id_prefix(role: Literal["main", "retry"]) -> str:
    """What ``processors.runtime.transactional_id`` starts with for ``role``."""
    return f"orderflow-{role}-"


def grants(role: Role, settings: Settings, username: str | None = None) -> list[Grant]:
    """Every grant of ``role`` (as user ``username``, default the role's name), sorted."""
    who = principal(username or role)
    out: set[Grant] = set()

    def allow(kind: ResourceType, name: str, *ops: str, pattern: PatternType = "LITERAL") -> None:
        out.update(Grant(who, kind, name, pattern, op) for op in ops)

    outputs = [settings.topic_retry, settings.topic_dlq]
    if settings.topic_processed:
        outputs.append(settings.topic_processed)
    if role in ("main", "retry"):
        source = settings.topic_main if role == "main" else settings.topic_retry
        group = settings.group_main if role == "main" else settings.group_retry
        # Quix Streams checks every topic's configuration at start (DESCRIBE_CONFIGS).
        allow("TOPIC", source, "READ", "DESCRIBE", "DESCRIBE_CONFIGS")
        for topic in outputs:
            allow("TOPIC", topic, "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS")
        allow("GROUP", group, "READ", "DESCRIBE")
        allow(
            "TRANSACTIONAL_ID", transactional_id_prefix(role), "WRITE", "DESCRIBE",
            pattern="PREFIXED",
        )  # fmt: skip
    elif role == "producer":
        allow("TOPIC", settings.topic_main, "WRITE", "DESCRIBE")
    elif role == "operator":
        for topic in (*settings.all_topics, settings.topic_redriven):
            allow("TOPIC", topic, "READ", "DESCRIBE", "DESCRIBE_CONFIGS")
        # Redrive: republish to main or retry, and record each in the ledger, in one
        # transaction (exactly-once) under the replay's transactional ids.
        for topic in (settings.topic_main, settings.topic_retry, settings.topic_redriven):
            allow("TOPIC", topic, "WRITE")
        allow(
            "TRANSACTIONAL_ID", REPLAY_TRANSACTION_PREFIX, "WRITE", "DESCRIBE", pattern="PREFIXED"
        )
        allow("GROUP", TAIL_GROUP, "READ", "DESCRIBE")
        allow("GROUP", REPLAY_GROUP_PREFIX, "READ", "DESCRIBE", pattern="PREFIXED")
        for group in (settings.group_main, settings.group_retry):
            allow("GROUP", group, "DESCRIBE")
    elif role == "admin":
        for topic in (*settings.all_topics, settings.topic_redriven):
            allow(
                "TOPIC", topic, "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER",
                "ALTER_CONFIGS", "DELETE",
            )  # fmt: skip
    elif role == "console":
        for topic in (*settings.all_topics, settings.topic_redriven):
            allow("TOPIC", topic, "READ", "DESCRIBE", "DESCRIBE_CONFIGS")
        for group in (settings.group_main, settings.group_retry):
            allow("GROUP", group, "DESCRIBE")
    else:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    return sorted(out)


def all_grants(settings: Settings) -> list[Grant]:
    return [grant for role in ROLES for grant in grants(role, settings)]
