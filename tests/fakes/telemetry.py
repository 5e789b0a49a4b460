"""Telemetry kept in memory, so a test can assert on the metrics and log lines a run produced."""

from __future__ import annotations

from typing import Any


class Recorder:
    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def count(self, name: str, value: float = 1, unit: str = "Count") -> None:
        self.metrics[name] = self.metrics.get(name, 0) + value

    def info(self, message: str, **fields: Any) -> None:
        self.lines.append(("INFO", message, fields))

    def warning(self, message: str, **fields: Any) -> None:
        self.lines.append(("WARNING", message, fields))
