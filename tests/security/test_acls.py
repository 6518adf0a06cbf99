"""The least-privilege table (processors.acls): pure, no broker."""

from __future__ import annotations

import pytest

from processors.acls import ROLES, Grant, all_grants, grants, transactional_id_prefix
from processors.runtime import transactional_id
from processors.settings import Settings

NAMES = Settings.model_construct(
    topic_main="a.v1", topic_retry="a.retry", topic_dlq="a.dlq", topic_processed="a.done",
    topic_redriven="a.redriven", group_main="ga-main", group_retry="ga-retry", instance_id="i-1",
)  # fmt: skip


def ops(role: str, kind: str, name: str) -> set[str]:
    return {g.operation for g in grants(role, NAMES) if g.resource_type == kind and g.name == name}


def test_main_reads_its_topic_and_writes_only_the_outputs() -> None:
    assert ops("main", "TOPIC", "a.v1") == {"READ", "DESCRIBE", "DESCRIBE_CONFIGS"}
    for topic in ("a.retry", "a.dlq", "a.done"):
        assert ops("main", "TOPIC", topic) == {"WRITE", "DESCRIBE", "DESCRIBE_CONFIGS"}
    assert ops("main", "GROUP", "ga-main") == {"READ", "DESCRIBE"}
    assert ops("main", "GROUP", "ga-retry") == set()


def test_retry_reads_the_retry_topic_and_writes_the_outputs() -> None:
    assert "READ" in ops("retry", "TOPIC", "a.retry") and "WRITE" in ops(
        "retry", "TOPIC", "a.retry"
    )
    assert ops("retry", "TOPIC", "a.v1") == set()
    assert ops("retry", "GROUP", "ga-retry") == {"READ", "DESCRIBE"}


@pytest.mark.parametrize("role", ["main", "retry"])
def test_transactional_id_prefix_covers_the_processors_ids(role: str) -> None:
    [prefix] = [g for g in grants(role, NAMES) if g.resource_type == "TRANSACTIONAL_ID"][:1]
    assert prefix.pattern == "PREFIXED" and prefix.name == transactional_id_prefix(role)
    assert transactional_id(NAMES, role).startswith(prefix.name)
    other = "retry" if role == "main" else "main"
    assert not transactional_id(NAMES, other).startswith(prefix.name)


def test_producer_only_writes_the_main_topic() -> None:
    assert grants("producer", NAMES) == [
        Grant("User:producer", "TOPIC", "a.v1", "LITERAL", "DESCRIBE"),
        Grant("User:producer", "TOPIC", "a.v1", "LITERAL", "WRITE"),
    ]


def test_operator_reads_everything_writes_main_and_retry_deletes_nothing() -> None:
    for topic in ("a.v1", "a.retry", "a.dlq", "a.done", "a.redriven"):
        assert {"READ", "DESCRIBE"} <= ops("operator", "TOPIC", topic)
    operator = grants("operator", NAMES)
    writable = {g.name for g in operator if g.operation == "WRITE" and g.resource_type == "TOPIC"}
    assert writable == {"a.v1", "a.retry", "a.redriven"}  # redrive, and its ledger
    transactions = {(g.name, g.pattern) for g in operator if g.resource_type == "TRANSACTIONAL_ID"}
    assert transactions == {("orderflow-dlq-", "PREFIXED")}  # the replay's own ids only
    forbidden = {"CREATE", "DELETE", "ALTER", "ALTER_CONFIGS", "ALL"}
    assert not forbidden & {g.operation for g in grants("operator", NAMES)}
    assert ops("operator", "GROUP", "ga-main") == {"DESCRIBE"}  # lag only, never join


def test_admin_manages_topics_but_reads_and_writes_nothing() -> None:
    assert {g.resource_type for g in grants("admin", NAMES)} == {"TOPIC"}
    assert not {"READ", "WRITE"} & {g.operation for g in grants("admin", NAMES)}
    assert {"CREATE", "DELETE"} <= ops("admin", "TOPIC", "a.dlq")


def test_console_only_reads_and_describes() -> None:
    console = grants("console", NAMES)
    assert {g.operation for g in console} == {"READ", "DESCRIBE", "DESCRIBE_CONFIGS"}
    assert {g.resource_type for g in console} == {"TOPIC", "GROUP"}
    assert ops("console", "TOPIC", "a.dlq") == {"READ", "DESCRIBE", "DESCRIBE_CONFIGS"}
    # It sees the processors' lag, but cannot join (no READ) or own any group.
    assert ops("console", "GROUP", "ga-main") == {"DESCRIBE"}
    assert {g.name for g in console if g.resource_type == "GROUP"} == {"ga-main", "ga-retry"}


def test_no_wildcards_and_names_follow_the_settings() -> None:
    every = all_grants(NAMES)
    assert {g.principal for g in every} == {f"User:{r}" for r in ROLES}
    assert all(g.name != "*" and g.operation != "ALL" for g in every)
    topics = {g.name for g in every if g.resource_type == "TOPIC"}
    assert topics == {"a.v1", "a.retry", "a.dlq", "a.done", "a.redriven"}


def test_no_processed_topic_means_no_grant_for_it() -> None:
    names = NAMES.model_copy(update={"topic_processed": ""})
    assert all(g.name for g in all_grants(names))
    assert "a.done" not in {g.name for g in all_grants(names)}


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        grants("root", NAMES)  # type: ignore[arg-type]
