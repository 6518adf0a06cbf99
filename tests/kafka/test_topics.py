"""Topic provisioning: the spec (pure) and create/check/describe against a real broker."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner, Result
from confluent_kafka.admin import NewTopic

from deploy.localkafka.net import free_ports
from processors.cli import cli
from processors.errors import KafkaUnavailableError, TopicDriftError
from processors.kafka import clients
from processors.kafka.topics import (
    describe_topics,
    differences,
    ensure_topics,
    min_insync_replicas,
    provision,
    topic_specs,
)
from processors.settings import DAY_MS, Settings, load_settings


# --- the spec (pure) -----------------------------------------------------------------------------
@pytest.mark.parametrize(("rf", "min_isr"), [(1, 1), (2, 1), (3, 2), (5, 4)])
def test_min_insync_replicas(rf: int, min_isr: int) -> None:
    assert min_insync_replicas(rf) == min_isr


def test_specs_are_explicit_and_share_the_partition_count() -> None:
    settings = load_settings(partitions=6, replication_factor=3)
    specs = {spec.name: spec for spec in topic_specs(settings)}
    assert list(specs) == [
        "orders.v1",
        "orders.retry",
        "orders.dlq",
        "orders.processed",
        "orders.dlq.redriven",
    ]
    for spec in specs.values():
        assert (spec.partitions, spec.replication_factor) == (6, 3)
        assert spec.config["min.insync.replicas"] == "2"
    ledger = specs.pop("orders.dlq.redriven")
    assert (ledger.config["cleanup.policy"], ledger.config["retention.ms"]) == ("compact", "-1")
    assert {spec.config["cleanup.policy"] for spec in specs.values()} == {"delete"}
    assert int(specs["orders.dlq"].config["retention.ms"]) >= 14 * DAY_MS
    assert int(specs["orders.retry"].config["retention.ms"]) >= 7 * DAY_MS
    # Room for failure headers on the hops: retry and DLQ take larger records than main.
    main_limit = int(specs["orders.v1"].config["max.message.bytes"])
    for name in ("orders.retry", "orders.dlq"):
        assert int(specs[name].config["max.message.bytes"]) >= main_limit + 64 * 1024


def test_no_processed_topic_when_its_name_is_empty() -> None:
    names = [spec.name for spec in topic_specs(load_settings(topic_processed=""))]
    assert names == ["orders.v1", "orders.retry", "orders.dlq", "orders.dlq.redriven"]


def test_differences_name_every_mismatch() -> None:
    spec = topic_specs(load_settings())[0]
    config = dict(spec.config)
    assert differences(spec, 3, {1}, config) == ()
    found = differences(spec, 1, {1, 2}, {**config, "retention.ms": "1000"})
    assert found == (
        "partitions 1 (want 3)",
        "replication factor 1/2 (want 1)",
        f"retention.ms=1000 (want {spec.config['retention.ms']})",
    )
    assert differences(spec, 3, {1}, {}) == tuple(f"{k}=None (want {v})" for k, v in config.items())


# --- against a broker ----------------------------------------------------------------------------
def run(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def topic_env(settings: Settings) -> dict[str, str]:
    return {
        "ORDERFLOW_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "ORDERFLOW_TOPIC_MAIN": settings.topic_main,
        "ORDERFLOW_TOPIC_RETRY": settings.topic_retry,
        "ORDERFLOW_TOPIC_DLQ": settings.topic_dlq,
        "ORDERFLOW_TOPIC_PROCESSED": settings.topic_processed,
        "ORDERFLOW_TOPIC_REDRIVEN": settings.topic_redriven,
    }


@pytest.mark.kafka
def test_create_is_idempotent_and_describe_shows_the_config(kafka_settings: Settings) -> None:
    first = provision(kafka_settings)
    assert [(r.name, r.status) for r in first] == [
        (name, "created") for name in [*kafka_settings.all_topics, kafka_settings.topic_redriven]
    ]
    second = ensure_topics(kafka_settings)
    assert [r.status for r in second] == ["ok"] * 5

    producer = clients.producer(kafka_settings)
    for i in range(5):
        producer.produce(kafka_settings.topic_dlq, value=b"x", partition=i % 3)
    assert producer.flush(30) == 0

    states = {state.spec.name: state for state in describe_topics(kafka_settings)}
    dlq = states[kafka_settings.topic_dlq]
    assert dlq.exists and len(dlq.partitions) == 3 and dlq.replication_factors == {1}
    assert dlq.config["retention.ms"] == str(kafka_settings.retention_dlq_ms)
    assert dlq.config["cleanup.policy"] == "delete"
    assert dlq.high_watermark_total == 5 and dlq.stored_offsets == 5
    assert all(p.leader >= 0 and p.isr == p.replicas for p in dlq.partitions)
    assert states[kafka_settings.topic_main].high_watermark_total == 0


@pytest.mark.kafka
def test_drift_is_reported_and_never_altered(kafka_settings: Settings) -> None:
    admin = clients.admin_client(kafka_settings)
    foreign = NewTopic(
        kafka_settings.topic_dlq, 1, 1, config={"retention.ms": "1000", "cleanup.policy": "delete"}
    )
    admin.create_topics([foreign])[kafka_settings.topic_dlq].result(30)

    reports = {r.name: r for r in provision(kafka_settings)}
    assert reports[kafka_settings.topic_main].status == "created"
    dlq = reports[kafka_settings.topic_dlq]
    assert dlq.status == "drift"
    assert "partitions 1 (want 3)" in dlq.differences
    assert f"retention.ms=1000 (want {kafka_settings.retention_dlq_ms})" in dlq.differences
    with pytest.raises(TopicDriftError, match=rf"{kafka_settings.topic_dlq}: partitions 1"):
        ensure_topics(kafka_settings)
    still = next(s for s in describe_topics(kafka_settings) if s.spec.name == dlq.name)
    assert len(still.partitions) == 1 and still.config["retention.ms"] == "1000"


@pytest.mark.kafka
def test_cli_create_then_drift_exits_non_zero(kafka_settings: Settings) -> None:
    env = topic_env(kafka_settings)
    created = run("topics", "create", env=env)
    assert created.exit_code == 0, created.output
    assert created.output.count("created") == 5
    again = run("topics", "create", env=env)
    assert again.exit_code == 0 and again.output.count(" ok") == 5
    described = run("topics", "describe", env=env)
    assert described.exit_code == 0, described.output
    assert "retention.ms=1209600000" in described.output
    drift = run("topics", "create", "--partitions", "5", env=env)
    assert drift.exit_code == 1
    assert drift.stderr.strip().splitlines() == [drift.stderr.strip()]  # one line
    assert drift.stderr.startswith("orderflow: error: topic drift")


@pytest.mark.kafka
def test_replication_factor_above_the_broker_count_is_refused(kafka_settings: Settings) -> None:
    settings = kafka_settings.model_copy(update={"replication_factor": 10})
    with pytest.raises(KafkaUnavailableError, match=r"refused to create .*replication factor"):
        provision(settings)


def test_unreachable_bootstrap_fails_fast_with_one_line() -> None:
    [port] = free_ports(1)  # nothing listens there
    settings = load_settings(bootstrap_servers=f"127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(KafkaUnavailableError) as caught:
        provision(settings, timeout_s=2)
    assert time.monotonic() - started < 6
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cannot reach Kafka at 127.0.0.1:{port}")
    assert "Connection refused" in message


@pytest.mark.slow
def test_cli_unreachable_bootstrap_within_15_seconds() -> None:
    [port] = free_ports(1)
    started = time.monotonic()
    result = run("topics", "describe", "--bootstrap-servers", f"127.0.0.1:{port}", env={})
    assert time.monotonic() - started < 15
    assert result.exit_code == 1
    assert result.stderr.startswith("orderflow: error: cannot reach Kafka")
    assert len(result.stderr.strip().splitlines()) == 1
