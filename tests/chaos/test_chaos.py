"""The reduced chaos run of ``make chaos`` (docs/reliability.md): 3 brokers, ~3,000 orders,
4 processor kills, 1 broker kill, 1 broker pause. Fails on any lost, duplicated, misrouted or
wrongly-reasoned order, and when outcomes are still missing 120 s after the last fault (a bound
that only catches a stall)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.chaos.cluster import Cluster
from bench.chaos.run import ChaosConfig, run_chaos, table

# ~2.5 min here (loaded 2 cores); a broker restart alone can take a minute: above the 300 s default.
pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(900)]

REDUCED = ChaosConfig(
    seed=20261201,
    orders=3000,
    processor_kills=4,
    broker_kills=1,
    broker_pauses=1,
    rate=60.0,
    pause_s=(10.0, 15.0),
    settle_bound_s=120.0,
)


def test_reduced_chaos_run_accounts_for_every_order(cluster: Cluster, tmp_path: Path) -> None:
    report = run_chaos(REDUCED, tmp_path / "chaos", cluster=cluster)
    print(table(report))
    summary = json.dumps(report["accounting"], indent=1)
    assert report["sent"] == REDUCED.orders and report["produce_errors"] == 0, summary
    assert [f["kind"] for f in report["faults"]].count("processor_kill") == 4
    assert {f["kind"] for f in report["faults"]} == {
        "processor_kill",
        "broker_kill",
        "broker_pause",
    }
    accounting = report["accounting"]
    assert accounting["lost"] == 0, summary
    assert accounting["duplicated"] == 0, summary
    assert accounting["misrouted"] == 0 and accounting["wrong_reason"] == 0, summary
    assert accounting["unexpected"] == 0, summary
    assert report["all_outcomes_visible"], f"outcomes missing 120 s after the last fault: {summary}"
    assert report["ok"]
