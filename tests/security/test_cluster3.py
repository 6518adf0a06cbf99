"""The Done-when of issue 12: a secured 3-node cluster runs the whole flow, each component as
its own principal: producer → main → retry → DLQ → (cause fixed) operator replay → processed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from processors.core.order import Item, Order, Simulation
from processors.producer import produce_orders
from processors.settings import Settings
from tests.dlq.support import read_all
from tests.security.conftest import SecureCluster, secured_cluster
from tests.security.support import Processor, orderflow, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster3(security_log_dir: Path, password_registry: dict[str, str]) -> Iterator[SecureCluster]:
    with secured_cluster(3, security_log_dir) as cluster:
        password_registry.update({f"3n-{k}": v for k, v in cluster.passwords().items()})
        yield cluster


def order(number: int, customer: str, simulate: Simulation | None = None) -> Order:
    return Order(
        order_id=f"ord-flow-{number}",
        customer_id=customer,
        items=[Item(sku="MUG", quantity=1, unit_price="2.50")],
        currency="EUR",
        total="2.50",
        created_at="2026-12-01T10:00:00Z",
        simulate=simulate,
    )


def test_whole_flow_with_one_principal_per_component(
    cluster3: SecureCluster, names: Settings, tmp_path: Path
) -> None:
    started = time.monotonic()
    cluster = cluster3
    cluster.grant(names)
    flag = tmp_path / "suspended"
    flag.touch()
    created = orderflow(
        cluster, cluster.env("admin", names), "topics", "create", "--replication-factor", "3"
    )
    assert created.returncode == 0, created.stderr
    orders = (
        [order(i, "cus-ok") for i in range(3)]
        + [order(i, "cus-flaky", Simulation(fail_attempts=1)) for i in range(3, 6)]
        + [order(i, "cus-suspended") for i in range(6, 9)]
    )
    # Fresh topics on a fresh 3-node cluster: leaders settle first; bound generously (a hang).
    summary = produce_orders(cluster.as_user("producer", names), orders, delivery_timeout_s=90)
    assert summary.delivered == 9, summary
    env = {
        "ORDERFLOW_HANDLER": "tests.security.handlers:suspended_until_fixed",
        "ORDERFLOW_TEST_SUSPENDED_FLAG": str(flag),
        "ORDERFLOW_BACKOFF_INITIAL_MS": "200",
        "ORDERFLOW_REPLICATION_FACTOR": "3",
    }
    logs = cluster.log_dir
    main = Processor("main", cluster.env("main", names, **env), logs / "main-3n.log")
    retry = Processor("retry", cluster.env("retry", names, **env), logs / "retry-3n.log")
    reader = cluster.as_user("broker", names)
    try:
        wait_for(
            lambda: len(read_all(reader, names.topic_processed, 6, 1)) >= 6
            and len(read_all(reader, names.topic_dlq, 3, 1)) >= 3,
            150, "6 processed (3 via retry) and 3 dead letters", main, retry,
        )  # fmt: skip
        flag.unlink()  # the cause is fixed
        replay = orderflow(cluster, cluster.env("operator", names), "dlq", "replay")
        assert replay.returncode == 0, replay.stderr
        assert "replayed 3 of 3 selected" in replay.stdout
        wait_for(
            lambda: len(read_all(reader, names.topic_processed, 9, 1)) >= 9,
            120, "all 9 processed", main, retry,
        )  # fmt: skip
    finally:
        main.stop()
        retry.stop()
    assert main.process.returncode == 0 and retry.process.returncode == 0
    processed = read_all(reader, names.topic_processed, 9, 5)
    bodies = [json.loads(value) for *_, value, _ in processed]
    assert sorted(b["order_id"] for b in bodies) == sorted(o.order_id for o in orders)  # once each
    attempts = {b["order_id"]: b["attempts"] for b in bodies}
    assert all(attempts[f"ord-flow-{i}"] == 2 for i in range(3, 6))  # succeeded in retry
    assert len(read_all(reader, names.topic_retry, 3, 2)) == 3
    assert len(read_all(reader, names.topic_dlq, 3, 2)) == 3  # the DLQ itself is untouched
    print(f"3-node secured flow: {time.monotonic() - started:.1f} s")
