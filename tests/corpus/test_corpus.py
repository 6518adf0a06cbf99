"""The corpus without a broker: the guarded step routes every case as the corpus says (as a
first attempt and as a record found on the retry topic), and every reader of a dead letter
(model, export, replay headers, display, the dashboard's shaping) survives every case."""

from __future__ import annotations

import json

import pytest

from dashboard import forms, shape
from processors.core import display
from processors.core import headers as h
from processors.core.envelope import Record
from processors.core.policy import RetryPolicy
from processors.core.routing import Identity, Route
from processors.dlq.model import DeadLetter, bytes_from_json
from processors.dlq.rewrite import replay_headers
from processors.handler import handle_order
from processors.metrics import Metrics
from processors.pipeline import GuardedStep, Topics
from tests.corpus import Case, load

CASES = load()
NOW = 1_800_000_000_000


def test_the_corpus_is_big_enough_and_covers_both_ends() -> None:
    assert len(CASES) >= 40
    assert {case.expect_topic for case in CASES} == {"dlq", "processed"}


def _run(case: Case, first_hop: bool, attempts: int = 1) -> Route | str:
    step = GuardedStep(
        handler=handle_order,
        policy=RetryPolicy(max_attempts=3, jitter=0.0),
        identity=Identity("orderflow-main", "0.1.0", "corpus", "g"),
        topics=Topics(retry="r", dlq="d", processed="p"),
        first_hop=first_hop,
        metrics=Metrics("main" if first_hop else "retry"),
        clock_ms=lambda: NOW,
        rand=lambda: 0.5,
    )
    headers = list(case.headers)
    for _ in range(attempts):
        result = step(Record("t", 0, 1, NOW - 10, case.key, case.value, headers))
        out = result.output
        assert out is not None
        if result.decision.route is not Route.RETRY:
            break
        headers = out.headers
        step.first_hop = False
    return result.decision.route, result.decision.reason


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_each_case_ends_where_the_corpus_says(case: Case) -> None:
    for first_hop in (True, False):
        route, reason = _run(case, first_hop, attempts=5)
        assert route.value == case.expect_topic, (first_hop, reason)
        assert (reason.value if reason else None) == case.expect_reason


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_reader_survives_each_case_as_a_dead_letter(case: Case) -> None:
    record = Record("orders.dlq", 0, 7, NOW, case.key, case.value, case.headers)
    letter = DeadLetter.from_record(record)
    exported = json.loads(json.dumps(letter.to_json()))
    assert bytes_from_json(exported, "value") == case.value
    assert [(x["name"], bytes_from_json(x, "value")) for x in exported["headers"]] == list(
        case.headers
    )
    shown = display.show(case.value)
    assert len(shown.text) <= display.SHOW_LIMIT * 2
    assert shown.kind == "json" or shown.note
    letter.replay_refusal()
    replay_headers(letter.headers, replay_of=letter.ref, replay_count=letter.replay_count,
                   now_ms=NOW, target="original")  # fmt: skip
    shape.dead_letter_frame([letter], NOW)
    shape.dead_letter_context(letter, NOW)
    shape.headers_frame(letter.headers)
    shape.records_frame([record])
    shape.reason_counts([record])
    shape.timeline_frame([record], {"orders.dlq": "DLQ"})
    h.decode(record.headers)
    # The edit-and-replay form starts from the shown payload and validates what comes back.
    start = forms.without_simulation(letter.payload.text)
    try:
        forms.parse_edited_payload(start)
    except forms.FormErrors as exc:
        assert exc.fields["payload"]
