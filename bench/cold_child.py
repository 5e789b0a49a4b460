"""One cold start, in a fresh interpreter: run as a script, never imported by the bench itself.

    python bench/cold_child.py baseline OUT
    python bench/cold_child.py clients OUT SERVICE,SERVICE...
    python bench/cold_child.py handler OUT MODULE FUNCTION EVENT_FILE

BENCH_T0 (the parent's wall clock just before it spawned this process) is the start of the
clock; the figure is the wall time from there until the handler call returned (or, for the
baseline, until one boto3 client exists; for `clients`, until each named one does). Every mode
loads the same harness modules, so the difference is what the handler costs. With `-X
importtime`, a marker on stderr separates what was imported with the handler module from what
its first call imported.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
from typing import Any

MARKER = "bench-cold-child: handler module imported"


class Context:
    """The LambdaContext attributes the handlers and Powertools read."""

    def __init__(self, function_name: str, timeout_seconds: float = 300.0) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = "00000000-0000-4000-8000-000000000000"
        self.log_group_name = "/aws/lambda/bench"
        self.log_stream_name = "bench"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _outcome(answer: Any) -> str:
    """A short word for what the handler answered, so the parent can check the run was meaningful."""
    if not isinstance(answer, dict):
        return type(answer).__name__
    if "statusCode" in answer:
        return f"http {answer['statusCode']}"
    if "status" in answer:
        return str(answer["status"])
    if "batchItemFailures" in answer:
        return f"batch failures {len(answer['batchItemFailures'])}"
    return ",".join(sorted(answer))[:40]


def peak_rss_kb() -> int:
    """VmHWM: this process's own high-water mark. ru_maxrss would not do: Linux carries the
    forking parent's peak across exec, so every child would report the bench's own size."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str]) -> None:
    t0 = float(os.environ["BENCH_T0"])
    mode, out = argv[1], argv[2]
    if mode in ("baseline", "clients"):
        import boto3

        services = argv[3].split(",") if mode == "clients" else ["dynamodb"]
        for service in services:
            boto3.client(service)
        imported = returned = time.time()
        outcome = f"{len(services)} client{'s' if len(services) > 1 else ''}"
    else:
        module_name, function_name, event_file = argv[3], argv[4], argv[5]
        with open(event_file, encoding="utf-8") as handle:
            event = json.load(handle)
        module = importlib.import_module(module_name)
        imported = time.time()
        print(MARKER, file=sys.stderr, flush=True)
        answer = module.lambda_handler(event, Context(function_name))
        returned = time.time()
        outcome = _outcome(answer)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "seconds": returned - t0,
        "import_seconds": imported - t0,
        "call_seconds": returned - imported,
        "maxrss_kb": peak_rss_kb(),
        "ru_maxrss_kb": usage.ru_maxrss,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "outcome": outcome,
    }
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv)
