"""The measuring loop both throughput clients share (standard library only: it runs in tweepy's venv too).

A client is a function that fetches every page of the account, joins media onto posts and returns
the JSON-lines body. One warm-up run (connection pool, lazy imports), then `runs` timed runs, then
one run under tracemalloc for the Python heap's peak.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

Fetch = Callable[[dict[str, Any]], tuple[bytes, int]]  # info -> (JSONL body, pages)


def _vm_hwm_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def measure(fetch: Fetch, info: dict[str, Any], runs: int) -> dict[str, Any]:
    body, pages = fetch(info)
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        again, _ = fetch(info)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        if again != body:
            raise RuntimeError("two runs over the same window wrote different exports")
    hwm = _vm_hwm_kb()
    tracemalloc.start()
    fetch(info)
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "cpu": cpu,
        "wall": wall,
        "pages": pages,
        "posts": body.count(b"\n"),
        "bytes": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "vm_hwm_kb": hwm,
        "heap_peak_bytes": heap_peak,
    }


def main(fetch: Fetch) -> None:
    info = json.loads(sys.argv[1])
    print(json.dumps(measure(fetch, info, int(sys.argv[2]))))
