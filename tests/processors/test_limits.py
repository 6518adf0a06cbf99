"""A record as large as the main topic accepts still fits the DLQ with its failure headers."""

from __future__ import annotations

import pytest

from processors.core import headers as h
from processors.kafka.clients import MAIN_RECORD_LIMIT, producer
from processors.kafka.topics import provision
from tests.processors.conftest import ProcFactory, fresh_settings
from tests.processors.harness import Record, delete_topics, order, produce, read_all

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_record_at_the_main_topic_limit_is_dead_lettered_and_processing_goes_on(
    kafka_bootstrap: str, tmp_path, start_processor: ProcFactory
) -> None:
    settings = fresh_settings(kafka_bootstrap, tmp_path / "state", partitions=1)
    provision(settings)  # the real topic specs, with their record size limits
    try:
        start_processor(settings, "main")
        # Not UTF-8, so it is poison, and big: only the batch framing separates it from the limit.
        huge = b"\xff" * (MAIN_RECORD_LIMIT - 128)
        big_client = producer(settings, **{"message.max.bytes": 2 * MAIN_RECORD_LIMIT})
        produce(settings, [(b"huge", huge)], client=big_client)
        produce(settings, [(b"after", order("after").to_json_bytes())])

        def done(records: dict[str, list[Record]]) -> bool:
            return bool(records[settings.topic_dlq]) and bool(records[settings.topic_processed])

        records = read_all(
            settings, [settings.topic_dlq, settings.topic_processed], done, timeout_s=60
        )
        [dead] = records[settings.topic_dlq]
        assert dead.key == b"huge" and dead.value == huge
        assert dead.header[h.DLQ_REASON] == b"deserialization_failed"
        assert len(dead.header[h.ERROR_STACKTRACE] or b"") > 0
        [outcome] = records[settings.topic_processed]
        assert outcome.json["order_id"] == "after"
    finally:
        delete_topics(settings)
