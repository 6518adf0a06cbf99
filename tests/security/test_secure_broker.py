"""One secured broker: what `orderflow kafka up --secure` leaves on disk, the commands each
principal may run, and the one-line error of every way to get access wrong."""

from __future__ import annotations

import stat
import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

from processors.kafka import access, clients
from processors.settings import Settings
from tests.dlq.support import read_all
from tests.security.conftest import SecureCluster, read_env_file
from tests.security.support import Processor, orderflow, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_on_disk_are_private_and_client_files_complete(secure: SecureCluster) -> None:
    secrets = secure.secrets
    assert mode(secrets.directory) == 0o700 and mode(secrets.clients_dir) == 0o700
    files = list(secrets.directory.iterdir()) + list(secrets.clients_dir.iterdir())
    assert {f.name for f in secrets.directory.iterdir()} >= {"ca.pem", "ca.key", "node-1.pem"}
    assert all(mode(f) == 0o600 for f in files), {f.name: oct(mode(f)) for f in files}
    layout = secure.manager.recorded_layout()
    assert layout is not None and layout.secure
    properties = secure.manager.properties_file(layout.nodes[0])
    assert mode(properties) == 0o600  # it holds the broker user's password
    text = properties.read_text()
    assert "allow.everyone.if.no.acl.found=false" in text and "PLAINTEXT" not in text
    passwords = secure.passwords()
    assert len(set(passwords.values())) == len(passwords) == 7
    for user in ("main", "retry", "producer", "operator", "admin", "console"):
        env = read_env_file(secrets.client_env(user))
        assert env == {
            "ORDERFLOW_BOOTSTRAP_SERVERS": secure.bootstrap,
            "ORDERFLOW_SECURITY_PROTOCOL": "SASL_SSL",
            "ORDERFLOW_SASL_MECHANISM": "SCRAM-SHA-512",
            "ORDERFLOW_SASL_USERNAME": user,
            "ORDERFLOW_SASL_PASSWORD": passwords[user],
            "ORDERFLOW_SSL_CA_LOCATION": str(secrets.ca_file),
        }


def test_admin_creates_topics_producer_produces_operator_reads_and_replays(
    secure: SecureCluster, names: Settings
) -> None:
    created = orderflow(secure, secure.env("admin", names), "topics", "create")
    assert created.returncode == 0, created.stderr
    assert created.stdout.count("created") == 4
    for order_id, fail in (("ord-sec-1", "0"), ("ord-sec-dead", "permanent")):
        sent = orderflow(
            secure, secure.env("producer", names), "produce", "--item", "MUG:1:2.50",
            "--order-id", order_id, "--fail", fail,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        assert f"delivered {order_id}" in sent.stdout
    superuser = secure.as_user("broker", names)
    main = Processor("main", secure.env("main", names), secure.log_dir / "main-1n.log")
    try:
        wait_for(
            lambda: read_all(superuser, names.topic_processed, 1, 1)
            and read_all(superuser, names.topic_dlq, 1, 1),
            90, "one processed, one dead letter", main,
        )  # fmt: skip
    finally:
        main.stop()
    assert main.process.returncode == 0, main.output()[-2000:]
    listed = orderflow(secure, secure.env("operator", names), "dlq", "list")
    assert listed.returncode == 0 and "ord-sec-dead" in listed.stdout, listed.stderr
    replayed = orderflow(
        secure, secure.env("operator", names), "dlq", "replay", "--reason", "non_retryable"
    )
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 of 1 selected" in replayed.stdout
    again = [r for r in read_all(superuser, names.topic_main, 3, 10) if r[2] == b"ord-sec-dead"]
    assert len(again) == 2  # the original and its replay


# --- credentials --------------------------------------------------------------------------------
def test_kafka_acls_sets_the_grants_as_the_broker_and_refuses_others(
    secure: SecureCluster, names: Settings
) -> None:
    """What the secured VM deploy runs: idempotent as the super user, one line for anyone else."""
    broker = secure.env(
        None, names,
        ORDERFLOW_SECURITY_PROTOCOL="SASL_SSL", ORDERFLOW_SASL_MECHANISM="SCRAM-SHA-512",
        ORDERFLOW_SASL_USERNAME="broker", ORDERFLOW_SASL_PASSWORD=secure.passwords()["broker"],
        ORDERFLOW_SSL_CA_LOCATION=str(secure.secrets.ca_file),
    )  # fmt: skip
    first = orderflow(secure, broker, "kafka", "acls")
    assert first.returncode == 0, first.stderr
    again = orderflow(secure, broker, "kafka", "acls")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith("0 created, 0 removed"), again.stdout
    refused = orderflow(secure, secure.env("operator", names), "kafka", "acls")
    assert refused.returncode != 0
    assert refused.stderr.startswith("orderflow: error: ") and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr


def test_no_credentials(secure: SecureCluster, names: Settings) -> None:
    env = secure.env(None, names, ORDERFLOW_SECURITY_PROTOCOL="SASL_SSL")
    orderflow(secure, env, "topics", "describe").error_line(
        "ORDERFLOW_", "needs sasl_username and sasl_password"
    )


def test_plaintext_client_on_the_tls_port(secure: SecureCluster, names: Settings) -> None:
    started = time.monotonic()
    result = orderflow(secure, secure.env(None, names), "topics", "create")
    result.error_line(
        f"Kafka at {secure.bootstrap} closed the connection of a PLAINTEXT client",
        "expects TLS",
    )
    assert result.returncode == 5
    assert time.monotonic() - started < 60  # bounded, not librdkafka's endless retries


@pytest.mark.parametrize("user", ["producer", "nobody"])
def test_wrong_password_or_unknown_user(secure: SecureCluster, names: Settings, user) -> None:
    env = secure.env("producer", names, ORDERFLOW_SASL_USERNAME=user)
    env["ORDERFLOW_SASL_PASSWORD"] = "not-the-password-0123456789"
    result = orderflow(secure, env, "produce", "--item", "MUG:1:2.50")
    line = result.error_line(f"rejected user {user} (SCRAM-SHA-512)", "wrong password")
    assert "not-the-password" not in result.stdout + result.stderr
    assert "0123456789" not in line


def test_a_processor_with_a_wrong_password_exits_with_one_line(
    secure: SecureCluster, names: Settings
) -> None:
    orderflow(secure, secure.env("admin", names), "topics", "create")
    env = secure.env("main", names, ORDERFLOW_SASL_PASSWORD="wrong-wrong-wrong-wrong")
    main = Processor("main", env, secure.log_dir / "main-wrong-password.log")
    try:
        main.process.wait(timeout=60)
    finally:
        main.stop()
    assert main.process.returncode == 5
    lines = main.output().strip().splitlines()
    assert lines[-1].startswith("orderflow: error: Kafka at") and "rejected user main" in lines[-1]
    assert "Traceback" not in main.output() and "wrong-wrong" not in main.output()


def test_ca_missing(secure: SecureCluster, names: Settings, tmp_path) -> None:
    env = secure.env("operator", names, ORDERFLOW_SSL_CA_LOCATION=str(tmp_path / "ca.pem"))
    orderflow(secure, env, "dlq", "list").error_line(
        "ORDERFLOW_SSL_CA_LOCATION", "no such CA certificate file", str(tmp_path / "ca.pem")
    )


def test_ca_not_given_so_the_broker_is_not_trusted(secure: SecureCluster, names: Settings) -> None:
    env = secure.env("operator", names)
    del env["ORDERFLOW_SSL_CA_LOCATION"]
    orderflow(secure, env, "dlq", "list").error_line(
        "TLS to", "user operator", "not signed by a trusted CA"
    )


# --- ACL denials --------------------------------------------------------------------------------
def test_producer_may_not_write_the_dlq(secure: SecureCluster, names: Settings) -> None:
    orderflow(secure, secure.env("admin", names), "topics", "create")
    result = orderflow(
        secure, secure.env("producer", names), "produce", "--item", "MUG:1:2.50", "--topic",
        names.topic_dlq,
    )  # fmt: skip
    result.error_line(
        "user producer (SCRAM-SHA-512) is not allowed to WRITE topic " + names.topic_dlq,
        "TOPIC_AUTHORIZATION_FAILED",
    )
    assert result.returncode == 6


def test_producer_may_not_read_dead_letters(secure: SecureCluster, names: Settings) -> None:
    orderflow(secure, secure.env("admin", names), "topics", "create")
    orderflow(secure, secure.env("producer", names), "dlq", "list").error_line(
        "user producer", "not allowed to", names.topic_dlq
    )


def test_operator_may_not_create_or_delete_topics(secure: SecureCluster, names: Settings) -> None:
    orderflow(secure, secure.env("operator", names), "topics", "create").error_line(
        "user operator", "not allowed to CREATE topic"
    )
    assert orderflow(secure, secure.env("admin", names), "topics", "create").returncode == 0
    operator = secure.as_user("operator", names)
    admin = clients.admin_client(operator)
    futures = admin.delete_topics([names.topic_dlq], request_timeout=15)
    with pytest.raises(KafkaException) as caught:
        futures[names.topic_dlq].result(30)
    assert caught.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    line = access.denied(operator, caught.value.args[0], "DELETE", names.topic_dlq)
    assert line == (
        f"user operator (SCRAM-SHA-512) is not allowed to DELETE topic {names.topic_dlq} "
        "(TOPIC_AUTHORIZATION_FAILED)"
    )
    superuser = secure.as_user("broker", names)
    metadata = clients.admin_client(superuser).list_topics(timeout=15)
    assert names.topic_dlq in metadata.topics  # still there


def test_admin_may_not_touch_topics_of_other_names(secure: SecureCluster, names: Settings) -> None:
    admin = clients.admin_client(secure.as_user("admin", names))
    futures = admin.create_topics([NewTopic("someone-elses-topic", 1, 1)], request_timeout=15)
    with pytest.raises(KafkaException) as caught:
        futures["someone-elses-topic"].result(30)
    assert caught.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_main_may_not_consume_the_retry_topic(secure: SecureCluster, names: Settings) -> None:
    """The main principal running the retry processor: refused, one line, exit non-zero."""
    orderflow(secure, secure.env("admin", names), "topics", "create")
    env = secure.env("main", names)
    retry = Processor("retry", env, secure.log_dir / "retry-as-main.log")
    try:
        retry.process.wait(timeout=90)
    finally:
        retry.stop()
    assert retry.process.returncode not in (0, None)
    last = retry.output().strip().splitlines()[-1]
    assert last.startswith("orderflow: error:") and "user main" in last, retry.output()[-2000:]
    assert "Traceback" not in retry.output()
