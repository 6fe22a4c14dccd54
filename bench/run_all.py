"""Run every benchmark, one after another, and write one table of what each measured beside the
machine's load while it ran.

    python bench/run_all.py                       # every bench/*.py in full mode (an hour or more)
    python bench/run_all.py --quick               # each one's smoke mode (what CI runs)
    python bench/run_all.py queue_page open311_http   # some of them

Each benchmark runs as its own process with its output shown as it goes. The table (printed at the end
and written to `bench/results/<UTC time>.md`) gives per benchmark its wall time, the CPU its processes
used (it and every server or worker it started and waited for), the 1-minute load average before and
after, and its figures: the JSON that benchmarks measuring both databases hand over
(`bench.support.runner.record`), else its last lines of output. A load average above the number of
CPUs means the machine was busy with something else: read the ratios, not the absolute figures.
Stops at the first benchmark that fails (after writing the table so far) and exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TAIL_LINES = 3


@dataclass
class Outcome:
    name: str
    returncode: int
    wall_s: float
    cpu_s: float
    load_before: float
    load_after: float
    figures: list[dict[str, Any]] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(script: Path, quick: bool) -> Outcome:
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as results:
        env = {**os.environ, "BENCH_RESULTS": results.name, "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, str(script), *(["--quick"] if quick else [])]
        print(f"\n== {script.name}{' --quick' if quick else ''} ==", flush=True)
        load_before, cpu_before, began = os.getloadavg()[0], children_cpu(), time.perf_counter()
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) as child:
            assert child.stdout is not None
            for line in child.stdout:
                sys.stdout.write(line)
                if line.strip():
                    tail.append(line.rstrip())
        figures = [json.loads(line) for line in Path(results.name).read_text().splitlines() if line]
    return Outcome(
        name=script.stem,
        returncode=child.returncode,
        wall_s=time.perf_counter() - began,
        cpu_s=children_cpu() - cpu_before,
        load_before=load_before,
        load_after=os.getloadavg()[0],
        figures=figures,
        tail=list(tail),
    )


def summary(figures: dict[str, Any]) -> str:
    """The scalar figures of one database's run, `key=value` (lists and nested tables left out)."""
    shown = []
    for key, value in figures.items():
        if isinstance(value, float):
            shown.append(f"{key}={value:.4g}")
        elif isinstance(value, int | str | bool):
            shown.append(f"{key}={value}")
    return ", ".join(shown)


def table(outcomes: list[Outcome], quick: bool) -> str:
    lines = [
        f"# Benchmarks{' (smoke mode)' if quick else ''}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"{os.cpu_count()} CPUs; load is the 1-minute load average before → after each benchmark.",
        "",
        "| benchmark | result | wall s | CPU s | load | figures |",
        "|---|---|---:|---:|---|---|",
    ]
    for o in outcomes:
        if o.figures:
            figures = "<br>".join(f"{f['database']}: {summary(f['figures'])}" for f in o.figures)
        else:
            figures = "<br>".join(o.tail)
        result = "ok" if o.returncode == 0 else f"failed ({o.returncode})"
        lines.append(
            f"| {o.name} | {result} | {o.wall_s:.0f} | {o.cpu_s:.0f} "
            f"| {o.load_before:.2f} → {o.load_after:.2f} | {figures.replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="benchmarks to run (file names without .py); default all")
    parser.add_argument("--quick", action="store_true", help="each benchmark's smoke mode")
    args = parser.parse_args()
    scripts = sorted(p for p in BENCH.glob("*.py") if p.stem != Path(__file__).stem)
    if args.names:
        known = {p.stem: p for p in scripts}
        unknown = sorted(set(args.names) - set(known))
        if unknown:
            raise SystemExit(f"no such benchmark: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        scripts = [known[name] for name in args.names]
    outcomes: list[Outcome] = []
    for script in scripts:
        outcomes.append(run(script, args.quick))
        if outcomes[-1].returncode != 0:
            break
    report = table(outcomes, args.quick)
    folder = BENCH / "results"
    folder.mkdir(exist_ok=True)
    written = folder / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}{'-quick' if args.quick else ''}.md"
    written.write_text(report, encoding="utf-8")
    print(f"\n{report}\nwritten to {written.relative_to(ROOT)}")
    failed = [o.name for o in outcomes if o.returncode != 0]
    if failed:
        raise SystemExit(f"benchmark failed: {failed[0]}")


if __name__ == "__main__":
    main()
