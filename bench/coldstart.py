"""Cold start per function: fresh interpreters, from spawn to the first handler call returning."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import shipped
from bench.fixture import LARGE, ROOT, SMALL, WORK, child_environment
from local import flows
from local.stack import LocalStack, handler_module
from local.template import function_code, load

CHILD = Path(__file__).resolve().parent / "cold_child.py"
MARKER = "bench-cold-child: handler module imported"
FUNCTIONS = ("AuthorizeFunction", "CallbackFunction", "FetchFunction")
# The AWS clients each function's measured run creates (section 2 counts their calls): the
# reference rows create just these with bare boto3, to show what the app adds above them.
CLIENTS = {
    "AuthorizeFunction": ("dynamodb", "secretsmanager"),
    "CallbackFunction": ("dynamodb", "secretsmanager", "kms"),
    "FetchFunction": ("dynamodb", "kms", "s3"),
}


@dataclass
class Sample:
    seconds: float
    import_seconds: float
    call_seconds: float
    maxrss_kb: int  # VmHWM: this process's own peak
    ru_maxrss_kb: int  # getrusage's figure, which Linux carries over from the forking parent
    cpu_seconds: float
    outcome: str


@dataclass
class Series:
    name: str
    event: str
    samples: list[Sample] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(s, attr) for s in self.samples))

    def peak_rss_mb(self) -> float:
        return max(s.maxrss_kb for s in self.samples) / 1024

    def ru_maxrss_mb(self) -> float:
        return max(s.ru_maxrss_kb for s in self.samples) / 1024

    def outcomes(self) -> str:
        seen: dict[str, int] = defaultdict(int)
        for s in self.samples:
            seen[s.outcome] += 1
        return ", ".join(f"{k} x{v}" for k, v in seen.items())


@dataclass
class ImportShare:
    package: str
    at_import_ms: float
    first_call_ms: float


@dataclass
class ColdStartResult:
    runs: int
    baseline: Series
    references: dict[str, Series]  # bare boto3 creating the function's clients, no calls
    functions: dict[str, Series]
    shipped: dict[str, Series]  # the same, with the code laid out as `sam build` ships it (no .pyc)
    compiled: dict[str, Series]  # as shipped, plus the layer build's compileall step
    large_fetch: Series
    imports: dict[str, list[ImportShare]]
    module_of: dict[str, str]


def _module(logical_id: str) -> str:
    code_dir, handler = function_code(load(), logical_id)
    return ".".join(code_dir.relative_to(ROOT).parts) + "." + handler.rsplit(".", 1)[0]


class EventSource:
    """Writes the event each run needs: Callback's is a fresh, valid one every time (codes are one-use)."""

    def __init__(self, stack: LocalStack, folder: Path) -> None:
        self._stack = stack
        self._folder = folder

    def _write(self, name: str, event: dict[str, Any]) -> Path:
        path = self._folder / f"{name}.json"
        path.write_text(json.dumps(event), encoding="utf-8")
        return path

    def authorize(self) -> Path:
        return self._write("connect", flows.load_event("connect.json"))

    def callback(self) -> Path:
        assert self._stack.x is not None
        self._stack.x.login_as(SMALL.name)
        hop = flows.start_connect(self._stack)
        redirect = flows.authorize_at_x(hop.location)
        return self._write("callback", flows.callback_event(urlsplit(redirect.location).query, hop.cookie))

    def fetch(self, user_id: str = SMALL.user_id) -> Path:
        return self._write(f"fetch-{user_id}", {"user_id": user_id})


def _spawn(
    stack: LocalStack, args: list[str], *, importtime: bool = False, env: dict[str, str] | None = None
) -> tuple[Sample, str]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        out_path = Path(out.name)
    flags = ["-X", "importtime"] if importtime else []
    env = child_environment(stack, **(env or {}), BENCH_T0=repr(time.time()))
    done = subprocess.run(
        [sys.executable, *flags, str(CHILD), args[0], str(out_path), *args[1:]],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold-start child {args[:2]} failed:\n{done.stderr[-2000:]}")
    sample = Sample(**json.loads(out_path.read_text(encoding="utf-8")))
    out_path.unlink()
    return sample, done.stderr


def parse_importtime(stderr: str, top: int = 8) -> list[ImportShare]:
    """Self time per top-level package, split into what the handler module's import loaded and
    what its first call loaded (boto3 clients are built lazily)."""
    shares: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    phase = 0
    for line in stderr.splitlines():
        if line.startswith(MARKER):
            phase = 1
            continue
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, self_us, _cumulative, name = (
            part.strip() for part in line.replace("import time:", "|").split("|")
        )
        root = name.split(".")[0]
        shares["(stdlib)" if root in sys.stdlib_module_names else root][phase] += int(self_us) / 1000
    ranked = sorted(shares.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))
    return [ImportShare(name, round(a, 1), round(b, 1)) for name, (a, b) in ranked[:top]]


def measure(stack: LocalStack, runs: int, progress: Callable[[str], None]) -> ColdStartResult:
    handler_module("FetchFunction")  # the parent's own import, so nothing below pays for it
    modules = {logical_id: _module(logical_id) for logical_id in FUNCTIONS}
    baseline = Series("import boto3 + one client", "-")
    series = {
        "AuthorizeFunction": Series("AuthorizeFunction", "events/connect.json (302 to X)"),
        "CallbackFunction": Series(
            "CallbackFunction", "valid callback (fresh code + state + cookie per run; 200 connected)"
        ),
        "FetchFunction": Series(
            "FetchFunction", f'{{"user_id"}} of a connected account, {SMALL.tweets} posts (1 page)'
        ),
    }
    large = Series("FetchFunction", f"{LARGE.tweets} posts with media (32 pages)")
    references = {
        k: Series(f"import boto3 + {len(v)} clients ({k}'s)", ", ".join(v)) for k, v in CLIENTS.items()
    }
    variants = {
        "shipped": (
            shipped.build(WORK / "shipped", FUNCTIONS),
            {k: Series(f"{k}, as shipped (no .pyc)", v.event) for k, v in series.items()},
        ),
        "compiled": (
            shipped.build(WORK / "shipped-compiled", FUNCTIONS, compiled=True),
            {k: Series(f"{k}, as shipped + compileall", v.event) for k, v in series.items()},
        ),
    }

    def lambda_env(code: shipped.Shipped, logical_id: str) -> dict[str, str]:
        # Lambda's order: the function's code, then the layer, then the runtime's boto3. Both
        # are read-only there: nothing compiled at run time is kept.
        paths = [str(code.code[logical_id]), str(code.layer)]
        return {"PYTHONPATH": ":".join(paths), "PYTHONDONTWRITEBYTECODE": "1"}

    with tempfile.TemporaryDirectory(prefix="bench-cold-") as folder:
        events = EventSource(stack, Path(folder))
        make_event: dict[str, Callable[[], Path]] = {
            "AuthorizeFunction": events.authorize,
            "CallbackFunction": events.callback,
            "FetchFunction": events.fetch,
        }
        # Interleaved, so drift on the machine (caches, other load) touches every series alike.
        for i in range(runs):
            baseline.samples.append(_spawn(stack, ["baseline"])[0])
            for logical_id, reference in references.items():
                reference.samples.append(_spawn(stack, ["clients", ",".join(CLIENTS[logical_id])])[0])
            for logical_id, target in series.items():
                event = make_event[logical_id]()
                target.samples.append(
                    _spawn(stack, ["handler", modules[logical_id], logical_id, str(event)])[0]
                )
                for code, variant in variants.values():
                    event = make_event[logical_id]()
                    args = ["handler", shipped.handler_module(logical_id), logical_id, str(event)]
                    sample, _ = _spawn(stack, args, env=lambda_env(code, logical_id))
                    variant[logical_id].samples.append(sample)
            progress(f"cold start {i + 1}/{runs}")
        for _ in range(3):
            event = events.fetch(LARGE.user_id)
            large.samples.append(
                _spawn(stack, ["handler", modules["FetchFunction"], "FetchFunction", str(event)])[0]
            )
        imports: dict[str, list[ImportShare]] = {}
        for logical_id in FUNCTIONS:
            event = make_event[logical_id]()
            _, stderr = _spawn(
                stack, ["handler", modules[logical_id], logical_id, str(event)], importtime=True
            )
            imports[logical_id] = parse_importtime(stderr)
        _, stderr = _spawn(stack, ["baseline"], importtime=True)
        imports["baseline"] = parse_importtime(stderr)
    return ColdStartResult(
        runs,
        baseline,
        references,
        series,
        variants["shipped"][1],
        variants["compiled"][1],
        large,
        imports,
        modules,
    )
