"""X's posts and media, generated from a seed so runs repeat, and the timeline query that selects them."""

from __future__ import annotations

import random
import re
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# The enums of v2.165's tweet.fields / expansions and v2.167's post.fields / expansions, merged.
TWEET_FIELDS = frozenset(
    "article article_title attachments author_id card_uri community_id context_annotations conversation_id "
    "created_at display_text_range edit_controls edit_history_tweet_ids entities geo id in_reply_to_user_id "
    "lang matched_media_notes media_metadata non_public_metrics note_post note_request_suggestions "
    "note_tweet organic_metrics paid_partnership possibly_sensitive promoted_metrics public_metrics "
    "referenced_tweets reply_settings scopes source suggested_source_links "
    "suggested_source_links_with_counts text withheld".split()
)
EXPANSIONS = frozenset(
    "article.cover_media article.media_entities attachments.media_keys attachments.media_source_tweet "
    "attachments.poll_ids author_id edit_history_tweet_ids edit_history_post_ids entities.mentions.username "
    "geo.place_id in_reply_to_user_id entities.note.mentions.username referenced_tweets.id "
    "referenced_tweets.id.attachments.media_keys referenced_tweets.id.author_id referenced_posts "
    "username".split()
)
MEDIA_FIELDS = frozenset(
    "alt_text duration_ms height media_key non_public_metrics organic_metrics preview_image_url "
    "promoted_metrics public_metrics type url variants width".split()
)
USER_FIELDS = frozenset(
    "affiliation confirmed_email connection_status created_at description entities id is_identity_verified "
    "location most_recent_tweet_id name parody pinned_tweet_id profile_banner_url profile_image_url "
    "protected public_metrics receives_your_dm subscribes_to_you subscription subscription_type url "
    "username verified verified_followers_count verified_type withheld".split()
)
POLL_FIELDS = frozenset("duration_minutes end_datetime id options voting_status".split())
PLACE_FIELDS = frozenset("contained_within country country_code full_name geo id name place_type".split())
TIMELINE_LISTS = {
    "tweet.fields": TWEET_FIELDS,
    "post.fields": TWEET_FIELDS,
    "expansions": EXPANSIONS,
    "media.fields": MEDIA_FIELDS,
    "user.fields": USER_FIELDS,
    "poll.fields": POLL_FIELDS,
    "place.fields": PLACE_FIELDS,
    "exclude": frozenset({"replies", "retweets"}),
}
TIMELINE_SCALARS = ("max_results", "pagination_token", "start_time", "end_time", "since_id", "until_id")
_PUBLIC_METRICS = (
    "retweet_count",
    "reply_count",
    "like_count",
    "quote_count",
    "bookmark_count",
    "impression_count",
)
_NON_PUBLIC_METRICS = ("impression_count", "url_link_clicks", "user_profile_clicks", "engagements")
_ORGANIC_METRICS = (
    "impression_count",
    "like_count",
    "reply_count",
    "retweet_count",
    "url_link_clicks",
    "user_profile_clicks",
)
_PLAYBACK = tuple(f"playback_{quartile}_count" for quartile in (0, 25, 50, 75, 100))
TIMELINE_REACH = 3200
EARLIEST_TIME = datetime(2010, 11, 6, tzinfo=UTC)
SNOWFLAKE_EPOCH_MS = 1288834974657
_ID_RE = re.compile(r"^[0-9]{1,19}$")
_USERNAME_RE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
_PHRASES = (
    "Shipping notes from the metrics lab|What we learned from a week of experiments|Small fixes, big wins|"
    "Behind the scenes of today's release|Quick tip for cleaner dashboards|Why retention beats reach|"
    "Clip from the live session|Three charts that changed our roadmap|A thread on measuring what matters"
).split("|")


@dataclass
class SandboxUser:
    user_id: str
    username: str
    name: str
    tweets: list[dict[str, Any]]  # newest first; full tweet objects incl. private metrics
    media: dict[str, dict[str, Any]] = field(default_factory=dict)  # media_key -> full media object


@dataclass
class _TimelineQuery:
    max_results: int = 10
    before_id: int | None = None  # from pagination_token
    since_id: int | None = None
    until_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    fields: set[str] = field(default_factory=set)
    expansions: set[str] = field(default_factory=set)
    media_fields: set[str] = field(default_factory=set)


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse_time(value: str) -> datetime | None:
    if not _RFC3339_RE.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


def _page_token(anchor_id: str) -> str:
    """Opaque to clients: 'posts older than anchor_id', with a checksum so edits are caught."""
    return _b36(int(anchor_id)) + _b36(zlib.crc32(b"x-sandbox:" + anchor_id.encode())).rjust(7, "0")


def _read_page_token(token: str) -> int | None:
    if len(token) < 8 or not re.fullmatch(r"[0-9a-z]+", token):
        return None
    anchor = str(int(token[:-7], 36))
    return int(anchor) if _page_token(anchor) == token else None


def _invalid(name: str, value: str, message: str) -> dict[str, Any]:
    return {"parameters": {name: [value]}, "message": message}


def _bad_value(name: str, value: str, why: str) -> dict[str, Any]:
    return _invalid(name, value, f"The `{name}` query parameter value [{value}] {why}")


def _snowflake(ms: int, worker: int, sequence: int) -> str:
    return str(((ms - SNOWFLAKE_EPOCH_MS) << 22) | ((worker % 1024) << 12) | (sequence % 4096))


def _tweet_metrics(rng: random.Random) -> dict[str, dict[str, int]]:
    impressions = int(rng.lognormvariate(7.0, 1.1)) + 40
    c = {"impression_count": impressions, "like_count": int(impressions * rng.uniform(0.004, 0.04))}
    c["retweet_count"] = int(c["like_count"] * rng.uniform(0.05, 0.3))
    c["reply_count"] = int(c["like_count"] * rng.uniform(0.02, 0.2))
    c["quote_count"] = int(c["retweet_count"] * rng.uniform(0.0, 0.3))
    c["bookmark_count"] = int(c["like_count"] * rng.uniform(0.0, 0.2))
    c["url_link_clicks"] = int(impressions * rng.uniform(0.0, 0.01))
    c["user_profile_clicks"] = int(impressions * rng.uniform(0.0, 0.01))
    # Engagements: every interaction, plus detail expands and the like; always below impressions.
    c["engagements"] = sum(v for k, v in c.items() if k != "impression_count") + int(impressions * 0.005)
    # Public counts include paid activity, organic ones do not; about one post in eight was promoted.
    share = rng.uniform(0.55, 0.9) if rng.random() < 0.125 else 1.0
    return {
        "public_metrics": {k: c[k] for k in _PUBLIC_METRICS},
        "non_public_metrics": {k: c[k] for k in _NON_PUBLIC_METRICS},
        "organic_metrics": {k: int(c[k] * share) for k in _ORGANIC_METRICS},
    }


def _video(rng: random.Random, key: str, impressions: int) -> dict[str, Any]:
    views = int(impressions * rng.uniform(0.2, 0.7))
    quartiles = [int(views * rng.uniform(0.7, 1.0))]
    for _ in range(4):  # fewer viewers reach each later quartile
        quartiles.append(int(quartiles[-1] * rng.uniform(0.35, 0.9)))
    playback = dict(zip(_PLAYBACK, quartiles, strict=True))
    share = rng.uniform(0.6, 1.0)
    media_id = key.split("_", 1)[1]
    item = _still(rng, key, "video")
    item.update(duration_ms=rng.randint(3_000, 180_000), public_metrics={"view_count": views})
    item["preview_image_url"] = f"https://pbs.twimg.com/amplify_video_thumb/{media_id}/img/{media_id}.jpg"
    item["non_public_metrics"] = playback
    item["organic_metrics"] = {
        **{k: int(v * share) for k, v in playback.items()},
        "view_count": int(views * share),
    }
    return item


def _still(rng: random.Random, key: str, kind: str) -> dict[str, Any]:
    media_id = key.split("_", 1)[1]
    item: dict[str, Any] = {"media_key": key, "type": kind, "width": 1280, "height": rng.choice((720, 960))}
    if kind == "photo":
        item["url"] = f"https://pbs.twimg.com/media/{media_id}.jpg"
    elif kind == "animated_gif":
        item["preview_image_url"] = f"https://pbs.twimg.com/tweet_video_thumb/{media_id}.jpg"
    return item


class Timelines:
    """The users and their timelines; the query rules users/:id/tweets and users/me check against.

    State is set by XSandbox.__init__, behind its one lock.
    """

    _clock: Callable[[], float]
    _seed: int
    _lock: threading.Lock
    _users: dict[str, SandboxUser]  # by user id
    _login: str | None  # the account signed in at X: it is who consents

    # ------------------------------------------------------------ users and their posts

    def add_user(
        self,
        username: str,
        *,
        user_id: str | None = None,
        tweet_count: int = 25,
        days: int = 25,
        video_ratio: float = 0.3,
        photo_ratio: float = 0.2,
        gif_ratio: float = 0.0,
    ) -> SandboxUser:
        if not _USERNAME_RE.match(username):
            raise ValueError(f"X usernames are 1-15 letters, digits or underscores: {username!r}")
        with self._lock:
            index = len(self._users)
            rng = random.Random(self._seed + index)
            uid = user_id or str(rng.randrange(10**17, 10**18))
            if uid in self._users or not _ID_RE.match(uid):
                raise ValueError(f"user id taken or not numeric: {uid!r}")
            user = SandboxUser(uid, username, username.replace("_", " ").title(), [])
            self._fill_timeline(user, rng, index, tweet_count, days, (video_ratio, photo_ratio, gif_ratio))
            self._users[uid] = user
            if self._login is None:
                self._login = uid
        return user

    def _fill_timeline(
        self,
        user: SandboxUser,
        rng: random.Random,
        worker: int,
        count: int,
        days: int,
        ratios: tuple[float, float, float],
    ) -> None:
        now_ms, slot = int(self._clock() * 1000), days * 86_400_000 / max(count, 1)
        stamps: list[int] = []
        for i in range(count):  # newest first; strictly older each step so ids order like time
            ms = int(now_ms - slot * (i + rng.uniform(0.1, 0.9)))
            stamps.append(min(ms, stamps[-1] - 1) if stamps else ms)
        sequence = 0
        for position, ms in enumerate(reversed(stamps)):  # oldest first: ids grow with time
            sequence += 1
            tweet_id = _snowflake(ms, worker, sequence)
            tweet: dict[str, Any] = {
                "id": tweet_id,
                "text": f"{rng.choice(_PHRASES)} #{position + 1}",
                "created_at": _iso(datetime.fromtimestamp(ms // 1000, UTC)),
                "author_id": user.user_id,
                "conversation_id": tweet_id,
                "lang": "en",
                "edit_history_tweet_ids": [tweet_id],
                "possibly_sensitive": False,
                "reply_settings": "everyone",
                **_tweet_metrics(rng),
            }
            draw, keys = rng.random(), list[str]()
            kinds = [("video", 7, 1), ("photo", 3, rng.choice((1, 1, 2))), ("animated_gif", 16, 1)]
            threshold = 0.0
            for (kind, prefix, how_many), ratio in zip(kinds, ratios, strict=True):
                threshold += ratio
                if keys or draw >= threshold:
                    continue
                for _ in range(how_many):
                    sequence += 1
                    key = f"{prefix}_{_snowflake(ms - rng.randint(2_000, 600_000), worker, sequence)}"
                    impressions = tweet["public_metrics"]["impression_count"]
                    user.media[key] = (
                        _video(rng, key, impressions) if kind == "video" else _still(rng, key, kind)
                    )
                    keys.append(key)
            if keys:
                tweet["attachments"] = {"media_keys": keys}
            user.tweets.insert(0, tweet)

    def user(self, username: str) -> SandboxUser:
        with self._lock:
            return self._user_named(username)

    def _user_named(self, username: str) -> SandboxUser:
        for user in self._users.values():
            if user.username.lower() == username.lower():
                return user
        raise KeyError(f"no sandbox user @{username}")

    # ------------------------------------------------------------ the query

    @staticmethod
    def _check_lists(
        query: dict[str, str],
        lists: dict[str, frozenset[str]],
        scalars: tuple[str, ...],
        errors: list[dict[str, Any]],
    ) -> dict[str, set[str]]:
        allowed = sorted({*lists, *scalars})
        chosen: dict[str, set[str]] = {}
        for name, value in query.items():
            if name not in lists:
                if name not in scalars:
                    why = f"The query parameter [{name}] is not one of [{','.join(allowed)}]"
                    errors.append(_invalid(name, value, why))
                continue
            items = value.split(",")
            wrong = [item for item in items if item not in lists[name]]
            if wrong or len(set(items)) != len(items):
                why = f"is not one of [{','.join(sorted(lists[name]))}]"
                errors.append(_bad_value(name, (wrong or items)[0], why))
            chosen[name] = set(items)
        return chosen

    def _timeline_query(self, query: dict[str, str], errors: list[dict[str, Any]]) -> _TimelineQuery:
        chosen = self._check_lists(query, TIMELINE_LISTS, TIMELINE_SCALARS, errors)
        parsed = _TimelineQuery(
            fields=chosen.get("tweet.fields", set()) | chosen.get("post.fields", set()),
            expansions=chosen.get("expansions", set()),
            media_fields=chosen.get("media.fields", set()),
        )
        raw = query.get("max_results")
        if raw is not None:
            if not raw.isdigit() or not 5 <= int(raw) <= 100:
                errors.append(_bad_value("max_results", raw, "is not between 5 and 100"))
            else:
                parsed.max_results = int(raw)
        for name in ("since_id", "until_id"):
            if name in query and not _ID_RE.match(query[name]):
                errors.append(_bad_value(name, query[name], "does not match ^[0-9]{1,19}$"))
            elif name in query:
                setattr(parsed, name, int(query[name]))
        if "pagination_token" in query:
            parsed.before_id = _read_page_token(query["pagination_token"])
            if parsed.before_id is None:
                errors.append(
                    _bad_value("pagination_token", query["pagination_token"], "is not a valid token")
                )
        self._time_window(query, parsed, errors)
        return parsed

    @staticmethod
    def _time_window(query: dict[str, str], parsed: _TimelineQuery, errors: list[dict[str, Any]]) -> None:
        for name in ("start_time", "end_time"):
            if name not in query:
                continue
            value = query[name]
            moment = _parse_time(value)
            if moment is None or moment < EARLIEST_TIME:
                why = f"Invalid '{name}':'{value}'. '{name}' must be an RFC 3339 date-time after 2010-11-06"
                errors.append(_invalid(name, value, why))
            elif name == "start_time":
                parsed.start = moment
            else:
                parsed.end = moment
        if parsed.start and parsed.end and parsed.end - parsed.start < timedelta(milliseconds=10):
            end = query["end_time"]
            why = f"Invalid 'end_time':'{end}'. 'end_time' must be a minimum of 10 ms after the 'start_time'"
            errors.append(_invalid("end_time", end, why))

    @staticmethod
    def _selected(tweet: dict[str, Any], query: _TimelineQuery) -> bool:
        tweet_id = int(tweet["id"])
        created = datetime.fromisoformat(tweet["created_at"].replace("Z", "+00:00"))
        checks = (
            query.before_id is None or tweet_id < query.before_id,
            query.since_id is None or tweet_id > query.since_id,
            query.until_id is None or tweet_id < query.until_id,
            query.since_id is not None or query.start is None or created >= query.start,  # since_id wins
            query.until_id is not None or query.end is None or created < query.end,
        )
        return all(checks)
