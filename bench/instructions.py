"""``instructions``: instructions per record, counted by callgrind, main next to the bare Quix app.

Timings on a shared 2-vCPU VM move by ±20 % from one run to the next; instruction counts do not.
Each worker runs under ``valgrind --tool=callgrind`` (``PYTHONHASHSEED=0``) twice, over a
backlog of ``small`` and of ``large`` orders in fresh topics, and stops (SIGTERM, a graceful
stop) once every output is visible to a read_committed reader. The per-record figure is the
difference of the two totals divided by ``large - small``: start-up, group join and shutdown
cancel out. What does not cancel is the idle polling while the run waits for its reader (a few
thousand instructions per poll): ≈ 1 % of the figures here, so read them to ±2 %.

Counted are all of the worker's threads (librdkafka's included), as the CPU-seconds of the
side-by-side benchmark are, but not the broker's. Opt-in (``--only instructions``): valgrind
makes each run 50-100× slower, about 15 minutes in all. Needs valgrind (``apt-get install
valgrind``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.collect import Collector
from bench.report import Result, fmt
from bench.sidebyside import _fill, _orders
from bench.support import BenchError, Context, Processor, fresh_settings, own_topics
from processors.core.order import Simulation

NAME = "instructions"
GUARANTEES = {"alo": "at-least-once", "eos": "exactly-once"}


@dataclass(frozen=True)
class Case:
    label: str
    module: str
    role: str
    guarantee: str
    transient: bool = False  # 100 % transient orders: main writes each to the retry topic


CASES: dict[str, Case] = {
    "bare-quix-eos": Case("bare Quix app, exactly-once", "bench.workers", "bare-quix", "eos"),
    "main-eos": Case("orderflow main, exactly-once", "processors", "main", "eos"),
    "bare-quix-alo": Case("bare Quix app, at-least-once", "bench.workers", "bare-quix", "alo"),
    "main-alo": Case("orderflow main, at-least-once", "processors", "main", "alo"),
    "failure": Case(
        "orderflow main, 100 % transient → retry, EOS", "processors", "main", "eos", True
    ),
}
# (numerator, denominator, target): the side-by-side targets, by instruction count.
RATIOS = (
    ("main-eos", "bare-quix-eos", 0.85),
    ("main-alo", "bare-quix-alo", 0.85),
    ("failure", "main-eos", 0.7),
)


@dataclass(frozen=True)
class Params:
    small: int = 1_000
    large: int = 3_000
    cases: tuple[str, ...] = tuple(CASES)
    timeout_s: float = 1_200.0  # one run under valgrind, start-up included


FULL = Params()
QUICK = Params(small=200, large=600, cases=("bare-quix-eos", "main-eos"))


def run(ctx: Context, params: Params) -> Result:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise BenchError("needs valgrind (apt-get install valgrind)")
    result = Result(
        NAME,
        f"instructions per record (callgrind; the runs over {params.small:,} and "
        f"{params.large:,} orders, differenced)",
        ["worker", "instructions per record", "÷ baseline (fewer is better: baseline ÷ it)"],
    )
    per_record: dict[str, float] = {}
    for name in params.cases:
        case = CASES[name]
        totals = [_count(ctx, valgrind, name, case, n, params.timeout_s) for n in _sizes(params)]
        per_record[name] = (totals[1] - totals[0]) / (params.large - params.small)
    targets = []
    for name in params.cases:
        shown = fmt(per_record[name])
        ratio = next(((b, t) for a, b, t in RATIOS if a == name and b in per_record), (None, None))
        baseline, target = ratio
        if baseline is None:
            result.rows.append([CASES[name].label, shown, "-"])
            continue
        value = per_record[baseline] / per_record[name]
        met = value >= target  # type: ignore[operator]
        targets.append({"case": name, "of": baseline, "ratio": value, "target": target, "met": met})
        result.rows.append(
            [CASES[name].label, shown, f"{value:.2f}× of {CASES[baseline].label} (≥ {target}×)"]
        )
    result.data = {
        "params": {"small": params.small, "large": params.large},
        "per_record": per_record,
        "targets": targets,
    }
    result.notes.append("each figure ±2 % (idle polls while a run waits for its reader)")
    return result


def _sizes(params: Params) -> tuple[int, int]:
    if not 0 < params.small < params.large:
        raise BenchError(f"need 0 < small < large, got {params.small} and {params.large}")
    return params.small, params.large


def _count(
    ctx: Context, valgrind: str, name: str, case: Case, orders: int, timeout_s: float
) -> int:
    """The total instruction count of one worker run over ``orders`` fresh orders."""
    settings = fresh_settings(ctx, f"instr-{name}", processing_guarantee=GUARANTEES[case.guarantee])
    simulate = Simulation(error="transient", fail_attempts=1) if case.transient else None
    out = settings.topic_retry if case.transient else settings.topic_processed
    profile = ctx.workdir / f"callgrind-{name}-{orders}.out"
    with own_topics(settings):
        _fill(settings, _orders(orders, seed=11, simulate=simulate))
        worker = Processor(
            case.role,
            settings,
            ctx.workdir,
            instance_id=f"instr-{name}",
            module=case.module,
            wrapper=(
                "env",
                "PYTHONHASHSEED=0",
                valgrind,
                "--tool=callgrind",
                f"--callgrind-out-file={profile}",
            ),
        )
        with Collector(settings, [out], keep_values=False) as seen:
            worker.start()
            try:
                seen.wait_for(
                    lambda: seen.count(out) >= orders,
                    timeout_s,
                    f"{orders:,} records of {case.label} under valgrind",
                    worker.check_alive,
                )
            finally:
                code = worker.terminate(timeout_s=300)
    if code != 0:
        raise BenchError(f"{case.label} exited {code} under valgrind; log {worker.log_path}")
    return total_instructions(profile)


def total_instructions(profile: Path) -> int:
    """The ``summary:`` (or ``totals:``) line of a callgrind profile: instructions executed."""
    for line in profile.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise BenchError(f"no instruction total in {profile}")
