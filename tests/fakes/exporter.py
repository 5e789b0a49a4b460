"""An export sink in memory: objects by key, each write counted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from xmetrics.errors import ExportWriteError
from xmetrics.exporter import ExportedObject, export_key


@dataclass
class FakeExporter:
    prefix: str = "x-metrics"
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    writes: int = 0  # of the tweets dataset: the posts' exports
    failing: set[str] = field(default_factory=set)  # datasets whose PutObject fails

    def dataset(self, name: str) -> dict[str, list[dict[str, Any]]]:
        return {k: v for k, v in self.objects.items() if k.startswith(f"{self.prefix}/{name}/")}

    def key_for(
        self, user_id: str, snapshot: datetime, *, window: tuple[datetime, datetime] | None = None
    ) -> str:
        return export_key(self.prefix, user_id, snapshot, window=window)

    def put(
        self,
        user_id: str,
        snapshot: datetime,
        records: Iterable[dict[str, Any]],
        *,
        window: tuple[datetime, datetime] | None = None,
        dataset: str = "tweets",
    ) -> ExportedObject:
        rows = list(records)
        if dataset in self.failing:
            raise ExportWriteError("PutObject", "ServiceUnavailable")
        key = export_key(self.prefix, user_id, snapshot, window, dataset=dataset)
        self.objects[key] = rows
        if dataset == "tweets":
            self.writes += 1
        return ExportedObject(key=key, count=len(rows), size=sum(len(str(r)) for r in rows))
