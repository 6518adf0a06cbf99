from __future__ import annotations

import json
import logging

import pytest

from processors import logs


def test_kv_quotes_what_needs_quoting() -> None:
    assert logs.kv(a=1, b="x y", c="", d=None, e='say "hi"', f="k=v") == (
        'a=1 b="x y" c="" e="say \\"hi\\"" f="k=v"'
    )


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_one_line_per_event(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(fmt, "INFO")  # type: ignore[arg-type]
    try:
        logs.event(
            logging.getLogger("processors.test"),
            "routed",
            route="retry",
            attempt=2,
            order_id="o 1",
            skipped=None,
        )
        logging.getLogger("quixstreams.app").info("chatter that is filtered")
    finally:
        logging.getLogger().handlers.clear()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    if fmt == "json":
        payload = json.loads(lines[0])
        assert payload["event"] == "routed" and payload["attempt"] == 2
        assert payload["order_id"] == "o 1" and "skipped" not in payload
        assert payload["level"] == "info" and payload["logger"] == "processors.test"
    else:
        assert lines[0].startswith("ts=")
        assert (
            'level=info logger=processors.test event=routed route=retry attempt=2 order_id="o 1"'
            in lines[0]
        )
