"""The narrow seam between services and Powertools' Logger/Metrics, so services stay testable."""

from __future__ import annotations

from typing import Any, Protocol


class Telemetry(Protocol):
    def count(self, name: str, value: float = 1, unit: str = "Count") -> None: ...

    def info(self, message: str, **fields: Any) -> None: ...

    def warning(self, message: str, **fields: Any) -> None: ...
