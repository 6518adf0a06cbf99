"""The corpus against a real broker and the real processors, then every reader of the DLQ.

Every case is sent to the main topic and to the retry topic by a plain client, and written
straight to the DLQ, as a foreign producer could. Then: each record ended where the corpus
says and both processors kept running; every ``orderflow dlq`` command exits 0 (or with its
documented code) with no traceback; the dashboard's pages run on that DLQ; a replay of the
whole DLQ (dry and real) gives an exact report; and null and repeated headers come back to the
DLQ byte for byte after DLQ → replay → DLQ.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from processors.cli import cli
from processors.core import headers as h
from processors.dlq.model import bytes_from_json
from processors.kafka.clients import FAILURE_RECORD_LIMIT, MAIN_RECORD_LIMIT, producer
from processors.kafka.topics import provision
from processors.settings import Settings
from tests.corpus import CASE_HEADER, load
from tests.dashboard.conftest import new_app
from tests.dashboard.conftest import settings_env as app_settings_env
from tests.dlq.test_dlq_cli import env_of
from tests.processors.conftest import fresh_settings
from tests.processors.harness import Proc, Record, delete_topics, produce, read_all, settings_env

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CASES = load()
# One record no replay can deliver: too large for the main topic, which it names as its origin.
TOO_BIG = "too-big-for-main"
REPLAYED_HEADERS = {*h.HOP_HEADERS, h.REPLAY_COUNT, h.REPLAYED_AT, h.REPLAY_OF}


class Corpus:
    def __init__(self, settings: Settings, dlq: list[Record], processed: list[Record]) -> None:
        self.settings = settings
        self.dlq = dlq
        self.processed = processed
        self.procs: list[Proc] = []

    def tagged(self, tag: str) -> list[Record]:
        return [r for r in self.dlq if r.header.get(CASE_HEADER) == tag.encode()]


def expected_dlq_records() -> int:
    via_processors = 2 * sum(case.expect_topic == "dlq" for case in CASES)
    return via_processors + len(CASES) + 1  # + every case written directly, + TOO_BIG


@pytest.fixture(scope="module")
def corpus(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    workdir = tmp_path_factory.mktemp("corpus")
    settings = fresh_settings(kafka_bootstrap, workdir / "state", max_attempts=3)
    provision(settings)  # the real topic specs, record size limits included
    env = settings_env(settings, instance_id="corpus")
    procs = [Proc(role, env, workdir / f"{role}.log").start() for role in ("main", "retry")]
    try:
        client = producer(settings, **{"message.max.bytes": FAILURE_RECORD_LIMIT})
        for via, topic in (("main", settings.topic_main), ("retry", settings.topic_retry)):
            produce(settings, [(c.key, c.value, c.tagged(via)) for c in CASES], topic, client)
        direct = [(c.key, c.value, c.tagged("dlq")) for c in CASES]
        direct.append(
            (
                TOO_BIG.encode(),
                b"x" * (MAIN_RECORD_LIMIT + 64 * 1024),
                [(h.ORIGINAL_TOPIC, settings.topic_main.encode()), (CASE_HEADER, TOO_BIG.encode())],
            )
        )
        produce(settings, direct, settings.topic_dlq, client)
        processed = 2 * sum(case.expect_topic == "processed" for case in CASES)

        def done(records: dict[str, list[Record]]) -> bool:
            return (
                len(records[settings.topic_dlq]) >= expected_dlq_records()
                and len(records[settings.topic_processed]) >= processed
            )

        records = read_all(
            settings, [settings.topic_dlq, settings.topic_processed], done, 240, idle_s=1
        )
        result = Corpus(settings, records[settings.topic_dlq], records[settings.topic_processed])
        result.procs = procs
        yield result
    finally:
        for proc in procs:
            proc.kill()
        delete_topics(settings)


def test_every_case_ends_where_the_corpus_says_and_the_processors_keep_running(
    corpus: Corpus,
) -> None:
    assert len(corpus.dlq) == expected_dlq_records()
    assert len(corpus.processed) == 2 * sum(c.expect_topic == "processed" for c in CASES)
    for case in CASES:
        for via in ("main", "retry"):
            found = corpus.tagged(f"{case.id}@{via}")
            if case.expect_topic == "processed":
                assert found == [], (case.id, via)
                continue
            [dead] = found
            assert dead.header[h.DLQ_REASON] == case.expect_reason.encode(), (case.id, via)
            assert (dead.key, dead.value) == (case.key, case.value), (case.id, via)
            foreign = [hd for hd in dead.headers if hd[0] not in REPLAYED_HEADERS]
            # Every non-contract header byte for byte and in order (x-original-* set once).
            originals = [hd for hd in case.tagged(via) if hd[0] not in REPLAYED_HEADERS]
            assert [hd for hd in foreign if hd[0] not in h.ORIGINAL_HEADERS] == [
                hd for hd in originals if hd[0] not in h.ORIGINAL_HEADERS
            ], (case.id, via)
    for proc in corpus.procs:
        assert proc.process is not None and proc.process.poll() is None, proc.log[-3000:]
        assert "Traceback" not in proc.log


def _cli(settings: Settings, *args: str) -> Result:
    """Run ``orderflow dlq ARGS`` in-process: any exception escaping the command fails."""
    result = CliRunner().invoke(cli, ["dlq", *args], env=env_of(settings))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        result.output[-3000:],
        result.exception,
    )
    if args[0] != "inspect":  # inspect shows each dead letter's own stack trace
        assert "Traceback" not in result.output, (args, result.output)
    return result


def test_every_dlq_command_survives_the_corpus(corpus: Corpus, tmp_path: Path) -> None:
    settings = corpus.settings
    stats = _cli(settings, "stats")
    assert stats.exit_code == 0 and f"{len(corpus.dlq)} dead letters" in stats.output
    listed = _cli(settings, "list", "--limit", "500")
    assert listed.exit_code == 0
    out = tmp_path / "dlq.jsonl"
    exported = _cli(settings, "export", "--out", str(out))
    assert exported.exit_code == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(corpus.dlq)
    by_place = {(x["partition"], x["offset"]): x for x in lines}
    for record in corpus.dlq:
        place = f"{record.partition}:{record.offset}"
        for extra in ((), ("--json",)):
            shown = _cli(settings, "inspect", place, *extra)
            assert shown.exit_code == 0, (place, shown.output[-2000:])
        line = by_place[(record.partition, record.offset)]
        assert bytes_from_json(line, "value") == record.value
        assert [(x["name"], bytes_from_json(x, "value")) for x in line["headers"]] == [
            tuple(hd) for hd in record.headers
        ]


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize(
    "page", ["views/overview.py", "views/topics.py", "views/dlq.py", "views/trace.py"]
)
def test_dashboard_pages_run_on_the_corpus(
    corpus: Corpus, page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import streamlit as st
    from streamlit import config

    address = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")  # as `orderflow dashboard` serves it
    st.cache_resource.clear()
    for name, value in app_settings_env(corpus.settings).items():
        monkeypatch.setenv(name, value)
    at = new_app().run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    if page == "views/topics.py":
        for label in ("main", "retry", "DLQ", "processed"):
            at.selectbox(key="tb_topic").select(label).run()
            assert not at.exception, (label, at.exception)
    if page == "views/dlq.py":
        at.selectbox(key="dlq_limit").select(500).run()
        assert not at.exception, at.exception
        assert any(md.value.startswith(f"**{len(corpus.dlq)}** dead letters") for md in at.markdown)
    if page == "views/trace.py":
        for case in CASES:
            if case.key:
                at.text_input(key="trace_order_id").input(case.key.decode("utf-8", "replace"))
                at.run()
                assert not at.exception, (case.id, at.exception)
    st.cache_resource.clear()
    config.set_option("server.address", address)


def _expected_refusals(corpus: Corpus) -> dict[str, str]:
    """Which dead letters a replay to their original topic must refuse, read straight from
    the raw headers (the last occurrence of a name counts)."""
    topics = set(corpus.settings.all_topics) - {corpus.settings.topic_dlq}
    refused = {}
    for record in corpus.dlq:
        last = dict(record.headers)
        count = last.get(h.REPLAY_COUNT, b"0")
        target = last.get(h.ORIGINAL_TOPIC)
        ref = f"{corpus.settings.topic_dlq}:{record.partition}:{record.offset}"
        if count is None or not re.fullmatch(rb"\s*[0-9]{1,18}\s*", count) or int(count) >= 3:
            refused[ref] = "loop guard"
        elif target is None or not _utf8(target) or target.decode() not in topics:
            refused[ref] = "no target"
        elif record.header.get(CASE_HEADER) == TOO_BIG.encode():
            refused[ref] = "too large"
    return refused


def _summary(output: str) -> tuple[int, int, int, int]:
    match = re.search(
        r"replay(?:ed)? (\d+) of (\d+) selected .*refused (\d+); failed (\d+)", output
    )
    assert match, output
    replayed, selected, refused, failed = map(int, match.groups())
    return replayed, selected, refused, failed


def test_replay_of_the_whole_dlq_gives_an_exact_report_and_headers_survive(
    corpus: Corpus,
) -> None:
    settings = corpus.settings
    refused = _expected_refusals(corpus)
    total = len(corpus.dlq)
    dry = _cli(settings, "replay", "--dry-run")
    # A dry run cannot know that the broker will refuse a record for its size.
    too_big = sum(why == "too large" for why in refused.values())
    assert _summary(dry.output) == (
        total - len(refused) + too_big,
        total,
        len(refused) - too_big,
        0,
    )
    assert dry.exit_code == 3
    # The one record the broker refuses is skipped with its reason, and the run goes on.
    one = _cli(settings, "replay", "--order-id", TOO_BIG, "--group", "corpus-too-big")
    assert _summary(one.output) == (0, 1, 1, 0) and one.exit_code == 3
    assert re.search(r"refused \S+: cannot be republished to \S+: .*too large", one.output), (
        one.output
    )
    real = _cli(settings, "replay")
    assert _summary(real.output) == (total - len(refused), total, len(refused), 0), real.output
    assert real.exit_code == 3
    refs = set(re.findall(r"refused (\S+:\d+:\d+): ", real.output))
    assert refs == set(refused) or len(refused) > 20  # the CLI lists the first 20

    # DLQ → replay → DLQ: the second dead letter of each case carries the first one's null
    # values, repeated names and every other non-contract header, byte for byte and in order.
    cases = ("null-header-values", "duplicate-header-names", "header-100kib", "odd-header-names")
    wanted = {f"{case}@main" for case in cases}

    def back(records: dict[str, list[Record]]) -> bool:
        again = [r for r in records[settings.topic_dlq] if h.REPLAY_OF in r.header]
        return {r.header.get(CASE_HEADER, b"").decode() for r in again} >= wanted

    records = read_all(settings, [settings.topic_dlq], back, 120)
    for tag in sorted(wanted):
        first = [r for r in records[settings.topic_dlq] if h.REPLAY_OF not in r.header]
        second = [r for r in records[settings.topic_dlq] if h.REPLAY_OF in r.header]
        [before] = [r for r in first if r.header.get(CASE_HEADER) == tag.encode()]
        after_all = [r for r in second if r.header.get(CASE_HEADER) == tag.encode()]
        assert len(after_all) == 1, (tag, sorted(r.header.get(CASE_HEADER) or b"" for r in second))
        [after] = after_all
        assert (after.key, after.value) == (before.key, before.value)
        kept = [hd for hd in before.headers if hd[0] not in REPLAYED_HEADERS]
        assert [hd for hd in after.headers if hd[0] not in REPLAYED_HEADERS] == kept, tag
        assert Counter(n for n, _ in after.headers)[h.REPLAY_COUNT] == 1
