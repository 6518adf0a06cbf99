from __future__ import annotations

import urllib.request

from processors.metrics import Metrics, serve


def test_metrics_are_served_on_loopback() -> None:
    metrics = Metrics("retry")
    metrics.failed("transient", 0.003)
    metrics.succeeded(0.001)
    metrics.retried(2)
    metrics.dead_lettered("max_attempts_exhausted")
    metrics.waiting(7)
    metrics.lateness(0.02)
    server = serve(metrics, 0)
    try:
        port = server.server_port
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
    assert 'orderflow_records_consumed_total{processor="retry"} 2.0' in body
    assert 'orderflow_records_succeeded_total{processor="retry"} 1.0' in body
    assert 'orderflow_records_failed_total{category="transient",processor="retry"} 1.0' in body
    assert 'orderflow_records_retried_total{attempt="2",processor="retry"} 1.0' in body
    dead = (
        'orderflow_records_dead_lettered_total{processor="retry",reason="max_attempts_exhausted"}'
    )
    assert f"{dead} 1.0" in body
    assert 'orderflow_records_waiting{processor="retry"} 7.0' in body
    assert "orderflow_retry_lateness_seconds_bucket" in body
    assert 'orderflow_processing_seconds_count{processor="retry"} 2.0' in body


def test_no_port_no_server() -> None:
    assert serve(Metrics("main"), None) is None
