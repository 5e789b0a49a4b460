"""Throughput client: the app's own fetch -> join -> serialize path (what FetchFunction runs
between reading the token and the S3 put).

    python bench/fetch_ours.py INFO_JSON RUNS
"""

from __future__ import annotations

from typing import Any

from bench.clientloop import main
from xmetrics import records
from xmetrics.timeutil import parse_utc
from xmetrics.x_api import XApi

_api: XApi | None = None


def fetch(info: dict[str, Any]) -> tuple[bytes, int]:
    global _api
    if _api is None:  # one client per process, as a warm Lambda keeps it
        _api = XApi(info["url"])
    timeline = _api.timeline(
        info["token"],
        info["user_id"],
        start_time=parse_utc(info["start"]),
        end_time=parse_utc(info["end"]),
        wait_budget=lambda: 0.0,
    )
    batch = records.build(
        timeline.pages,
        user_id=info["user_id"],
        username=info["username"],
        snapshot_at=info["end"],
        read_tier=lambda tweet: "all",
    )
    # Exporter.put's serialization, without the S3 call.
    return b"".join(records.to_jsonl(batch.records)), len(timeline.pages)


if __name__ == "__main__":
    main(fetch)
