"""The narrow seam between services and Powertools' Logger/Metrics, so services stay testable."""

from __future__ import annotations

from typing import Any, Protocol


class Telemetry(Protocol):
    def count(self, name: str, value: float = 1, unit: str = "Count") -> None: ...

    def info(self, message: str, **fields: Any) -> None: ...

    def warning(self, message: str, **fields: Any) -> None: ...


class Recorder:
    """Keeps metrics and log lines in memory: for tests, and for `make demo`'s report."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def count(self, name: str, value: float = 1, unit: str = "Count") -> None:
        self.metrics[name] = self.metrics.get(name, 0) + value

    def info(self, message: str, **fields: Any) -> None:
        self.lines.append(("INFO", message, fields))

    def warning(self, message: str, **fields: Any) -> None:
        self.lines.append(("WARNING", message, fields))
