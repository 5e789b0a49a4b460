"""The two API v2 endpoints the app reads, answering in the shapes its parsing and retries must handle."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from local.x_sandbox.oauth import _Grant
from local.x_sandbox.timeline import (
    _ID_RE,
    TIMELINE_REACH,
    TIMELINE_REACH_WITHOUT_REPLIES,
    TWEET_FIELDS,
    USER_FIELDS,
    SandboxUser,
    _bad_value,
    _iso,
    _page_token,
    _TimelineQuery,
    followers_count,
    grown_media,
    grown_tweet_metrics,
    growth,
    post_type,
)
from local.x_sandbox.usage import Usage
from local.x_sandbox.wire import _Halt, _json, _Reply, _Request

READ_SCOPES = frozenset({"tweet.read", "users.read"})
USER_EXPANSIONS = frozenset(
    "affiliation affiliation.user_id most_recent_tweet_id most_recent_post_id pinned_tweet_id "
    "pinned_post_id".split()
)
ME_LISTS = {
    "user.fields": USER_FIELDS,
    "expansions": USER_EXPANSIONS,
    "tweet.fields": TWEET_FIELDS,
    "post.fields": TWEET_FIELDS,
}
PRIVATE_FIELDS = ("non_public_metrics", "organic_metrics", "promoted_metrics")
PRIVATE_METRICS_AGE = timedelta(days=30)
_TWEETS_PATH = re.compile(r"^/2/users/([^/]+)/tweets$")


@dataclass
class _Window:
    limit: int
    start: float
    count: int = 0


def _generic_problem_body(status: int) -> dict[str, Any]:
    phrase = HTTPStatus(status).phrase
    return {"title": phrase, "type": "about:blank", "status": status, "detail": phrase}


def _generic_problem(status: int, headers: dict[str, str] | None = None) -> _Reply:
    return _json(status, _generic_problem_body(status), headers, problem=True)


class Api(Usage):
    """users/me and users/:id/tweets. State is set by XSandbox.__init__, behind its one lock."""

    metrics_spelling: str  # "repost": serve v2.167's names (repost_count, post_count, referenced_posts)
    # On by default: posts' counts grow with their age at the sandbox clock (see growth); off, every
    # read shows a post's final counts.
    metrics_grow: bool
    metrics_grow_tau_hours: float
    # How the 3,200 / 800 reach meets `exclude` (see _reach): X's docs leave it open, hence switches.
    reach_counts_excluded: bool
    exclude_thins_pages: bool
    exclude_replies_keeps_self_replies: bool
    rate_limits: dict[str, int]
    rate_window: float
    _windows: dict[tuple[str, str], _Window]

    def _bearer(self, request: _Request) -> _Grant:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            access = self._access.get(token.strip()) if scheme.lower() == "bearer" else None
            if access is None or access.revoked or self._clock() >= access.expires_at:
                raise _Halt(_generic_problem(401))
            grant = access.grant
        if not READ_SCOPES <= set(grant.scope.split()):
            raise _Halt(_generic_problem(403))
        return grant

    def _admit(self, endpoint: str, grant: _Grant) -> dict[str, str]:
        """The usage cap, then the rate limit: the rate headers of a request X will serve.

        X does not document the order of its checks, nor whether a capped request counts against the
        rate window. The report of a capped 429 showing 39,999 requests remaining suggests the windows
        are not spent on it, so a capped answer shows the window as it stands and counts nothing.
        """
        refusal = self._usage_refusal(self._peek_rate(endpoint, grant))
        if refusal is not None:
            raise _Halt(refusal)
        return self._spend_rate(endpoint, grant)

    def _peek_rate(self, endpoint: str, grant: _Grant) -> dict[str, str]:
        now = self._clock()
        with self._lock:
            window = self._windows.get((endpoint, grant.user_id))
            if window is None or now >= window.start + self.rate_window:
                window = _Window(self.rate_limits[endpoint], now)
            return self._rate_headers(window, self.rate_limits[endpoint])

    def _rate_headers(self, window: _Window, limit: int) -> dict[str, str]:
        return {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(max(0, limit - window.count)),
            "x-rate-limit-reset": str(int(window.start + self.rate_window)),
        }

    def _spend_rate(self, endpoint: str, grant: _Grant) -> dict[str, str]:
        """Count one request; the rate headers, or a 429 when a window is used up."""
        now = self._clock()
        buckets = [(endpoint, grant.user_id)]
        if f"{endpoint}_app" in self.rate_limits:
            buckets.append((f"{endpoint}_app", grant.client_id))
        with self._lock:
            windows = []
            for key in buckets:
                window = self._windows.get(key)
                if window is None or now >= window.start + self.rate_window:
                    window = self._windows[key] = _Window(self.rate_limits[key[0]], now)
                window.limit = self.rate_limits[key[0]]  # tests may lower a limit mid-window
                windows.append(window)
            exhausted = [w for w in windows if w.count >= w.limit]
            if not exhausted:
                for window in windows:
                    window.count += 1
            shown = exhausted[0] if exhausted else windows[0]
            headers = self._rate_headers(shown, shown.limit)
        if exhausted:
            raise _Halt(_generic_problem(429, headers))
        return headers

    def _invalid_request(self, errors: list[dict[str, Any]], headers: dict[str, str]) -> _Halt:
        body = {
            "errors": errors,
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": self.problem_base + "invalid-request",
        }
        return _Halt(_json(400, body, headers, problem=True))

    def _me(self, request: _Request) -> _Reply:
        grant = self._bearer(request)
        headers = self._admit("me", grant)
        errors: list[dict[str, Any]] = []
        chosen = self._check_lists(request.query, ME_LISTS, (), errors)
        if errors:
            raise self._invalid_request(errors, headers)
        with self._lock:
            user = self._users[grant.user_id]
            data = self._render_user(user, chosen.get("user.fields", set()))
        self._bill(users=[user.user_id])
        return _json(200, {"data": data}, headers)

    def _tweets(self, request: _Request) -> _Reply:
        grant = self._bearer(request)
        headers = self._admit("tweets", grant)
        path_match = _TWEETS_PATH.match(request.path.rstrip("/"))
        user_id = path_match.group(1) if path_match else ""
        errors: list[dict[str, Any]] = []
        if not _ID_RE.match(user_id):
            errors.append(_bad_value("id", user_id, "does not match ^[0-9]{1,19}$"))
        query = self._timeline_query(request.query, errors)
        if errors:
            raise self._invalid_request(errors, headers)
        # Posts appear when the clock reaches their created_at (same fixed format: strings compare as
        # times); X's reach counts from the newest post there is, so from the newest visible one.
        now = _iso(datetime.fromtimestamp(self._clock(), UTC))
        with self._lock:
            user = self._users.get(user_id)
            reach = (
                self._reach([t for t in user.tweets if t["created_at"] <= now], query.exclude) if user else []
            )
            media = dict(user.media) if user else {}
        if user is None:  # X answers 200 with a resource-not-found problem
            detail = f"Could not find user with id: [{user_id}]."
            return _json(
                200, {"errors": [self._problem("Not Found Error", detail, "user", user_id)]}, headers
            )
        matched = [t for t in reach if self._selected(t, query)]
        if self.exclude_thins_pages:  # a page's slots are taken before the exclusion thins them
            slots = matched[: query.max_results]
            page = [t for t in slots if self._kept(t, query.exclude)]
        else:
            matched = [t for t in matched if self._kept(t, query.exclude)]
            slots = page = matched[: query.max_results]
        body = self._render_page(page, media, query, own=grant.user_id == user_id, author=user)
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
        if len(matched) > len(slots):
            meta["next_token"] = _page_token(slots[-1]["id"])
        body["meta"] = meta
        # Billed once served: a fault that loses the answer afterwards (drop_after_processing, truncate)
        # still bills. X documents no refund for an answer the client never read.
        includes = body.get("includes", {})
        self._bill(
            [post["id"] for post in body.get("data", [])],
            [item["media_key"] for item in includes.get("media", [])],
            [item["id"] for item in includes.get("users", [])],
        )
        return _json(200, body, headers)

    def _reach(self, visible: list[dict[str, Any]], exclude: set[str]) -> list[dict[str, Any]]:
        """The posts users/:id/tweets can reach, newest first, before the query's own selection.

        Documented (GET /2/users/:id/tweets reference, `exclude`): "When exclude=retweets is used, the
        maximum historical Tweets returned is still 3200. When the exclude=replies parameter is used for
        any value, only the most recent 800 Tweets are available." The migration guide: "exclude=replies
        reduces the possible historical Post limit to the most recent 800". Nothing says whether the
        excluded posts take places within the 3,200 or the 800. v1.1's user_timeline documented that
        they do ("Native retweets ... [are] included in this total, regardless of whether include_rts
        is set to false"), and "still 3200" reads the same way; so by default the reach is the newest
        3,200 (800) posts of every type, and the exclusion removes posts from inside it: an account
        with many reposts reaches fewer than 3,200 of its own posts. `reach_counts_excluded = False`
        serves the other reading (3,200 / 800 posts that survive the exclusion).
        """
        limit = TIMELINE_REACH_WITHOUT_REPLIES if "replies" in exclude else TIMELINE_REACH
        if self.reach_counts_excluded:
            return visible[:limit]
        return [t for t in visible if self._kept(t, exclude)][:limit]

    def _kept(self, tweet: dict[str, Any], exclude: set[str]) -> bool:
        """Whether `exclude` lets the post through.

        `exclude_replies_keeps_self_replies` reproduces a public report (tweepy#2069, Feb 2023, raised
        with X by tweepy's maintainer) that exclude=replies does not remove replies to the user's own
        posts (self-threads); X never documented it either way, so it is off by default.
        """
        kind = post_type(tweet)
        if kind == "repost":
            return "retweets" not in exclude
        if kind == "reply" and "replies" in exclude:
            own = tweet.get("in_reply_to_user_id") == tweet.get("author_id")
            return own and self.exclude_replies_keeps_self_replies
        return True

    def _render_page(
        self,
        page: list[dict[str, Any]],
        media: dict[str, dict[str, Any]],
        query: _TimelineQuery,
        *,
        own: bool,
        author: SandboxUser,
    ) -> dict[str, Any]:
        data: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        included: list[dict[str, Any]] = []
        expand_media = "attachments.media_keys" in query.expansions
        now = self._clock()
        cutoff = datetime.fromtimestamp(now, UTC) - PRIVATE_METRICS_AGE
        for tweet in page:
            # A repost's counts are the original's, another account's post: never this account's own.
            repost = post_type(tweet) == "repost"
            recent = datetime.fromisoformat(tweet["created_at"].replace("Z", "+00:00")) >= cutoff
            private_ok = own and recent and not repost
            shown = tweet
            if self.metrics_grow:
                born = author.referenced[tweet["referenced_tweets"][0]["id"]] if repost else tweet
                share = growth(born["created_at"], now, author.added_at, self.metrics_grow_tau_hours)
                shown = {**tweet, **grown_tweet_metrics(tweet, share)}
            data.append(self._render_tweet(shown, query.fields, private_ok, errors, expand_media))
            for key in (tweet.get("attachments") or {}).get("media_keys", []) if expand_media else []:
                if key in media:
                    item = grown_media(media[key], share) if self.metrics_grow else media[key]
                    included.append(self._render_media(item, query.media_fields, private_ok, errors))
        body: dict[str, Any] = {"data": data} if data else {}
        includes: dict[str, Any] = {}
        if included:
            includes["media"] = included
        if data and "author_id" in query.expansions:
            with self._lock:
                includes["users"] = [self._render_user(author, query.user_fields or set())]
        if includes:
            body["includes"] = includes
        if errors:
            body["errors"] = errors
        return body

    def _problem(self, title: str, detail: str, kind: str, resource_id: str, **extra: str) -> dict[str, Any]:
        """A partial error about one resource, as X puts beside `data`."""
        problem = {"value": resource_id, "detail": detail, "title": title, "resource_type": kind}
        problem.update(resource_id=resource_id, parameter=extra.pop("parameter", "id"))
        problem["type"] = self.problem_base + extra.pop("problem", "resource-not-found")
        return {**problem, **extra}

    def _field_error(self, kind: str, resource_id: str, name: str) -> dict[str, Any]:
        noun = "Tweet" if kind == "tweet" else "Media"
        detail = f"Sorry, you are not authorized to access '{name}' on the {noun} with ids {resource_id}."
        section = "data" if kind == "tweet" else "includes"
        return self._problem(
            "Field Authorization Error",
            detail,
            kind,
            resource_id,
            parameter=name,
            field=name,
            section=section,
            problem="not-authorized-for-field",
        )

    def _spelled(self, metrics: dict[str, int]) -> dict[str, int]:
        if self.metrics_spelling != "repost":
            return dict(metrics)
        return {("repost_count" if k == "retweet_count" else k): v for k, v in metrics.items()}

    def _render_tweet(
        self,
        tweet: dict[str, Any],
        fields: set[str],
        private_ok: bool,
        errors: list[dict[str, Any]],
        expand_media: bool,
    ) -> dict[str, Any]:
        out = {
            "id": tweet["id"],
            "text": tweet["text"],
            "edit_history_tweet_ids": list(tweet["edit_history_tweet_ids"]),
        }
        wanted = fields | ({"attachments"} if expand_media else set())
        for name in sorted(wanted):
            if name in PRIVATE_FIELDS and not private_ok:
                errors.append(self._field_error("tweet", tweet["id"], name))
            elif name in tweet and name.endswith("_metrics"):
                out[name] = self._spelled(tweet[name])
            elif name == "referenced_tweets" and name in tweet and self.metrics_spelling == "repost":
                # v2.167's name. Its post.fields enum offers neither name (only the Post schema has
                # `referenced_posts`): the sandbox serves it when asked by v2.165's field name.
                out["referenced_posts"] = json.loads(json.dumps(tweet[name]))
            elif name in tweet:
                out[name] = json.loads(json.dumps(tweet[name]))
        return out

    def _render_user(self, user: SandboxUser, fields: set[str]) -> dict[str, Any]:
        """A user object: id, name, username, and those asked-for fields the sandbox models.

        Modelled: created_at, description, verified, profile_image_url (fixed per user and seed) and
        public_metrics. Other user.fields are accepted and left out, as X leaves out what a user lacks.
        Call with the lock held (public_metrics reads the timeline).
        """
        out: dict[str, Any] = {"id": user.user_id, "name": user.name, "username": user.username}
        for name in sorted(fields):
            if name == "public_metrics":
                out[name] = self._user_metrics(user)
            elif name in ("created_at", "description", "verified", "profile_image_url"):
                out[name] = user.profile[name]
        return out

    def _user_metrics(self, user: SandboxUser) -> dict[str, int]:
        """The user's public_metrics at the sandbox clock.

        tweet_count counts the visible posts of every type (v2.167: "Number of Posts (including
        Reposts) created by this User"); media_count the media attached to the visible posts that are
        the user's own (v2.167: "Number of media items posted by this User"); like_count, the likes the
        user gave, creeps up daily; followers_count follows timeline.followers_count; following and
        listed counts stay fixed. The generated timeline is the account's whole history here, which a
        real account's counts are not. v2.167 spells tweet_count post_count (metrics_spelling "repost").
        """
        now = self._clock()
        visible = [t for t in user.tweets if t["created_at"] <= _iso(datetime.fromtimestamp(now, UTC))]
        media = sum(len((t.get("attachments") or {}).get("media_keys", [])) for t in visible)
        days = max(0, int((now - user.added_at) // 86_400))
        profile = user.profile
        count_name = "post_count" if self.metrics_spelling == "repost" else "tweet_count"
        return {
            "followers_count": followers_count(user, now),
            "following_count": profile["following_count"],
            count_name: len(visible),
            "listed_count": profile["listed_count"],
            "like_count": profile["likes_base"] + days * profile["likes_per_day"],
            "media_count": media,
        }

    def _render_media(
        self, item: dict[str, Any], fields: set[str], private_ok: bool, errors: list[dict[str, Any]]
    ) -> dict[str, Any]:
        out = {"media_key": item["media_key"], "type": item["type"]}
        for name in sorted(fields):
            if name in PRIVATE_FIELDS and item["type"] == "video" and not private_ok:
                errors.append(self._field_error("media", item["media_key"], name))
            elif name in item:
                out[name] = json.loads(json.dumps(item[name]))
        return out
