"""Log tails and follow (files only, no broker)."""

from __future__ import annotations

from pathlib import Path

from deploy.localkafka.logs import follow, tail


def test_tail_returns_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tail(log, 3) == ["line 97", "line 98", "line 99"]
    assert tail(tmp_path / "missing.log", 3) == []


def test_follow_yields_appended_lines_and_survives_a_rollover(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("old line\n")
    lines = follow([log], poll_s=0.01)
    with open(log, "a") as handle:
        handle.write("first\nsec")
    assert next(lines) == (log, "first")
    with open(log, "a") as handle:
        handle.write("ond\n")
    assert next(lines) == (log, "second")
    log.write_text("after rollover\n")  # shorter than before: read from the start
    assert next(lines) == (log, "after rollover")
