"""X API v2: the authenticated user and their timeline with metrics.

HTTP status is mapped to one exception class per case here, once (as tweepy's client does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from xmetrics.errors import (
    RateLimitedError,
    TransportError,
    UnauthorizedError,
    UsageCappedError,
    XApiError,
    XServerError,
)
from xmetrics.limits import X_TIMEOUT
from xmetrics.timeutil import iso_z
from xmetrics.transport import Backoff, Response, Session, new_session, send

# referenced_tweets, in_reply_to_user_id and conversation_id tell a post from a reply, a quote or a
# repost; the referenced_tweets.id expansion is left out (it pulls in other accounts' posts).
TWEET_FIELDS = (
    "attachments,created_at,conversation_id,in_reply_to_user_id,referenced_tweets,"
    "public_metrics,non_public_metrics,organic_metrics"
)
MEDIA_FIELDS = "media_key,type,duration_ms,public_metrics,non_public_metrics,organic_metrics"
# Posts older than 30 days (PublicHistoryDays): private fields would only earn errors there.
_PRIVATE = ("non_public_metrics", "organic_metrics")
PUBLIC_TWEET_FIELDS = ",".join(f for f in TWEET_FIELDS.split(",") if f not in _PRIVATE)
PUBLIC_MEDIA_FIELDS = ",".join(f for f in MEDIA_FIELDS.split(",") if f not in _PRIVATE)
EXPANSIONS = "attachments.media_keys"
# The daily account snapshot: one user read a day (X bills it as one).
USER_FIELDS = "public_metrics,created_at,description,verified,profile_image_url"
PAGE_SIZE = 100
# X's smallest max_results.
MIN_PAGE_SIZE = 5
# X reaches at most the latest 3,200 posts of a timeline: 32 full pages (more when a budget
# shrinks them). The bound stops a server that keeps sending next_token from looping us forever.
TIMELINE_REACH = 3200
# With exclude=replies X reaches the latest 800 instead (its timeline docs).
REPLIES_EXCLUDED_REACH = 800
PAGE_BOUND_SLACK = 8


def reach(exclude: str) -> int:
    """How many of an account's latest posts X's timeline reaches under this `exclude` value."""
    return REPLIES_EXCLUDED_REACH if "replies" in exclude.split(",") else TIMELINE_REACH


@dataclass(frozen=True)
class XUser:
    user_id: str
    username: str
    name: str


@dataclass
class Timeline:
    pages: list[dict[str, Any]] = field(default_factory=list)
    rate_limited_waits: int = 0
    retries: int = 0
    # The caller's `enough` stopped the paging while X still had older posts in the window.
    stopped_early: bool = False


class XApi:
    def __init__(
        self,
        base_url: str,
        *,
        session: Session | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        timeout: tuple[float, float] = X_TIMEOUT,
        exclude: str = "",
    ) -> None:
        """`exclude` is X's timeline `exclude` ("retweets", "replies", both comma-separated, or "")."""
        self._exclude = exclude
        self._base = base_url.rstrip("/")
        self._session = session or new_session()
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._timeout = timeout

    def me(self, access_token: str) -> XUser:
        body, _ = self._get("/2/users/me", access_token, {}, wait_budget=lambda: 0.0)
        data = body.get("data")
        if not isinstance(data, dict) or not data.get("id") or not data.get("username"):
            raise XServerError(502, "Bad response", "users/me returned no user")
        return XUser(str(data["id"]), str(data["username"]), str(data.get("name", "")))

    def account(self, access_token: str) -> dict[str, Any]:
        """The authenticated user with its public counts, as X serves it (`data` of users/me).
        One attempt: the day's next run tries again, and this one has its bookkeeping to write."""
        body, _ = self._get(
            "/2/users/me",
            access_token,
            {"user.fields": USER_FIELDS},
            wait_budget=lambda: 0.0,
            attempts=1,
        )
        data = body.get("data")
        if not isinstance(data, dict) or not data.get("id") or not data.get("username"):
            raise XServerError(502, "Bad response", "users/me returned no user")
        return data

    def timeline(
        self,
        access_token: str,
        user_id: str,
        *,
        start_time: datetime,
        end_time: datetime,
        wait_budget: Callable[[], float],
        enough: Callable[[dict[str, Any]], bool] | None = None,
        page_size: int = PAGE_SIZE,
        private: bool = True,
    ) -> Timeline:
        """Every page of the user's posts in [start_time, end_time), newest first, or an exception:
        never a part, unless `enough(page)`, called with every page as it arrives, says to stop
        while X has more (then `stopped_early` tells).

        `wait_budget` says how many seconds the caller can still spend waiting out a 429.
        `page_size` is max_results, the same for every page of the window. `private=False` asks
        for public fields only (posts past X's 30 days for private metrics).
        """
        if not MIN_PAGE_SIZE <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be {MIN_PAGE_SIZE}-{PAGE_SIZE}, got {page_size}")
        params: dict[str, str] = {
            "max_results": str(page_size),
            "start_time": iso_z(start_time),
            "end_time": iso_z(end_time),
            "tweet.fields": TWEET_FIELDS if private else PUBLIC_TWEET_FIELDS,
            "expansions": EXPANSIONS,
            "media.fields": MEDIA_FIELDS if private else PUBLIC_MEDIA_FIELDS,
        }
        if self._exclude:
            params["exclude"] = self._exclude
        timeline = Timeline()
        path = f"/2/users/{user_id}/tweets"
        max_pages = -(-TIMELINE_REACH // page_size) + PAGE_BOUND_SLACK
        for _ in range(max_pages):
            body, stats = self._get(path, access_token, params, wait_budget=wait_budget)
            timeline.pages.append(body)
            timeline.retries += stats.retries
            timeline.rate_limited_waits += stats.waits
            next_token = (body.get("meta") or {}).get("next_token")
            stop = enough is not None and enough(body)
            if not next_token:
                return timeline
            if stop:
                timeline.stopped_early = True
                return timeline
            params["pagination_token"] = str(next_token)
        raise XServerError(502, "Too many pages", f"more than {max_pages} pages for one timeline")

    def _get(
        self,
        path: str,
        access_token: str,
        params: dict[str, str],
        *,
        wait_budget: Callable[[], float],
        attempts: int | None = None,
    ) -> tuple[dict[str, Any], _Stats]:
        stats = _Stats()
        url = f"{self._base}{path}?{urlencode(params)}" if params else self._base + path
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        attempt = 0
        while True:
            try:
                response = send(self._session, "GET", url, headers=headers, timeout=self._timeout)
                return self._parse(response), stats
            except RateLimitedError as exc:
                pause = max(0.0, exc.reset_at - self._clock()) + 1.0
                if pause > wait_budget():
                    raise
                stats.waits += 1
                self._backoff.sleep(pause)
            except (TransportError, XServerError):
                # GETs are idempotent: a retry cannot spend anything.
                if attempt >= (attempts or self._backoff.attempts) - 1:
                    raise
                self._backoff.pause(attempt)
                attempt += 1
                stats.retries += 1

    def _parse(self, response: Response) -> dict[str, Any]:
        status = response.status_code
        if status == 200:
            import orjson

            try:
                body = orjson.loads(response.content)
            except ValueError as exc:
                raise XServerError(502, "Bad response", "truncated or invalid JSON") from exc
            if not isinstance(body, dict):
                raise XServerError(502, "Bad response", "JSON body is not an object")
            return body
        title, detail, kind = _problem(response)
        if status in (402, 429) and _usage_capped(title, detail, kind):
            raise UsageCappedError(status, title, detail)
        if status == 429:
            reset = response.headers.get("x-rate-limit-reset", "")
            # isascii: str.isdigit() also accepts digits float() refuses, such as "²".
            reset_at = float(reset) if reset.isascii() and reset.isdigit() else self._clock() + 60.0
            raise RateLimitedError(reset_at, detail)
        if status == 401:
            raise UnauthorizedError(status, title, detail)
        if status >= 500:
            raise XServerError(status, title, detail)
        raise XApiError(status, title, detail)


@dataclass
class _Stats:
    retries: int = 0
    waits: int = 0


def _usage_capped(title: str, detail: str, kind: str) -> bool:
    """X's usage cap (`.../problems/usage-capped`, "UsageCapExceeded") or exhausted prepaid credits
    (402 "CreditsDepleted", `.../problems/credits`, as reported from X): the only answers a 429 or
    402 gives that waiting does not cure."""
    kind = kind.rstrip("/")
    words = f"{title} {detail}".lower()
    return (
        kind.endswith(("/usage-capped", "/credits"))
        or title in ("UsageCapExceeded", "CreditsDepleted")
        or "usage cap" in words
        or "credits" in words
    )


def _problem(response: Response) -> tuple[str, str, str]:
    """An error answer's title, detail and problem type, whatever shape X gave it."""
    try:
        body = response.json()
    except ValueError:
        return response.reason, "", ""
    if not isinstance(body, dict):
        return response.reason, "", ""
    detail = body.get("detail")
    if not detail and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]
        detail = first.get("message") or first.get("detail") if isinstance(first, dict) else None
    return str(body.get("title", ""))[:200], str(detail or "")[:300], str(body.get("type", ""))[:200]
