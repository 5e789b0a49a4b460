"""Runs every section in order and writes bench/results.md."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import bill, calls, coldstart, report, scale, throughput
from bench.counting import CallCounter
from bench.fixture import ROOT, start_stack

RESULTS = Path(__file__).resolve().parent / "results.md"
COLD_RUNS = 15
THROUGHPUT_RUNS = 9


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _revision() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{head} + uncommitted changes" if git("status", "--porcelain") else head


def machine() -> report.Machine:
    return report.Machine(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpus=len(os.sched_getaffinity(0)),
        cpu_model=_cpu_model(),
        platform=f"{platform.system()} {platform.release()} {platform.machine()}",
        python=platform.python_version(),
        revision=_revision(),
    )


def main() -> None:
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[bench {time.perf_counter() - started:6.1f}s] {message}", flush=True)

    # Installed before any app client exists: clients copy the session's handlers when created.
    counter = CallCounter()
    counter.install()
    progress("starting moto server + X sandbox, connecting accounts")
    stack = start_stack()
    try:
        call_counts = calls.measure(stack, counter, progress)
        cold = coldstart.measure(stack, COLD_RUNS, progress)
    finally:
        stack.stop()
    progress("throughput: ours and tweepy against a sandbox process")
    fetch = throughput.measure(THROUGHPUT_RUNS)
    cpu_per_page = fetch.ours.cpu_median / fetch.ours.pages
    plan = scale.build(call_counts, cpu_per_page)
    charges = bill.measure(progress, cpu_per_page)
    text = report.render(machine(), cold, call_counts, fetch, plan, charges, time.perf_counter() - started)
    RESULTS.write_text(text, encoding="utf-8")
    progress(f"wrote {RESULTS.relative_to(ROOT)}")
    print()
    print(text)
