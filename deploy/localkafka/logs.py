"""Reading the nodes' log files: the last lines, and following them as they grow."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a text file (``[]`` if it does not exist)."""
    try:
        with open(path, errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]
    except FileNotFoundError:
        return []


def follow(paths: Sequence[Path], *, poll_s: float = 0.5) -> Iterator[tuple[Path, str]]:
    """Yield ``(path, line)`` for every line appended to ``paths`` from now on, forever.

    "From now on" is the moment of this call. A file that shrinks (rolled over) is read again
    from its start; a missing one is waited for.
    """
    offsets = {path: path.stat().st_size if path.exists() else 0 for path in paths}
    return _follow(list(paths), offsets, poll_s)


def _follow(
    paths: list[Path], offsets: dict[Path, int], poll_s: float
) -> Iterator[tuple[Path, str]]:
    pending = {path: "" for path in paths}
    while True:
        for path in paths:
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size < offsets[path]:
                offsets[path], pending[path] = 0, ""
            if size == offsets[path]:
                continue
            with open(path, errors="replace") as handle:
                handle.seek(offsets[path])
                chunk = handle.read()
                offsets[path] = handle.tell()
            *complete, pending[path] = (pending[path] + chunk).split("\n")
            for line in complete:
                yield path, line
        time.sleep(poll_s)
