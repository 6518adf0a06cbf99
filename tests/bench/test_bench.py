"""The benchmarks run end to end at a tiny size, so their code cannot rot unnoticed.

Figures at this size mean nothing; the test checks that every benchmark completes, that its own
checks pass (no early retry, no duplicate or lost order under exactly-once) and that the results
file holds what the tables show.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from bench import (
    dashboard_refresh,
    docs,
    instructions,
    kill_recovery,
    ledger,
    retry_lateness,
    runner,
    sidebyside,
    throughput,
)
from bench.report import Result, ResultsFile, fmt
from bench.support import BenchError, Context, percentile, summary

ROOT = Path(__file__).resolve().parents[2]

TINY = {
    throughput.NAME: throughput.Params(
        orders=60, cases=(("exactly-once", 0.2), ("at-least-once", 0.2)), timeout_s=120
    ),
    retry_lateness.NAME: retry_lateness.Params(
        orders=20,
        rate_per_s=40,
        commit_intervals=(0.2,),
        long_delay_s=4,
        short_delay_s=1,
        short_records=5,
    ),
    dashboard_refresh.NAME: dashboard_refresh.Params(small=10, large=3_000, refreshes=3),
    # Enough orders, and an early kill, that a fast processor cannot finish them all between
    # the collector seeing the kill point and the kill (3,000 at half did, in CI).
    kill_recovery.NAME: kill_recovery.Params(
        orders=10_000, kill_after=0.2, commit_interval_s=0.2, cases=("stable",), timeout_s=180
    ),
    ledger.NAME: ledger.Params(entries=2_000, timeout_s=120),
}


SIDE_BY_SIDE_TINY = sidebyside.Params(
    orders=200,
    warmup=20,
    naive_orders=30,
    naive_warmup=5,
    rate_per_s=100,
    rate_seconds=1,
    lateness=retry_lateness.Params(orders=20, rate_per_s=40, commit_intervals=(1.0,)),
    repeats=1,
    timeout_s=120,
)


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([5], 99) == 5
    assert percentile(list(range(101)), 95) == 95
    stats = summary([3, 1, 2])
    assert (stats["p50"], stats["max"], stats["min"]) == (2, 3, 1)


def test_only_selects_in_the_usual_order() -> None:
    # The callgrind benchmark takes a quarter of an hour: only when asked for by name.
    everything = [name for name in runner.BENCHMARKS if name != instructions.NAME]
    assert runner.selected(only=()) == everything
    assert runner.selected(only=(instructions.NAME,)) == [instructions.NAME]
    assert runner.selected(only=("kill-recovery", "throughput")) == [
        "throughput",
        "kill-recovery",
    ]


def test_the_instruction_total_is_read_from_a_callgrind_profile(tmp_path: Path) -> None:
    profile = tmp_path / "callgrind.out"
    profile.write_text("version: 1\ncmd: python\nevents: Ir\nsummary: 2743912905\n")
    assert instructions.total_instructions(profile) == 2_743_912_905
    profile.write_text("version: 1\nevents: Ir\n")
    with pytest.raises(BenchError, match="no instruction total"):
        instructions.total_instructions(profile)


def test_the_instruction_benchmark_says_what_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = Context(bootstrap="127.0.0.1:9", workdir=tmp_path)
    monkeypatch.setattr(instructions.shutil, "which", lambda _name: None)
    with pytest.raises(BenchError, match="apt-get install valgrind"):
        instructions.run(ctx, instructions.QUICK)
    monkeypatch.setattr(instructions.shutil, "which", lambda _name: "/usr/bin/valgrind")
    with pytest.raises(BenchError, match="0 < small < large"):
        instructions.run(ctx, instructions.Params(small=600, large=600))


def test_with_cases_keeps_the_usual_order() -> None:
    assert sidebyside.with_cases(sidebyside.FULL, ()).cases == sidebyside.CASES
    chosen = sidebyside.with_cases(sidebyside.QUICK, ("main", "bare-quix"))
    assert chosen.cases == ("bare-quix", "main")
    assert chosen.orders == sidebyside.QUICK.orders


def test_results_file_has_no_nan(tmp_path: Path) -> None:
    path = tmp_path / "latest.json"
    results = ResultsFile(path, {"quick": True})
    result = Result("x", "x", ["a"], data={"p50": float("nan"), "n": [1.5]})
    results.append(result, "x")
    document = json.loads(path.read_text())
    assert document["results"] == [{"benchmark": "x", "ok": True, "p50": None, "n": [1.5]}]
    assert fmt(float("nan")) == "-"
    assert fmt(1234.5, 1, " ms") == "1,234.5 ms"


def test_cli_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--bootstrap" in done.stdout and "--only" in done.stdout and "--case" in done.stdout


def _case(label: str, per_s: float | None, per_cpu_s: float | None) -> dict[str, object]:
    return {"label": label, "records": 10, "per_s": per_s, "per_cpu_s": per_cpu_s, "rss_mib": 90}


def test_a_repeated_case_reports_its_median_run() -> None:
    runs = [
        {"case": "main-ALO", "per_s": v, "per_cpu_s": v * 2, "load_1m": [1, 2]}
        for v in (300.0, 100.0, 200.0)
    ]
    row = sidebyside._median_run(runs)
    assert (row["per_s"], row["per_cpu_s"]) == (200.0, 400.0)
    assert [r["per_s"] for r in row["runs"]] == [300.0, 100.0, 200.0]
    assert sidebyside._median_run(runs[:1]) is runs[0]


def test_docs_section_is_replaced_in_place(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(f"# Benchmarks\n\nintro\n\n{docs.BEGIN}\nold figures\n{docs.END}\n\nafter\n")
    cases = {
        "bare-quix-ALO": _case("bare Quix app, at-least-once", 1000.0, 2000.0),
        "main-ALO": _case("orderflow main, at-least-once", 900.0, 1000.0),
        "naive": _case("naive", None, None),
    }
    rows = {name: dict(row) for name, row in cases.items()}
    entry = {
        "benchmark": "side-by-side",
        "cases": cases,
        "targets": sidebyside.evaluate(rows, sidebyside.QUICK),
    }
    document = {"run": {"started_at": "now", "machine": {"cpus": 2}}, "results": [entry]}
    plot, raw = tmp_path / "images" / "plot.png", tmp_path / "bench" / "run.json"
    docs.write(document, page=page, plot=plot, raw=raw)
    docs.write(document, page=page, plot=plot, raw=raw)
    text = page.read_text()
    assert text.startswith("# Benchmarks\n\nintro\n") and text.rstrip().endswith("after")
    assert "old figures" not in text and text.count(docs.BEGIN) == 1
    assert "| orderflow main, at-least-once | 10 | 900 | 1,000 | 0.50× , 0.90×" in text
    assert "| main ALO ÷ bare Quix ALO (records/CPU-s) ≥ 0.85× | 0.50× | **missed** |" in text
    assert "| main ALO ÷ bare Quix ALO (records/s) ≥ 0.85× | 0.90× | met |" in text
    assert "](images/plot.png)" in text and "](bench/run.json)" in text
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert json.loads(raw.read_text()) == document


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_benchmark_end_to_end(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = {
        name: runner.Benchmark(bench.run, TINY[name], TINY[name])
        for name, bench in runner.BENCHMARKS.items()
        if name in TINY
    }
    monkeypatch.setattr(runner, "BENCHMARKS", tiny)
    path = tmp_path / "latest.json"
    console = Console(file=(tmp_path / "out.txt").open("w"), width=160)

    status = runner.run_benchmarks(
        quick=True, bootstrap=kafka_bootstrap, results_path=path, console=console
    )

    output = (tmp_path / "out.txt").read_text()
    document = json.loads(path.read_text())
    assert status == 0, output
    assert document["run"]["broker"] == kafka_bootstrap
    assert document["run"]["machine"]["cpus"] >= 1
    results = {r["benchmark"]: r for r in document["results"]}
    assert list(results) == list(TINY)
    assert all(r["ok"] for r in results.values()), output

    cases = results["throughput"]["cases"]
    assert [c["guarantee"] for c in cases] == ["exactly-once", "at-least-once"]
    for case in cases:
        assert case["end_to_end_per_s"] > 0 and case["producer_per_s"] > 0
        assert case["main_peak_rss_mib"] > 10
    assert cases[0]["duplicates"] == 0

    steady, mixed = results["retry-lateness"]["cases"]
    assert steady["records"] == 20 and steady["early"] == 0
    assert steady["histogram"]["count"] >= 20
    assert mixed["early"] == 0
    assert mixed["short_lateness_ms"]["max"] < 1_500  # not held behind the 4 s record
    assert mixed["long_lateness_ms"] >= 0

    dash = results["dashboard-refresh"]
    assert dash["large"]["topic_totals"][next(iter(dash["large"]["topic_totals"]))] == 3_000
    for kind in dashboard_refresh.REFRESHES:
        assert len(dash["large"]["refresh_ms"][kind]["all"]) == 3
        assert dash["large"]["refresh_ms"][kind]["ratio_to_small"] > 0

    (kill,) = results["kill-recovery"]["cases"]
    assert kill["duplicates"] == 0 and kill["lost"] == 0
    assert 0 < kill["visible_at_kill"] < 10_000
    assert kill["kill_to_visible_s"] > 0

    led = results["ledger"]
    assert led["complete"] and led["ledger_records"] == 2_000 and led["read_s"] > 0


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_side_by_side_end_to_end(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every side-by-side case at a tiny size, and its figures written into a docs page."""
    tiny = runner.Benchmark(sidebyside.run, SIDE_BY_SIDE_TINY, SIDE_BY_SIDE_TINY)
    monkeypatch.setattr(runner, "BENCHMARKS", {sidebyside.NAME: tiny})
    path, page = tmp_path / "latest.json", tmp_path / "docs" / "benchmarks.md"
    page.parent.mkdir()
    page.write_text("# Benchmarks\n")
    console = Console(file=(tmp_path / "out.txt").open("w"), width=160)

    status = runner.run_benchmarks(
        quick=True, bootstrap=kafka_bootstrap, results_path=path, console=console, docs_page=page
    )

    output = (tmp_path / "out.txt").read_text()
    assert status == 0, output
    (result,) = json.loads(path.read_text())["results"]
    assert result["ok"], output
    cases = result["cases"]
    assert set(cases) == {
        "bare-loop", "naive", "bare-quix-ALO", "bare-quix-EOS", "main-ALO", "main-EOS",
        "failure-retry", "retry-due", "failure-dlq", "replay", "latency-ALO", "latency-EOS",
        "scale-1", "scale-2", "lateness",
    }  # fmt: skip
    for name, case in cases.items():
        if name.startswith("latency"):
            assert case["latency_ms"]["p50"] >= 0 and case["rss_mib"] > 10, name
        elif name != "lateness":  # a tiny backlog may be done before its window opens
            assert 0 <= case["records"] <= 220 and case["cpu_s"] >= 0, name
    assert cases["replay"]["records"] == 220 and cases["replay"]["cpu_s"] > 0
    assert cases["scale-2"]["instances"] == 2
    assert cases["lateness"]["early"] == 0 and cases["lateness"]["records"] == 20
    assert {t["met"] for t in result["targets"]} <= {True, False, None}
    assert len(result["targets"]) == 19
    text = page.read_text()
    assert docs.BEGIN in text and "| orderflow main at 100/s, exactly-once |" in text
    assert (page.parent / "images" / "bench-side-by-side.png").stat().st_size > 1000
    assert (page.parent / "bench" / "side-by-side.json").is_file()
