"""UTC timestamps in the one format X and the export use: 2026-11-28T16:00:00Z."""

from __future__ import annotations

from datetime import UTC, datetime


def from_epoch(ts: float) -> datetime:
    return datetime.fromtimestamp(int(ts), tz=UTC)


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(value: str) -> datetime:
    """ISO 8601 with an explicit UTC offset; naive or non-UTC input is rejected, not guessed."""
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("timestamp needs a UTC offset (e.g. 2026-11-28T16:00:00Z)")
    if moment.utcoffset().total_seconds() != 0:  # type: ignore[union-attr]
        raise ValueError("timestamp must be in UTC (Z or +00:00)")
    return moment.astimezone(UTC).replace(microsecond=0)
