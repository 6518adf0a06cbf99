"""Benchmark results: a rich table on the terminal and machine-readable JSON in a file."""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LATEST = RESULTS_DIR / "latest.json"


@dataclass
class Result:
    """One benchmark's outcome: a table for people (``columns``/``rows``) and ``data`` for
    machines. ``ok`` is False when a check the benchmark makes failed (figures still shown)."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ok: bool = True

    def print(self, console: Console) -> None:
        table = Table(title=self.title, title_justify="left", show_lines=False)
        for index, column in enumerate(self.columns):
            table.add_column(column, justify="left" if index == 0 else "right")
        for row in self.rows:
            table.add_row(*row)
        console.print(table)
        for note in self.notes:
            console.print(f"  [dim]{note}[/dim]")
        if not self.ok:
            console.print(f"  [bold red]{self.name}: a check failed (see above)[/bold red]")


def fmt(value: float | None, digits: int = 0, unit: str = "") -> str:
    """``1,234`` / ``12.3 ms`` / ``-`` for missing or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}{unit}"


def _clean(value: Any) -> Any:
    """JSON has no NaN: missing figures become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class ResultsFile:
    """``latest.json``: the run's context, then each benchmark's data appended as it finishes
    (rewritten atomically every time, so a crash keeps what was measured)."""

    def __init__(self, path: Path, run: dict[str, Any]) -> None:
        self.path = path
        self.document: dict[str, Any] = {"run": run, "results": []}
        self._write()

    def append(self, result: Result | None, name: str, **extra: Any) -> None:
        entry: dict[str, Any] = {"benchmark": name, **extra}
        if result is not None:
            entry |= {"ok": result.ok, **result.data}
        self.document["results"].append(entry)
        self._write()

    def finish(self, **fields: Any) -> None:
        self.document["run"].update(fields)
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(_clean(self.document), indent=2, sort_keys=False) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".latest-", suffix=".json")
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, self.path)
