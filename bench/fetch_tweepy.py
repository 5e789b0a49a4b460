"""Throughput client: tweepy 4's Client + Paginator against the sandbox, writing the same JSON lines
with the standard library's json. Runs in bench/.work/venv; tweepy is never an app dependency.

    python bench/fetch_tweepy.py INFO_JSON RUNS

tweepy.Client.request() hard-codes https://api.twitter.com; the client's requests.Session is its
only seam, so a Session that rewrites that prefix points it at the sandbox without touching
anything else tweepy does (parameter handling, response models, pagination).
"""

from __future__ import annotations

import json
from typing import Any

import requests
import tweepy

from bench.clientloop import main

TWITTER = "https://api.twitter.com"
# The same request as xmetrics.x_api (constants repeated: this venv cannot import the app).
TWEET_FIELDS = [
    "attachments",
    "created_at",
    "conversation_id",
    "in_reply_to_user_id",
    "referenced_tweets",
    "public_metrics",
    "non_public_metrics",
    "organic_metrics",
]
MEDIA_FIELDS = ["media_key", "type", "duration_ms", "public_metrics", "non_public_metrics", "organic_metrics"]
EXPANSIONS = ["attachments.media_keys"]
FAMILIES = ("public_metrics", "non_public_metrics", "organic_metrics")
RENAMES = {"repost_count": "retweet_count"}


class SandboxSession(requests.Session):
    def __init__(self, base_url: str) -> None:
        super().__init__()
        self._base = base_url.rstrip("/")

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if isinstance(url, str) and url.startswith(TWITTER):
            url = self._base + url[len(TWITTER) :]
        return super().request(method, url, *args, **kwargs)


def _families(source: dict[str, Any], target: dict[str, Any]) -> None:
    for family in FAMILIES:
        if isinstance(source.get(family), dict):
            target[family] = {RENAMES.get(k, k): v for k, v in source[family].items()}


def _record(tweet: tweepy.Tweet, media: dict[str, tweepy.Media], info: dict[str, Any]) -> dict[str, Any]:
    raw = tweet.data
    record: dict[str, Any] = {
        "schema_version": 3,
        "snapshot_at": info["end"],
        "user_id": info["user_id"],
        "username": info["username"],
        "tweet_id": str(raw["id"]),
    }
    for key in ("created_at", "text"):
        if key in raw:
            record[key] = raw[key]
    references = list(raw.get("referenced_tweets") or [])
    kinds = {r.get("type") for r in references}
    record["post_type"] = (
        "repost"
        if "retweeted" in kinds
        else "reply"
        if "replied_to" in kinds
        else "quote"
        if "quoted" in kinds
        else "post"
    )
    record["referenced_tweets"] = references
    for key in ("in_reply_to_user_id", "conversation_id"):
        record[key] = str(raw[key]) if raw.get(key) is not None else None
    _families(raw, record)
    items = []
    for key in (raw.get("attachments") or {}).get("media_keys") or ():
        if key in media:
            item = {
                k: media[key].data[k] for k in ("media_key", "type", "duration_ms") if k in media[key].data
            }
            _families(media[key].data, item)
            items.append(item)
    record["media"] = items
    record["errors"] = []
    record["read_tier"] = "all"
    return record


_client: tweepy.Client | None = None


def fetch(info: dict[str, Any]) -> tuple[bytes, int]:
    global _client
    if _client is None:
        _client = tweepy.Client(bearer_token=info["token"])
        _client.session = SandboxSession(info["url"])
    lines: list[bytes] = []
    pages = 0
    for response in tweepy.Paginator(
        _client.get_users_tweets,
        info["user_id"],
        max_results=100,
        start_time=info["start"],
        end_time=info["end"],
        tweet_fields=TWEET_FIELDS,
        expansions=EXPANSIONS,
        media_fields=MEDIA_FIELDS,
    ):
        pages += 1
        media = {m.media_key: m for m in response.includes.get("media", [])}
        for tweet in response.data or ():
            line = json.dumps(_record(tweet, media, info), ensure_ascii=False, separators=(",", ":"))
            lines.append(line.encode("utf-8") + b"\n")
    return b"".join(lines), pages


if __name__ == "__main__":
    main(fetch)
