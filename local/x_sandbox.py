"""A local X (Twitter) for this app: OAuth 2.0 with PKCE and the two API v2 endpoints it reads.

It behaves like X where the app's correctness depends on it: single-use 30-second codes bound to
client, redirect URI and S256 challenge; refresh tokens that rotate on every use (a spent one is
dead); the 30-day / own-posts rule for private metrics with X's partial errors; 3,200-post reach,
opaque pagination, X's validation and problem shapes, and rate limits with their headers. Faults
(`inject`) reproduce what the network and X do on bad days, including "X rotated the token but the
answer never arrived". Standard library only; all state sits behind one lock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import random
import re
import secrets
import socket
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple, cast
from urllib.parse import parse_qs, urlencode, urlsplit

ENDPOINTS = ("authorize", "token", "revoke", "me", "tweets")
FAULT_KINDS = frozenset(
    "status rate_limit delay drop drop_after_processing delay_after_processing truncate partial_error".split()
)
KNOWN_SCOPES = frozenset(
    "tweet.read tweet.write tweet.moderate.write users.email users.read follows.read follows.write "
    "offline.access space.read mute.read mute.write like.read like.write list.read list.write block.read "
    "block.write bookmark.read bookmark.write dm.read dm.write media.write".split()
)
READ_SCOPES = frozenset({"tweet.read", "users.read"})
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
USER_EXPANSIONS = frozenset(
    "affiliation affiliation.user_id most_recent_tweet_id most_recent_post_id pinned_tweet_id "
    "pinned_post_id".split()
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
ME_LISTS = {
    "user.fields": USER_FIELDS,
    "expansions": USER_EXPANSIONS,
    "tweet.fields": TWEET_FIELDS,
    "post.fields": TWEET_FIELDS,
}
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
PRIVATE_FIELDS = ("non_public_metrics", "organic_metrics", "promoted_metrics")
TIMELINE_REACH = 3200
PRIVATE_METRICS_AGE = timedelta(days=30)
EARLIEST_TIME = datetime(2010, 11, 6, tzinfo=UTC)
SNOWFLAKE_EPOCH_MS = 1288834974657
_BAD_CODE = "Value passed for the authorization code was invalid."
_BAD_REDIRECT = "Value passed for the redirect uri did not match the uri of the authorization code."
_BAD_VERIFIER = "Value passed for the code verifier did not match the code challenge."
_ID_RE = re.compile(r"^[0-9]{1,19}$")
_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_VERIFIER_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_USERNAME_RE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
_TWEETS_PATH = re.compile(r"^/2/users/([^/]+)/tweets$")
_PHRASES = (
    "Shipping notes from the metrics lab|What we learned from a week of experiments|Small fixes, big wins|"
    "Behind the scenes of today's release|Quick tip for cleaner dashboards|Why retention beats reach|"
    "Clip from the live session|Three charts that changed our roadmap|A thread on measuring what matters"
).split("|")


@dataclass
class ClientApp:
    client_id: str
    client_secret: str | None = field(repr=False)  # None: a public client
    redirect_uris: list[str]


@dataclass
class SandboxUser:
    user_id: str
    username: str
    name: str
    tweets: list[dict[str, Any]]  # newest first; full tweet objects incl. private metrics
    media: dict[str, dict[str, Any]] = field(default_factory=dict)  # media_key -> full media object


class LoggedRequest(NamedTuple):
    method: str
    path: str  # without the query string: that may carry codes or challenges
    endpoint: str
    status: int  # 0: no answer was sent
    at: float
    fault: str = ""


@dataclass
class _Fault:
    kind: str
    remaining: int
    params: dict[str, Any]
    match: dict[str, str]


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    user_id: str
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class _Grant:
    """One authorization (a token family): its access tokens and its one live refresh token."""

    user_id: str
    client_id: str
    scope: str
    refresh_token: str | None = None
    access_tokens: list[str] = field(default_factory=list)
    revoked: bool = False
    issued_at: float = 0.0


@dataclass
class _Access:
    grant: _Grant
    expires_at: float
    revoked: bool = False


@dataclass
class _Window:
    limit: int
    start: float
    count: int = 0


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class _Halt(Exception):
    """Stop handling and answer this instead."""

    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


@dataclass
class _AuthRequest:
    client: ClientApp
    redirect_uri: str
    state: str
    challenge: str
    scopes: list[str]
    user: SandboxUser


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


def _json(
    status: int, payload: Any, headers: dict[str, str] | None = None, *, problem: bool = False
) -> _Reply:
    kind = "application/problem+json" if problem else "application/json; charset=utf-8"
    return _Reply(status, json.dumps(payload).encode(), kind, dict(headers or {}))


def _generic_problem_body(status: int) -> dict[str, Any]:
    phrase = HTTPStatus(status).phrase
    return {"title": phrase, "type": "about:blank", "status": status, "detail": phrase}


def _generic_problem(status: int, headers: dict[str, str] | None = None) -> _Reply:
    return _json(status, _generic_problem_body(status), headers, problem=True)


def _oauth_error(status: int, error: str, description: str) -> _Reply:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    return _json(status, {"error": error, "error_description": description}, headers)


def _html(status: int, title: str, body: str, headers: dict[str, str] | None = None) -> _Reply:
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"</head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    base = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    return _Reply(status, page.encode(), "text/html; charset=utf-8", {**base, **(headers or {})})


def _error_page(message: str) -> _Reply:
    text = "You weren't able to give access to the App. Go back and try logging in again."
    return _html(400, "Something went wrong", f"<p>{html.escape(text)}</p><p>{html.escape(message)}</p>")


def _redirect(uri: str, params: dict[str, str]) -> _Reply:
    separator = "&" if urlsplit(uri).query else "?"
    return _Reply(302, b"", "text/html; charset=utf-8", {"Location": uri + separator + urlencode(params)})


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


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


# ---------------------------------------------------------------- deterministic timelines


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


# ---------------------------------------------------------------- the server


class XSandbox:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        auto_consent: bool = True,
        clock: Callable[[], float] = time.time,
        seed: int = 7,
        dead_token_error: str = "invalid_request",
    ) -> None:
        self.host, self.port = host, port
        self.auto_consent = auto_consent
        self.dead_token_error = dead_token_error
        self.metrics_spelling = "retweet"  # "repost": serve v2.167's repost_count instead
        # Problem type URIs: X has served api.twitter.com ones; v2.167 names https://api.x.com/2/problems/.
        self.problem_base = "https://api.twitter.com/2/problems/"
        self.access_token_ttl = 7200
        self.code_ttl = 30.0
        self.rate_limits = {"me": 75, "tweets": 900, "tweets_app": 10_000}
        self.rate_window = 900.0
        self.url = ""
        self.request_log: list[LoggedRequest] = []
        self.server_errors: list[str] = []  # exception class names of handler crashes (500s)
        self._clock = clock
        self._seed = seed
        self._lock = threading.Lock()
        self._clients: dict[str, ClientApp] = {}
        self._users: dict[str, SandboxUser] = {}  # by user id
        self._login: str | None = None
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _Access] = {}
        self._refresh: dict[str, _Grant] = {}  # every refresh token ever issued -> its family
        self._grants: list[_Grant] = []
        self._windows: dict[tuple[str, str], _Window] = {}
        self._faults: dict[str, list[_Fault]] = {name: [] for name in ENDPOINTS}
        self._refresh_count = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle and URLs

    def start(self) -> XSandbox:
        server = _Server((self.host, self.port), _Handler)
        server.sandbox = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="x-sandbox", daemon=True
        )
        self._thread.start()
        self.url = f"http://{self.host}:{server.server_address[1]}"
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> XSandbox:
        return self.start() if self._server is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def authorize_url(self) -> str:
        return self.url + "/i/oauth2/authorize"

    @property
    def token_url(self) -> str:
        return self.url + "/2/oauth2/token"

    @property
    def revoke_url(self) -> str:
        return self.url + "/2/oauth2/revoke"

    @property
    def api_base_url(self) -> str:
        return self.url

    # ------------------------------------------------------------ setup and test helpers

    def register_client(
        self, client_id: str, client_secret: str | None, redirect_uris: list[str]
    ) -> ClientApp:
        app = ClientApp(client_id, client_secret, list(redirect_uris))
        with self._lock:
            self._clients[client_id] = app
        return app

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

    def login_as(self, username: str) -> None:
        with self._lock:
            self._login = self._user_named(username).user_id

    def inject(self, endpoint: str, kind: str, *, count: int = 1, **params: Any) -> None:
        """The next `count` requests to `endpoint` (matching `match={param: value}`, if given) get `kind`."""
        if endpoint not in ENDPOINTS or kind not in FAULT_KINDS or count < 1:
            raise ValueError(f"unknown fault {kind!r} for {endpoint!r} (count {count})")
        match = {str(k): str(v) for k, v in dict(params.pop("match", None) or {}).items()}
        with self._lock:
            self._faults[endpoint].append(_Fault(kind, count, params, match))

    def clear_faults(self) -> None:
        with self._lock:
            for queue in self._faults.values():
                queue.clear()

    def requests_to(self, endpoint: str) -> int:
        with self._lock:
            return sum(1 for entry in self.request_log if entry.endpoint == endpoint)

    def issue_tokens(
        self,
        username: str,
        client_id: str,
        scopes: str = "tweet.read users.read offline.access",
        expires_in: int = 7200,
    ) -> dict[str, Any]:
        with self._lock:
            user = self._user_named(username)
            return self._mint(_Grant(user.user_id, client_id, " ".join(scopes.split())), expires_in)

    def expire_access_tokens(self, username: str | None = None) -> None:
        with self._lock:
            user_id = self._user_named(username).user_id if username else None
            past = self._clock() - 1
            for access in self._access.values():
                if user_id is None or access.grant.user_id == user_id:
                    access.expires_at = min(access.expires_at, past)

    @property
    def refresh_count(self) -> int:
        with self._lock:
            return self._refresh_count

    def issued_secrets(self) -> set[str]:
        """Every code and token this sandbox has handed out: what must never reach a log or page."""
        with self._lock:
            return set(self._codes) | set(self._access) | set(self._refresh)

    def live_refresh_token(self, username: str, client_id: str) -> str | None:
        """The most recently issued refresh token of that user and client that still works."""
        with self._lock:
            user_id = self._user_named(username).user_id
            for grant in sorted(self._grants, key=lambda g: g.issued_at, reverse=True):
                if grant.user_id == user_id and grant.client_id == client_id and not grant.revoked:
                    if grant.refresh_token:
                        return grant.refresh_token
            return None

    def _user_named(self, username: str) -> SandboxUser:
        for user in self._users.values():
            if user.username.lower() == username.lower():
                return user
        raise KeyError(f"no sandbox user @{username}")

    def _mint(self, grant: _Grant, expires_in: int) -> dict[str, Any]:
        """New access (and refresh, with offline.access) token in `grant`. Caller holds the lock."""
        if grant not in self._grants:
            self._grants.append(grant)
        grant.issued_at = time.monotonic()
        access_token = secrets.token_urlsafe(48)
        self._access[access_token] = _Access(grant, self._clock() + expires_in)
        grant.access_tokens.append(access_token)
        answer: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": expires_in,
            "access_token": access_token,
            "scope": grant.scope,
        }
        if "offline.access" in grant.scope.split():
            grant.refresh_token = secrets.token_urlsafe(48)
            self._refresh[grant.refresh_token] = grant
            answer["refresh_token"] = grant.refresh_token
        return answer

    # ------------------------------------------------------------ routing and faults

    def _route(self, request: _Request) -> tuple[str, Callable[[_Request], _Reply]]:
        path, method = request.path.rstrip("/") or "/", request.method
        if path.startswith("/_sandbox/"):
            return "admin", self._admin
        routes: dict[tuple[str, str], tuple[str, Callable[[_Request], _Reply]]] = {
            ("GET", "/i/oauth2/authorize"): ("authorize", self._authorize_get),
            ("POST", "/i/oauth2/authorize"): ("authorize", self._authorize_post),
            ("POST", "/2/oauth2/token"): ("token", self._token),
            ("POST", "/2/oauth2/revoke"): ("revoke", self._revoke),
            ("GET", "/2/users/me"): ("me", self._me),
        }
        if (method, path) in routes:
            return routes[(method, path)]
        if method == "GET" and _TWEETS_PATH.match(path):
            return "tweets", self._tweets
        return "unknown", lambda _request: _generic_problem(404)

    def _take_fault(self, endpoint: str, request: _Request) -> _Fault | None:
        if endpoint not in self._faults:
            return None
        values = {**request.query, **(request.form() if request.method == "POST" else {})}
        with self._lock:
            queue = self._faults[endpoint]
            for fault in queue:
                if all(values.get(k) == v for k, v in fault.match.items()):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        queue.remove(fault)
                    return fault
        return None

    def _fault_reply(self, fault: _Fault, endpoint: str) -> _Reply:
        """The answer of a 'status' or 'rate_limit' fault, given instead of the real one."""
        if fault.kind == "rate_limit":
            reset = int(self._clock() + float(fault.params.get("reset_in", 60)))
            limit = self.rate_limits.get(endpoint, 900)
            headers = {
                "x-rate-limit-limit": str(limit),
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(reset),
            }
            return _generic_problem(429, headers)
        status = int(fault.params.get("status", 503))
        body = fault.params.get("body")
        if body is None:
            reply = _generic_problem(status)
        elif isinstance(body, str | bytes):
            reply = _Reply(status, body.encode() if isinstance(body, str) else body, "text/plain")
        else:
            reply = _json(status, body)
        reply.headers.update({str(k): str(v) for k, v in dict(fault.params.get("headers") or {}).items()})
        return reply

    def _after_fault(self, fault: _Fault | None, reply: _Reply) -> _Reply:
        if fault is None:
            return reply
        if fault.kind == "truncate":
            return _Reply(reply.status, reply.body[: len(reply.body) // 2], reply.content_type, reply.headers)
        if (
            fault.kind == "partial_error"
            and reply.status == 200
            and reply.content_type.startswith("application/json")
        ):
            payload = json.loads(reply.body)
            detail = "Sorry, you are not authorized to see the User with id: [2244994945]."
            error = fault.params.get("error") or self._problem(
                "Authorization Error",
                detail,
                "user",
                "2244994945",
                parameter="entities.mentions.username",
                section="includes",
                problem="not-authorized-for-resource",
            )
            payload.setdefault("errors", []).append(error)
            return _json(200, payload, reply.headers)
        return reply

    def _record(self, request: _Request, endpoint: str, status: int, fault: _Fault | None) -> None:
        entry = LoggedRequest(
            request.method, request.path, endpoint, status, self._clock(), fault.kind if fault else ""
        )
        with self._lock:
            self.request_log.append(entry)

    def _admin(self, request: _Request) -> _Reply:
        if request.path == "/_sandbox/faults" and request.method == "POST":
            try:
                spec = json.loads(request.body or b"{}")
                self.inject(
                    str(spec["endpoint"]),
                    str(spec["kind"]),
                    count=int(spec.get("count", 1)),
                    **dict(spec.get("params") or {}),
                )
            except (ValueError, KeyError, TypeError) as exc:
                return _json(400, {"error": type(exc).__name__, "detail": str(exc)[:200]})
            return _json(201, {"ok": True})
        if request.path == "/_sandbox/faults" and request.method == "DELETE":
            self.clear_faults()
            return _json(200, {"ok": True})
        if request.path == "/_sandbox/log" and request.method == "GET":
            with self._lock:
                entries = [entry._asdict() for entry in self.request_log]
            return _json(200, {"requests": entries})
        return _generic_problem(404)

    # ------------------------------------------------------------ authorize

    def _check_authorization(self, params: dict[str, str]) -> _AuthRequest:
        with self._lock:
            client = self._clients.get(params.get("client_id", ""))
            user = self._users.get(self._login or "")
        redirect_uri = params.get("redirect_uri", "")
        if client is None:
            raise _Halt(_error_page("The client_id is not registered with X."))
        if redirect_uri not in client.redirect_uris:
            raise _Halt(
                _error_page("The redirect_uri does not match a callback URL registered for this App.")
            )
        state = params.get("state", "")

        def refuse(error: str, description: str) -> _Halt:
            return _Halt(
                _redirect(
                    redirect_uri,
                    {"error": error, "error_description": description, **({"state": state} if state else {})},
                )
            )

        scopes = params.get("scope", "").split()
        if params.get("response_type") != "code":
            raise refuse("unsupported_response_type", "response_type must be code")
        if not state or len(state) > 500:
            raise refuse("invalid_request", "state is required and at most 500 characters")
        if params.get("code_challenge_method") != "S256":
            raise refuse("invalid_request", "code_challenge_method must be S256")
        if not _CHALLENGE_RE.match(params.get("code_challenge", "")):
            raise refuse("invalid_request", "code_challenge must be 43 base64url characters")
        if not scopes or not set(scopes) <= KNOWN_SCOPES:
            raise refuse("invalid_scope", "One or more scopes are invalid")
        if user is None:
            raise _Halt(_error_page("No X account is signed in."))
        return _AuthRequest(client, redirect_uri, state, params["code_challenge"], scopes, user)

    def _authorize_get(self, request: _Request) -> _Reply:
        auth = self._check_authorization(request.query)
        if self.auto_consent:
            return self._issue_code(auth)
        e = html.escape
        names = (
            "response_type client_id redirect_uri scope state code_challenge code_challenge_method".split()
        )
        hidden = "".join(
            f'<input type="hidden" name="{n}" value="{e(request.query.get(n, ""))}">' for n in names
        )
        items = "".join(f"<li>{e(scope)}</li>" for scope in auth.scopes)
        body = (
            f'<p>Signed in as <strong id="username">@{e(auth.user.username)}</strong></p>'
            f'<p>This app will be able to:</p><ul id="scopes">{items}</ul>'
            f'<form method="post" action="/i/oauth2/authorize">{hidden}'
            '<button name="decision" value="allow" id="allow">Authorize app</button> '
            '<button name="decision" value="deny" id="deny">Cancel</button></form>'
        )
        return _html(200, f"Authorize {auth.client.client_id} to access your X account", body)

    def _authorize_post(self, request: _Request) -> _Reply:
        form = request.form()
        auth = self._check_authorization(form)
        decision = form.get("decision")
        if decision == "allow":
            return self._issue_code(auth)
        if decision == "deny":
            denied = {"error": "access_denied", "error_description": "The user denied access to the App."}
            return _redirect(auth.redirect_uri, {**denied, "state": auth.state})
        return _error_page("Choose Authorize app or Cancel.")

    def _issue_code(self, auth: _AuthRequest) -> _Reply:
        code = secrets.token_urlsafe(48)
        with self._lock:
            expires_at, scope = self._clock() + self.code_ttl, " ".join(auth.scopes)
            bound = (auth.client.client_id, auth.redirect_uri, auth.challenge, auth.user.user_id)
            self._codes[code] = _Code(*bound, scope, expires_at)
        return _redirect(auth.redirect_uri, {"state": auth.state, "code": code})

    # ------------------------------------------------------------ token and revoke

    def _authenticate_client(self, request: _Request, form: dict[str, str]) -> ClientApp:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = (
                    base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
                )
            except ValueError:
                client_id, secret = "", ""
            with self._lock:
                client = self._clients.get(client_id)
            known = client is not None and (
                client.client_secret is None or hmac.compare_digest(secret, client.client_secret)
            )
            if client is None or not known:
                raise _Halt(_oauth_error(401, "invalid_client", "Client authentication failed."))
            return client
        with self._lock:
            client = self._clients.get(form.get("client_id", ""))
        if client is None or client.client_secret is not None:
            raise _Halt(_oauth_error(401, "unauthorized_client", "Missing valid authorization header"))
        return client

    def _token(self, request: _Request) -> _Reply:
        form = request.form()
        client = self._authenticate_client(request, form)
        grant_type = form.get("grant_type")
        if not grant_type:
            return _oauth_error(400, "invalid_request", "Missing required parameter [grant_type].")
        if grant_type == "authorization_code":
            return self._code_grant(client, form)
        if grant_type == "refresh_token":
            return self._refresh_grant(client, form)
        return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type {grant_type[:40]!r}.")

    def _code_grant(self, client: ClientApp, form: dict[str, str]) -> _Reply:
        for name in ("code", "redirect_uri", "code_verifier"):
            if not form.get(name):
                return _oauth_error(400, "invalid_request", f"Missing required parameter [{name}].")
        with self._lock:
            code = self._codes.get(form["code"])
            if (
                code is None
                or code.used
                or code.client_id != client.client_id
                or self._clock() > code.expires_at
            ):
                return _oauth_error(400, "invalid_request", _BAD_CODE)
            code.used = True  # a code is presented once, whatever the outcome
            if form["redirect_uri"] != code.redirect_uri:
                return _oauth_error(400, "invalid_request", _BAD_REDIRECT)
            verifier = form["code_verifier"]
            if not _VERIFIER_RE.match(verifier) or not hmac.compare_digest(_s256(verifier), code.challenge):
                return _oauth_error(400, "invalid_request", _BAD_VERIFIER)
            answer = self._mint(_Grant(code.user_id, client.client_id, code.scope), self.access_token_ttl)
        return _json(200, answer, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _refresh_grant(self, client: ClientApp, form: dict[str, str]) -> _Reply:
        token = form.get("refresh_token")
        if not token:
            return _oauth_error(400, "invalid_request", "Missing required parameter [refresh_token].")
        with self._lock:
            grant = self._refresh.get(token)
            if (
                grant is None
                or grant.revoked
                or grant.refresh_token != token
                or grant.client_id != client.client_id
            ):
                return _oauth_error(400, self.dead_token_error, "Value passed for the token was invalid.")
            grant.refresh_token = None  # spent; earlier access tokens live on until they expire
            answer = self._mint(grant, self.access_token_ttl)
            self._refresh_count += 1
        return _json(200, answer, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _revoke(self, request: _Request) -> _Reply:
        form = request.form()
        client = self._authenticate_client(request, form)
        token = form.get("token")
        if not token:
            return _oauth_error(400, "invalid_request", "Missing required parameter [token].")
        with self._lock:
            access = self._access.get(token)
            if access is not None and access.grant.client_id == client.client_id:
                access.revoked = True
            grant = self._refresh.get(token)
            if grant is not None and grant.client_id == client.client_id and grant.refresh_token == token:
                grant.revoked, grant.refresh_token = True, None
                for issued in grant.access_tokens:
                    self._access[issued].revoked = True
        return _json(200, {"revoked": True})  # unknown tokens too (RFC 7009)

    # ------------------------------------------------------------ API v2

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
            headers = {
                "x-rate-limit-limit": str(shown.limit),
                "x-rate-limit-remaining": str(max(0, shown.limit - shown.count)),
                "x-rate-limit-reset": str(int(shown.start + self.rate_window)),
            }
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

    def _me(self, request: _Request) -> _Reply:
        grant = self._bearer(request)
        headers = self._spend_rate("me", grant)
        errors: list[dict[str, Any]] = []
        self._check_lists(request.query, ME_LISTS, (), errors)
        if errors:
            raise self._invalid_request(errors, headers)
        with self._lock:
            user = self._users[grant.user_id]
        return _json(
            200, {"data": {"id": user.user_id, "name": user.name, "username": user.username}}, headers
        )

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

    def _tweets(self, request: _Request) -> _Reply:
        grant = self._bearer(request)
        headers = self._spend_rate("tweets", grant)
        path_match = _TWEETS_PATH.match(request.path.rstrip("/"))
        user_id = path_match.group(1) if path_match else ""
        errors: list[dict[str, Any]] = []
        if not _ID_RE.match(user_id):
            errors.append(_bad_value("id", user_id, "does not match ^[0-9]{1,19}$"))
        query = self._timeline_query(request.query, errors)
        if errors:
            raise self._invalid_request(errors, headers)
        with self._lock:
            user = self._users.get(user_id)
            reach = list(user.tweets[:TIMELINE_REACH]) if user else []
            media = dict(user.media) if user else {}
        if user is None:  # X answers 200 with a resource-not-found problem
            detail = f"Could not find user with id: [{user_id}]."
            return _json(
                200, {"errors": [self._problem("Not Found Error", detail, "user", user_id)]}, headers
            )
        matched = [t for t in reach if self._selected(t, query)]
        page = matched[: query.max_results]
        body = self._render_page(page, media, query, own=grant.user_id == user_id, author=user)
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
        if len(matched) > len(page):
            meta["next_token"] = _page_token(page[-1]["id"])
        body["meta"] = meta
        return _json(200, body, headers)

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
        cutoff = datetime.fromtimestamp(self._clock(), UTC) - PRIVATE_METRICS_AGE
        for tweet in page:
            private_ok = own and datetime.fromisoformat(tweet["created_at"].replace("Z", "+00:00")) >= cutoff
            data.append(self._render_tweet(tweet, query.fields, private_ok, errors, expand_media))
            for key in (tweet.get("attachments") or {}).get("media_keys", []) if expand_media else []:
                if key in media:
                    included.append(self._render_media(media[key], query.media_fields, private_ok, errors))
        body: dict[str, Any] = {"data": data} if data else {}
        includes: dict[str, Any] = {}
        if included:
            includes["media"] = included
        if data and "author_id" in query.expansions:
            includes["users"] = [{"id": author.user_id, "name": author.name, "username": author.username}]
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
            elif name in tweet:
                out[name] = json.loads(json.dumps(tweet[name]))
        return out

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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sandbox: XSandbox

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        with self.connections_lock:
            for connection in list(self.open_connections):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms a response on loopback), a delay X does not have.
    disable_nagle_algorithm = True
    server_version = "x-sandbox"
    sys_version = ""
    timeout = 60

    def setup(self) -> None:
        super().setup()
        with self._server.connections_lock:
            self._server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self._server.connections_lock:
            self._server.open_connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    @property
    def _server(self) -> _Server:
        return cast(_Server, self.server)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines can carry codes, states and challenges."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _read(self) -> _Request:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        return _Request(self.command, split.path, query, headers, body)

    def _handle(self) -> None:
        sandbox = self._server.sandbox
        request = self._read()
        endpoint, action = sandbox._route(request)
        fault = sandbox._take_fault(endpoint, request)
        kind = fault.kind if fault else ""
        pause = float(fault.params.get("seconds", 1.0)) if fault else 0.0
        if kind == "delay":
            time.sleep(pause)
        if kind == "drop":
            return self._hang_up(request, endpoint, 0, fault)
        reply = sandbox._fault_reply(fault, endpoint) if fault and kind in ("status", "rate_limit") else None
        reply = reply or self._process(action, request)
        reply = sandbox._after_fault(fault, reply)
        if kind == "drop_after_processing":
            return self._hang_up(request, endpoint, reply.status, fault)
        if kind == "delay_after_processing":
            time.sleep(pause)
        if endpoint != "admin":
            sandbox._record(request, endpoint, reply.status, fault)
        self._send(reply)

    def _process(self, action: Callable[[_Request], _Reply], request: _Request) -> _Reply:
        try:
            return action(request)
        except _Halt as halt:
            return halt.reply
        except Exception as exc:  # a sandbox bug must answer, not hang the client
            sandbox = self._server.sandbox
            with sandbox._lock:
                sandbox.server_errors.append(type(exc).__name__)
            return _generic_problem(500)

    def _hang_up(self, request: _Request, endpoint: str, status: int, fault: _Fault | None) -> None:
        self._server.sandbox._record(request, endpoint, status, fault)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, reply: _Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:  # the client gave up (read timeout): nothing left to tell it
            self.close_connection = True
