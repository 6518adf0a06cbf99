"""Rolling restarts of the ``jars`` Kafka runtime, from the real deploy on @fake hosts; the
in-sync wait it generates then runs in bash against a scripted stand-in for Kafka's TopicCommand
(tests/realhosts/test_deploy_e2e.py rolls a real cluster while producing, and its second
deploy shows that unchanged brokers are not restarted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.conftest import Report, converged_responses, find_op, op_names
from tests.deploy.test_first_boot_and_rolling import run_snippet

KAFKA_HOSTS = ("kafka-1", "kafka-2", "kafka-3")
JARS = {"kafka_runtime": "jars"}
RESTART = "Restart Kafka, one node at a time, each once the cluster is in sync"
RUNNING = {"systemctl is-active kafka.service": "active"}


@pytest.fixture(scope="module")
def first_run(fake_deploy) -> Report:
    return fake_deploy(data=JARS)


def converged(first_run: Report, **extra: dict[str, str]) -> dict:
    return {
        host: {**RUNNING, **converged_responses(first_run, host), **extra.get(host, {})}
        for host in first_run
    }


def test_a_first_start_never_waits_for_a_cluster_that_does_not_exist_yet(
    first_run: Report,
) -> None:
    for host in KAFKA_HOSTS:
        assert RESTART not in op_names(first_run, host)
        assert "Run Kafka at boot" in op_names(first_run, host)


def test_changed_settings_restart_running_brokers_one_at_a_time_each_waiting_in_sync(
    fake_deploy, first_run: Report
) -> None:
    report = fake_deploy(host_responses=converged(first_run), data={**JARS, "kafka_min_isr": 1})
    positions = set()
    for host in KAFKA_HOSTS:
        restart = find_op(report, host, RESTART)
        positions.add(restart["position"])
        assert restart["serial"] is True and restart["changed"] is True
        before, restart_unit, port, after = restart["commands"]
        assert before == after and before.startswith("timeout 900 ")
        assert restart_unit == "systemctl restart kafka.service"
        assert "/dev/tcp/" in port
        assert "TopicCommand" in before and "--under-replicated-partitions" in before
        assert "--unavailable-partitions" in before
        assert "--command-config /etc/kafka/admin.properties" in before
    assert len(positions) == 1  # one operation: a host waits, restarts, waits, then the next


def test_the_admin_settings_bound_every_call_and_hold_no_secret_in_plaintext_mode(
    first_run: Report,
) -> None:
    admin = first_run["kafka-1"]["uploads"]["/etc/kafka/admin.properties"]
    assert admin.splitlines() == ["default.api.timeout.ms=10000", "request.timeout.ms=10000"]


# Stands in for `runuser -u kafka -- java … TopicCommand …`: refused on call 1 (the broker
# is starting), then a log line and under-replicated partitions until call URP_UNTIL.
FAKE_TOPIC_COMMAND = """
calls=$(( $(cat "$STATE/calls" 2>/dev/null || echo 0) + 1 ))
echo "$calls" > "$STATE/calls.$$" && mv "$STATE/calls.$$" "$STATE/calls"
case "$*" in
  *TopicCommand*--under-replicated-partitions*)
    [ "$calls" -eq 1 ] && exit 1
    echo "INFO a log line is not a partition"
    [ "$calls" -lt "${URP_UNTIL:-0}" ] && printf '\\tTopic: orders.v1\\tPartition: 0\\tIsr: 1,3\\n'
    exit 0 ;;
  *TopicCommand*--unavailable-partitions*) exit 0 ;;
esac
exit 2
"""


@pytest.mark.parametrize(("urp_until", "ok"), [(6, True), (10_000, False)])
def test_the_in_sync_wait_passes_only_once_nothing_is_under_replicated(
    fake_deploy, first_run: Report, tmp_path: Path, urp_until: int, ok: bool
) -> None:
    report = fake_deploy(
        host_responses=converged(first_run),
        data={**JARS, "kafka_min_isr": 1, "kafka_rolling_timeout": 3, "kafka_rolling_poll": 0.05},
    )
    wait = find_op(report, "kafka-2", RESTART)["commands"][0]
    result = run_snippet(
        f"URP_UNTIL={urp_until}; export URP_UNTIL; {wait}",
        tmp_path,
        {"runuser": FAKE_TOPIC_COMMAND},
    )
    assert (result.returncode == 0) is ok, result.stderr
    if ok:
        # refused, URPs on calls 2..5 (each followed by an unavailable check), then in sync.
        assert int((tmp_path / "calls").read_text()) >= 7
    else:
        assert result.returncode == 124  # timeout's exit status: the deploy stops here
