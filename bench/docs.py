"""Write a side-by-side run into docs/benchmarks.md: the generated tables between two markers,
a plot (PNG) and the run's raw JSON next to it, so the figures in the docs are the measured
ones and can be checked."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench.report import fmt

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGE = DOCS / "benchmarks.md"
PLOT = DOCS / "images" / "bench-side-by-side.png"
RAW = DOCS / "bench" / "side-by-side.json"
BEGIN, END = "<!-- side-by-side:begin -->", "<!-- side-by-side:end -->"
MARK = {True: "met", False: "**missed**", None: "-"}


def write(document: dict[str, Any], page: Path = PAGE, plot: Path = PLOT, raw: Path = RAW) -> None:
    """Replace the marked section of ``page`` with the run's side-by-side figures."""
    run = document["run"]
    entry = next(r for r in document["results"] if r["benchmark"] == "side-by-side")
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(document, indent=2) + "\n")
    plot.parent.mkdir(parents=True, exist_ok=True)
    draw(entry["cases"], plot)
    section = render(run, entry, plot.relative_to(page.parent), raw.relative_to(page.parent))
    text = page.read_text() if page.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{section}\n{END}"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _m: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    page.write_text(text)


def _baseline(case: str) -> str | None:
    """The bare worker a case is compared with."""
    if case.endswith("-ALO") and not case.startswith("bare-quix"):
        return "bare-quix-ALO"
    if case.endswith("-EOS") and not case.startswith("bare-quix"):
        return "bare-quix-EOS"
    return {"failure-retry": "main-EOS", "retry-due": "main-EOS", "replay": "bare-loop"}.get(case)


def render(run: dict[str, Any], entry: dict[str, Any], plot: Path, raw: Path) -> str:
    cases: dict[str, dict[str, Any]] = entry["cases"]
    machine = run.get("machine", {})
    lines = [
        f"Run of {run.get('started_at', '?')} (`{run.get('command', 'python -m bench')}`), "
        f"{machine.get('cpus', '?')} CPUs; `uptime` before: `{machine.get('uptime', '?')}`; "
        f"load after: {run.get('load_average_after', '?')}. Raw figures: [{raw}]({raw}).",
        "",
        "| worker | records | records/s | records per CPU-s | ÷ baseline (per CPU-s, per s) "
        "| RSS | 1-min load |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in cases.items():
        if row.get("per_s") is None:
            continue
        base = cases.get(_baseline(name) or "")
        versus = "-"
        if base and base.get("per_cpu_s") and row.get("per_cpu_s"):
            versus = (
                f"{row['per_cpu_s'] / base['per_cpu_s']:.2f}× , "
                f"{row['per_s'] / base['per_s']:.2f}× ({base['label']})"
            )
        lines.append(
            f"| {row['label']} | {row['records']:,} | {fmt(row['per_s'])} | "
            f"{fmt(row['per_cpu_s'])} | {versus} | {fmt(row.get('rss_mib'), 0, ' MiB')} | "
            f"{fmt((row.get('load_1m') or [None, None])[1], 1)} |"
        )
    latency = [r for r in cases.values() if "latency_ms" in r]
    if latency:
        lines += [
            "",
            "| at a fixed rate | achieved | p50 | p95 | p99 | max | CPU share | RSS (steady) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in latency:
            lat = row["latency_ms"]
            lines.append(
                f"| {row['label']} | {fmt(row['achieved_rate_per_s'])}/s | {fmt(lat['p50'])} ms "
                f"| {fmt(lat['p95'])} ms | {fmt(lat['p99'])} ms | {fmt(lat['max'])} ms | "
                f"{fmt((row['cpu_share'] or 0) * 100)} % | {fmt(row['rss_mib'])} MiB |"
            )
    lines += ["", "| target | measured | |", "| --- | --- | --- |"]
    for target in entry["targets"]:
        lines.append(f"| {target['target']} | {target['measured']} | {MARK[target['met']]} |")
    lines += ["", f"![records/s and records per CPU-second, side by side]({plot})"]
    return "\n".join(lines)


def draw(cases: dict[str, dict[str, Any]], path: Path) -> None:
    """Two horizontal bar charts: records/s and records per CPU-second of each worker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in cases.values() if r.get("per_s") is not None]
    labels = [r["label"] for r in rows][::-1]
    figure, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(rows) + 1.5), sharey=True)
    for axis, key, title in (
        (axes[0], "per_s", "records/s"),
        (axes[1], "per_cpu_s", "records per CPU-second of the worker"),
    ):
        values = [r.get(key) or 0 for r in rows][::-1]
        colors = ["#d62728" if "orderflow" in label else "#7f7f7f" for label in labels]
        axis.barh(labels, values, color=colors)
        axis.set_title(title)
        axis.grid(axis="x", alpha=0.3)
        for y, value in enumerate(values):
            axis.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
    figure.suptitle("orderflow (red) next to the bare workers (grey), one run, one broker")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
