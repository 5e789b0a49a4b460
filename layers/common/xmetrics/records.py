"""X timeline pages -> export records (DESIGN.md's schema, version 3): pure functions.

Version 2 added `read_tier` (which read tier read the line, services/tiers.py); version 3 adds
`post_type`, `referenced_tweets`, `in_reply_to_user_id` and `conversation_id`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 3
_METRIC_FAMILIES = ("public_metrics", "non_public_metrics", "organic_metrics")
_MEDIA_FIELDS = ("media_key", "type", "duration_ms")
# X's August 2026 spec renamed these counts (a post's repost_count, a user's post_count); the
# export keeps one name so queries don't break.
_RENAMES = {"repost_count": "retweet_count", "post_count": "tweet_count"}
_ERROR_KEYS = ("title", "detail", "type", "field", "parameter", "resource_type", "resource_id", "value")


@dataclass
class Batch:
    """The records of one account's run plus the errors that named no post."""

    records: list[dict[str, Any]] = field(default_factory=list)
    run_errors: list[dict[str, Any]] = field(default_factory=list)


def _metrics(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    # X's names pass through as they are (shared, never mutated: the page is only serialized);
    # a copy only when the August 2026 spelling needs renaming.
    if _RENAMES.keys().isdisjoint(raw):
        return raw
    return {_RENAMES.get(str(k), str(k)): v for k, v in raw.items()}


def _copy_metrics(source: dict[str, Any], target: dict[str, Any]) -> None:
    for family in _METRIC_FAMILIES:
        metrics = _metrics(source.get(family))
        if metrics is not None:
            target[family] = metrics


def _media_item(raw: dict[str, Any]) -> dict[str, Any]:
    item = {k: raw[k] for k in _MEDIA_FIELDS if k in raw}
    _copy_metrics(raw, item)
    return item


def _error(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {"detail": str(raw)[:500]}
    return {k: raw[k] for k in _ERROR_KEYS if k in raw}


def _error_targets(raw: dict[str, Any]) -> set[str]:
    return {str(raw[k]) for k in ("resource_id", "value") if isinstance(raw.get(k), str | int)}


def build(
    pages: Iterable[dict[str, Any]],
    *,
    user_id: str,
    username: str,
    snapshot_at: str,
    read_tier: Callable[[dict[str, Any]], str],
) -> Batch:
    """`read_tier(tweet)` names the tier that read a post."""
    batch = Batch()
    seen: set[str] = set()
    for page in pages:
        media = {
            m["media_key"]: m for m in (page.get("includes") or {}).get("media") or () if "media_key" in m
        }
        by_tweet: dict[str, dict[str, Any]] = {}
        by_media: dict[str, list[dict[str, Any]]] = {}
        for tweet in page.get("data") or ():
            tweet_id = str(tweet["id"])
            if tweet_id in seen:
                continue  # a post can move across a page boundary between two requests
            seen.add(tweet_id)
            record = _record(tweet, media, user_id=user_id, username=username, snapshot_at=snapshot_at)
            record["read_tier"] = read_tier(tweet)
            by_tweet[tweet_id] = record
            for key in (tweet.get("attachments") or {}).get("media_keys") or ():
                by_media.setdefault(str(key), []).append(record)
            batch.records.append(record)
        for raw in page.get("errors") or ():
            _place_error(raw, by_tweet, by_media, batch)
    return batch


def _place_error(
    raw: Any, by_tweet: dict[str, dict[str, Any]], by_media: dict[str, list[dict[str, Any]]], batch: Batch
) -> None:
    error = _error(raw)
    targets = _error_targets(raw) if isinstance(raw, dict) else set()
    owners = [by_tweet[t] for t in targets if t in by_tweet]
    owners += [r for t in targets for r in by_media.get(t, ()) if r not in owners]
    if owners:
        for record in owners:
            record["errors"].append(error)
    else:
        batch.run_errors.append(error)


def post_type(references: list[Any]) -> str:
    """post | reply | quote | repost, from the post's referenced_tweets. A repost of anything is a
    repost; a reply that also quotes is a reply (it lives in a conversation)."""
    kinds = {r.get("type") for r in references if isinstance(r, dict)}
    if "retweeted" in kinds:
        return "repost"
    if "replied_to" in kinds:
        return "reply"
    if "quoted" in kinds:
        return "quote"
    return "post"


def _references(tweet: dict[str, Any]) -> list[Any]:
    # X's August 2026 spec calls the field referenced_posts.
    raw = tweet.get("referenced_tweets", tweet.get("referenced_posts"))
    return list(raw) if isinstance(raw, list) else []


def _record(
    tweet: dict[str, Any], media: dict[str, dict[str, Any]], *, user_id: str, username: str, snapshot_at: str
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "snapshot_at": snapshot_at,
        "user_id": user_id,
        "username": username,
        "tweet_id": str(tweet["id"]),
    }
    for key in ("created_at", "text"):
        if key in tweet:
            record[key] = tweet[key]
    references = _references(tweet)
    record["post_type"] = post_type(references)
    record["referenced_tweets"] = references
    for key in ("in_reply_to_user_id", "conversation_id"):
        value = tweet.get(key)
        record[key] = str(value) if value is not None else None
    _copy_metrics(tweet, record)
    keys = (tweet.get("attachments") or {}).get("media_keys") or ()
    record["media"] = [_media_item(media[k]) for k in keys if k in media]
    record["errors"] = []  # filled in by _place_error, once the page's errors are read
    return record


def to_jsonl(records: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    import orjson

    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    for record in records:
        yield dumps(record, option=newline)


# The accounts dataset's own schema version: its lines change on their own, not with the posts'.
ACCOUNT_SCHEMA_VERSION = 1


def account(data: dict[str, Any], *, snapshot_at: str) -> dict[str, Any]:
    """users/me -> the day's account line: public counts as X served them (absent stays absent)."""
    record: dict[str, Any] = {
        "schema_version": ACCOUNT_SCHEMA_VERSION,
        "snapshot_at": snapshot_at,
        "user_id": str(data["id"]),
        "username": str(data["username"]),
        "name": data.get("name"),
    }
    metrics = _metrics(data.get("public_metrics"))
    if metrics is not None:
        record["public_metrics"] = metrics
    return record
