"""Throughput: CPU to fetch, join and serialize a 3,200-post account, ours beside tweepy's.

Three processes: the sandbox alone in one (its CPU is not the client's), then each client in a
fresh interpreter of its own, timed with time.process_time() around the work only.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fixture import ROOT, WORK

TWEEPY = "tweepy==4.17.0"
VENV = WORK / "venv"
HERE = Path(__file__).resolve().parent
POSTS = 3200
DAYS = 28


@dataclass
class ClientRun:
    name: str
    cpu: list[float]
    wall: list[float]
    pages: int
    posts: int
    bytes: int
    sha256: str
    vm_hwm_kb: int
    heap_peak_bytes: int

    def merge(self, other: ClientRun) -> ClientRun:
        """Two processes of the same client: their runs pooled, their peaks the higher one."""
        if other.sha256 != self.sha256:
            raise RuntimeError(f"{self.name}: two processes wrote different exports")
        return ClientRun(
            self.name,
            self.cpu + other.cpu,
            self.wall + other.wall,
            self.pages,
            self.posts,
            self.bytes,
            self.sha256,
            max(self.vm_hwm_kb, other.vm_hwm_kb),
            max(self.heap_peak_bytes, other.heap_peak_bytes),
        )

    @property
    def cpu_median(self) -> float:
        return float(statistics.median(self.cpu))

    @property
    def wall_median(self) -> float:
        return float(statistics.median(self.wall))


@dataclass
class ThroughputResult:
    runs: int  # timed runs per process
    processes: int  # processes per client
    ours: ClientRun
    tweepy: ClientRun
    served: dict[str, int]
    tweepy_version: str

    @property
    def ratio(self) -> float:
        return self.ours.cpu_median / self.tweepy.cpu_median

    @property
    def same_output(self) -> bool:
        return self.ours.sha256 == self.tweepy.sha256


def ensure_tweepy() -> Path:
    """tweepy in a venv of its own under bench/.work (gitignored), made once and reused."""
    python = VENV / "bin" / "python"
    stamp = VENV / f".installed-{TWEEPY}"
    if not stamp.exists():
        for command in (
            [sys.executable, "-m", "venv", "--clear", str(VENV)],
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", TWEEPY],
        ):
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(
                    f"{' '.join(command[:4])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
                )
        stamp.touch()
    return python


def _env(*paths: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    return env


def _client(
    name: str, python: Path, script: str, info: dict[str, Any], runs: int, env: dict[str, str]
) -> ClientRun:
    done = subprocess.run(
        [str(python), str(HERE / script), json.dumps(info), str(runs)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{done.stderr[-3000:]}")
    return ClientRun(name=name, **json.loads(done.stdout.strip().splitlines()[-1]))


def measure(runs: int, processes: int = 2) -> ThroughputResult:
    tweepy_python = ensure_tweepy()
    app_env = _env(ROOT / "layers" / "common", ROOT)
    server = subprocess.Popen(
        [sys.executable, str(HERE / "sandbox_server.py"), str(POSTS), str(DAYS)],
        env=app_env,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        info = json.loads(server.stdout.readline())
        ours: ClientRun | None = None
        theirs: ClientRun | None = None
        # Alternating processes, so drift on the machine touches both clients alike.
        for _ in range(processes):
            one = _client(
                "x-metrics-export (XApi + records)",
                Path(sys.executable),
                "fetch_ours.py",
                info,
                runs,
                app_env,
            )
            ours = one if ours is None else ours.merge(one)
            # Only the bench package (standard library code) joins tweepy's venv path, never the app's layer.
            other = _client(
                "tweepy Client + Paginator", tweepy_python, "fetch_tweepy.py", info, runs, _env(ROOT)
            )
            theirs = other if theirs is None else theirs.merge(other)
    finally:
        server.stdin.close()
    served = json.loads(server.stdout.readline() or "{}")
    server.wait(timeout=30)
    version = subprocess.run(
        [str(tweepy_python), "-c", "import tweepy; print(tweepy.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert ours is not None and theirs is not None
    return ThroughputResult(runs, processes, ours, theirs, served, version)
