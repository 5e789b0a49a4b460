"""X's posts and media, generated from a seed so runs repeat, and the timeline query that selects them."""

from __future__ import annotations

import math
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
# X's reach on users/:id/tweets (see Api._reach for what is documented and what is assumed).
TIMELINE_REACH = 3200
TIMELINE_REACH_WITHOUT_REPLIES = 800
POST_TYPES = ("post", "reply", "quote", "repost")
# The default shares of replies, quotes and reposts in a generated timeline. X publishes no mix; this
# is a plausible guess for the accounts this app serves (teams and creators that mostly post their own
# content). Individuals reply and repost far more: Pew Research (2019, U.S. adults) found replies 30-51%
# and retweets 26-46% of their tweets. Posts-only timelines: pass 0 for each.
DEFAULT_REPLY_RATIO = 0.15
DEFAULT_QUOTE_RATIO = 0.05
DEFAULT_REPOST_RATIO = 0.10
# The other accounts a generated timeline replies to, quotes and reposts. They are not sandbox users:
# their posts exist only as the targets of `referenced_tweets` (SandboxUser.referenced).
_OTHER_ACCOUNTS = ("data_dana", "chart_chen", "ops_oli", "ml_maya", "growth_gus", "viz_vera")
_BIOS = (
    "Analytics for people who post. Charts, dashboards and the occasional hot take.",
    "Measuring what matters, one post at a time.",
    "Data engineer. Writes about pipelines, metrics and the numbers behind them.",
    "Posting release notes, experiments and what we learned from them.",
)
HOUR = 3600.0
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
    # Other accounts' posts that this user's replies, quotes and reposts point at, by id: id, author_id,
    # username, created_at, conversation_id, text, public_metrics. Empty when add_user's type ratios are 0.
    referenced: dict[str, dict[str, Any]] = field(default_factory=dict)
    # users/me's fields beyond id/name/username, and the seeds of its public_metrics (see _profile).
    profile: dict[str, Any] = field(default_factory=dict)
    # The sandbox clock when the user was added: followers grow, and post counts step, from here.
    added_at: float = 0.0


def post_type(tweet: dict[str, Any]) -> str:
    """post, reply, quote or repost, from a post's referenced_tweets (as X's clients tell them apart).

    A post that both replies and quotes counts as a reply: exclude=replies removes it. The sandbox
    generates none, and X does not document how it classifies one.
    """
    kinds = {ref["type"] for ref in tweet.get("referenced_tweets") or ()}
    if "retweeted" in kinds:
        return "repost"
    if "replied_to" in kinds:
        return "reply"
    return "quote" if "quoted" in kinds else "post"


def growth(created_at: str, now: float, since: float, tau_hours: float) -> float:
    """The share of its final counts a post shows at `now`: 1 - exp(-age/tau), age in started hours.

    X documents no such curve; it stands in for "most engagement comes in the first day or two".
    Counts move in steps, once an hour of the clock counted from `since` (when the user was added),
    and hold between steps: the age is taken at the latest step, in hours started since the post
    (so a post in its first hour already shows a little). Steps at whole hours of the clock would
    let two reads seconds apart differ whenever a test straddles an hour; counted from `since`, a
    test that runs for less than an hour of the clock after adding its users never sees counts move,
    and one that moves the clock itself decides when they do. followers_count steps the same way.
    """
    created = datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()
    stepped = since + math.floor((now - since) / HOUR) * HOUR
    age_hours = max(0, math.floor((stepped - created) / HOUR)) + 1
    return 1.0 - math.exp(-age_hours / tau_hours)


def grown_tweet_metrics(tweet: dict[str, Any], share: float) -> dict[str, dict[str, int]]:
    """The post's metric families scaled to `share` of their final counts, invariants kept.

    Every count is floored, so a <= b stays a <= b (organic <= public, likes <= engagements); the
    impressions are then held above the engagements (X never shows a post engaged more than seen).
    """
    out: dict[str, dict[str, int]] = {
        name: {k: math.floor(v * share) for k, v in tweet[name].items()}
        for name in ("public_metrics", "non_public_metrics", "organic_metrics")
        if name in tweet
    }
    private = out.get("non_public_metrics")
    if private is not None:
        seen = max(private["impression_count"], private["engagements"] + 1)
        private["impression_count"] = seen
        if "public_metrics" in out:
            out["public_metrics"]["impression_count"] = seen
    return out


def grown_media(item: dict[str, Any], share: float) -> dict[str, Any]:
    """A video's views and quartiles scaled like its post's counts; other media as they are."""
    if item["type"] != "video":
        return item
    scaled = dict(item)
    for name in ("public_metrics", "non_public_metrics", "organic_metrics"):
        scaled[name] = {k: math.floor(v * share) for k, v in item[name].items()}
    return scaled


def followers_count(user: SandboxUser, now: float) -> int:
    """followers_count at `now`: a base, then a net gain each day since the user was added.

    Deterministic per user and seed; the day under way counts pro rata by whole hours, so a count
    moves between daily snapshots and stays put within an hour. A day's net is mostly a gain, now
    and then a small loss, never zero. X documents no follower dynamics: this is only plausible.
    """
    profile = user.profile
    hours = max(0, math.floor((now - user.added_at) / HOUR))
    days, partial = divmod(hours, 24)
    total = profile["followers_base"]
    for day in range(days + (1 if partial else 0)):
        draw = random.Random(f"x-sandbox:followers:{profile['seed']}:{day}").random()
        net = int(profile["followers_per_day"] * (draw * 2.2 - 0.35)) or 1
        total += net if day < days else net * partial // 24
    return max(0, int(total))


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
    user_fields: set[str] | None = None  # None: not asked (includes.users stays id, name, username)
    exclude: set[str] = field(default_factory=set)


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


def _draw_kind(kinds: random.Random | None, types: tuple[float, float, float]) -> str:
    if kinds is None:
        return "post"
    draw, threshold = kinds.random(), 0.0
    for kind, ratio in zip(("reply", "quote", "repost"), types, strict=True):
        threshold += ratio
        if draw < threshold:
            return kind
    return "post"


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
        reply_ratio: float = DEFAULT_REPLY_RATIO,
        quote_ratio: float = DEFAULT_QUOTE_RATIO,
        repost_ratio: float = DEFAULT_REPOST_RATIO,
    ) -> SandboxUser:
        """A user and a generated timeline, repeatable from the sandbox's seed and clock.

        `reply_ratio`, `quote_ratio` and `repost_ratio` are the shares of the timeline's posts that are
        replies, quotes and reposts (0 each: plain posts only, exactly what the sandbox generated before
        it had types). Their choices come from a random stream of their own, so a timeline's plain posts
        keep their ids, texts, counts and media whatever the ratios.
        """
        if not _USERNAME_RE.match(username):
            raise ValueError(f"X usernames are 1-15 letters, digits or underscores: {username!r}")
        types = (reply_ratio, quote_ratio, repost_ratio)
        if any(not 0.0 <= ratio <= 1.0 for ratio in types) or sum(types) > 1.0:
            raise ValueError(f"reply, quote and repost ratios are each 0-1 and add up to 1 at most: {types}")
        with self._lock:
            index = len(self._users)
            rng = random.Random(self._seed + index)
            uid = user_id or str(rng.randrange(10**17, 10**18))
            if uid in self._users or not _ID_RE.match(uid):
                raise ValueError(f"user id taken or not numeric: {uid!r}")
            user = SandboxUser(uid, username, username.replace("_", " ").title(), [])
            self._fill_timeline(
                user, rng, index, tweet_count, days, (video_ratio, photo_ratio, gif_ratio), types
            )
            user.added_at = self._clock()
            user.profile = self._profile(user)
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
        types: tuple[float, float, float],
    ) -> None:
        now_ms, slot = int(self._clock() * 1000), days * 86_400_000 / max(count, 1)
        stamps: list[int] = []
        for i in range(count):  # newest first; strictly older each step so ids order like time
            ms = int(now_ms - slot * (i + rng.uniform(0.1, 0.9)))
            stamps.append(min(ms, stamps[-1] - 1) if stamps else ms)
        # Post types draw from their own stream: `rng`'s draws, and so every plain post, stay as they were.
        kinds = random.Random(f"x-sandbox:post-types:{self._seed}:{worker}") if any(types) else None
        last_own: dict[str, Any] | None = None  # the newest non-repost so far: a self-thread continues it
        sequence = 0
        for position, ms in enumerate(reversed(stamps)):  # oldest first: ids grow with time
            kind = _draw_kind(kinds, types)
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
            drawn: dict[str, dict[str, Any]] = {}
            media_kinds = [("video", 7, 1), ("photo", 3, rng.choice((1, 1, 2))), ("animated_gif", 16, 1)]
            threshold = 0.0
            for (media_kind, prefix, how_many), ratio in zip(media_kinds, ratios, strict=True):
                threshold += ratio
                if keys or draw >= threshold:
                    continue
                for _ in range(how_many):
                    sequence += 1
                    key = f"{prefix}_{_snowflake(ms - rng.randint(2_000, 600_000), worker, sequence)}"
                    impressions = tweet["public_metrics"]["impression_count"]
                    drawn[key] = (
                        _video(rng, key, impressions)
                        if media_kind == "video"
                        else _still(rng, key, media_kind)
                    )
                    keys.append(key)
            if kinds is not None and kind != "post":
                tweet = self._typed(user, kinds, kind, tweet, ms, worker, last_own)
            if kind == "repost":  # the media drawn were the original's: not this account's
                keys, drawn = [], {}
            user.media.update(drawn)
            if keys:
                tweet["attachments"] = {"media_keys": keys}
            if kind != "repost":
                last_own = tweet
            user.tweets.insert(0, tweet)

    def _typed(
        self,
        user: SandboxUser,
        kinds: random.Random,
        kind: str,
        tweet: dict[str, Any],
        ms: int,
        worker: int,
        last_own: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """A reply, quote or repost made of a generated post: its id, time and (own types) counts stay.

        Documented (X's data dictionary): a reply carries `in_reply_to_user_id` (the parent post's
        author) and `conversation_id` (the root post of the conversation), and `referenced_tweets` names
        the post replied to (`replied_to`), quoted (`quoted`) or reposted (`retweeted`). A repost's text
        is "RT @author: " and the original's text (public reports: X truncates long ones; these are
        short). Not documented, assumed: a repost's `public_metrics` are the original's (as the project's
        notes describe; v1.1-era reports show a retweet's own favorite_count as 0, which is not modelled);
        its `conversation_id` is its own id; it has no attachments (the original's media are not the
        account's). Its private fields are refused per post (README; see Api._render_page). A quote
        starts its own conversation and, like a reply, is the account's own post with private metrics.
        """
        if kind == "reply" and last_own is not None and kinds.random() < 0.4:  # a self-thread
            return {
                **tweet,
                "conversation_id": last_own["conversation_id"],
                "in_reply_to_user_id": user.user_id,
                "referenced_tweets": [{"type": "replied_to", "id": last_own["id"]}],
            }
        original = self._other_post(user, kinds, ms, worker, tweet)
        if kind == "reply":
            return {
                **tweet,
                "text": f"@{original['username']} {tweet['text']}",
                "conversation_id": original["conversation_id"],
                "in_reply_to_user_id": original["author_id"],
                "referenced_tweets": [{"type": "replied_to", "id": original["id"]}],
            }
        if kind == "quote":
            return {**tweet, "referenced_tweets": [{"type": "quoted", "id": original["id"]}]}
        private = ("non_public_metrics", "organic_metrics")
        repost = {k: v for k, v in tweet.items() if k not in private}
        repost["text"] = f"RT @{original['username']}: {original['text']}"
        repost["public_metrics"] = dict(original["public_metrics"])
        repost["referenced_tweets"] = [{"type": "retweeted", "id": original["id"]}]
        return repost

    @staticmethod
    def _other_post(
        user: SandboxUser, kinds: random.Random, ms: int, worker: int, tweet: dict[str, Any]
    ) -> dict[str, Any]:
        """Another account's post, minutes to days older than `ms`, recorded in user.referenced.

        Its text and public counts are the generated post's (drawn from the timeline's own stream).
        About a third of them are themselves replies deeper in a conversation with an older root.
        """
        author = _OTHER_ACCOUNTS[kinds.randrange(len(_OTHER_ACCOUNTS))]
        author_id = str(random.Random(f"x-sandbox:account:{author}").randrange(10**17, 10**18))
        posted = ms - kinds.randint(60_000, 3 * 86_400_000)
        post_id = _snowflake(posted, 1023 - worker % 512, kinds.randrange(4096))
        root = post_id
        if kinds.random() < 0.3:
            root = _snowflake(
                posted - kinds.randint(60_000, 86_400_000), 1023 - worker % 512, kinds.randrange(4096)
            )
        original = {
            "id": post_id,
            "author_id": author_id,
            "username": author,
            "created_at": _iso(datetime.fromtimestamp(posted // 1000, UTC)),
            "conversation_id": root,
            "text": tweet["text"].rsplit(" #", 1)[0],
            "public_metrics": dict(tweet["public_metrics"]),
        }
        user.referenced[post_id] = original
        return original

    def _profile(self, user: SandboxUser) -> dict[str, Any]:
        """users/me's profile fields and its counts' seeds, from a stream of their own (seed, user id)."""
        seed = f"{self._seed}:{user.user_id}"
        rng = random.Random(f"x-sandbox:profile:{seed}")
        joined = datetime(2009, 6, 1, tzinfo=UTC) + timedelta(days=rng.randrange(0, 12 * 365))
        image = rng.randrange(10**18, 2 * 10**18)
        followers = int(rng.lognormvariate(7.5, 1.2)) + 50
        return {
            "seed": seed,
            "created_at": _iso(joined.replace(hour=rng.randrange(24), minute=rng.randrange(60))),
            "description": rng.choice(_BIOS),
            "verified": rng.random() < 0.2,
            "profile_image_url": f"https://pbs.twimg.com/profile_images/{image}/avatar_normal.jpg",
            "followers_base": followers,
            "followers_per_day": max(2, int(followers * rng.uniform(0.001, 0.01))),
            "following_count": rng.randrange(50, 2_000),
            "listed_count": int(followers * rng.uniform(0.002, 0.02)),
            "likes_base": rng.randrange(500, 20_000),
            "likes_per_day": rng.randrange(1, 30),
        }

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
            user_fields=chosen.get("user.fields"),
            exclude=chosen.get("exclude", set()),
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
