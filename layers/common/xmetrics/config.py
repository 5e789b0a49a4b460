"""Settings, parsed once per process from the environment and validated.

Every error names the variable, so a misconfigured deploy says what to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from xmetrics.errors import ConfigError

if TYPE_CHECKING:
    from xmetrics.services.billing import Prices
    from xmetrics.services.tiers import TierPolicy

DEFAULT_SCOPES = "tweet.read users.read offline.access"
# Without these the app cannot read the timeline, identify the user, or keep a refresh token.
REQUIRED_SCOPES = frozenset({"tweet.read", "users.read", "offline.access"})
# Each is used with fullmatch: `$` alone would let a trailing newline through.
_TABLE_RE = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# No `*`: the prefix is part of FetchFunction's IAM resource ARN, where `*` is a wildcard.
_PREFIX_RE = re.compile(r"[A-Za-z0-9!_.'()/-]{1,200}")
_USER_RE = re.compile(r"@?[A-Za-z0-9_]{1,19}")
# Printable ASCII without spaces: X's client ids are base64url-like, and this one goes into a URL.
_CLIENT_ID_RE = re.compile(r"[!-~]{1,200}")


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is required but not set")
    return value


def _url(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, "").strip() or default
    if not value:
        raise ConfigError(f"{name} is required but not set")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigError(f"{name} must be an absolute http(s) URL, got {value!r}")
    return value.rstrip("/")


def _optional_url(env: Mapping[str, str], name: str) -> str | None:
    return _url(env, name) if env.get(name, "").strip() else None


def _matching(env: Mapping[str, str], name: str, pattern: re.Pattern[str], default: str | None = None) -> str:
    value = env.get(name, "").strip() or default
    if not value:
        raise ConfigError(f"{name} is required but not set")
    if not pattern.fullmatch(value):
        raise ConfigError(f"{name} is malformed: {value!r}")
    return value


def _scopes(env: Mapping[str, str]) -> str:
    scopes = env.get("SCOPES", "").split() or DEFAULT_SCOPES.split()
    missing = REQUIRED_SCOPES - set(scopes)
    if missing:
        raise ConfigError(f"SCOPES must include {' '.join(sorted(missing))} (got {' '.join(scopes)!r})")
    return " ".join(dict.fromkeys(scopes))


def _allowed_users(env: Mapping[str, str]) -> frozenset[str]:
    names = [n.strip() for n in env.get("ALLOWED_X_USERS", "").replace(" ", ",").split(",") if n.strip()]
    for name in names:
        if not _USER_RE.fullmatch(name):
            raise ConfigError(f"ALLOWED_X_USERS has a malformed entry {name!r} (usernames or numeric ids)")
    return frozenset(n.lstrip("@").lower() for n in names)


# The fetch's knobs import their rules only when read: /connect and /callback never load them.
def _tiers(env: Mapping[str, str]) -> TierPolicy:
    from xmetrics.services.tiers import DEFAULT_SPEC, PUBLIC_HISTORY_MAX_DAYS, TierPolicy

    spec = env.get("REFRESH_TIERS", "").strip() or DEFAULT_SPEC
    try:
        policy = TierPolicy.parse(spec)
    except ValueError as exc:
        raise ConfigError(f"REFRESH_TIERS is malformed ({exc}); e.g. {DEFAULT_SPEC} or all") from None
    days = env.get("PUBLIC_HISTORY_DAYS", "").strip() or "0"
    if (
        not days.isascii()
        or not days.isdigit()
        or not (int(days) == 0 or 30 < int(days) <= PUBLIC_HISTORY_MAX_DAYS)
    ):
        raise ConfigError(
            f"PUBLIC_HISTORY_DAYS must be 0 (off) or 31-{PUBLIC_HISTORY_MAX_DAYS} days, got {days!r}"
        )
    return policy.with_public_history(int(days))


def _budget(env: Mapping[str, str]) -> int:
    value = env.get("DAILY_READ_BUDGET", "").strip() or "0"
    if not value.isascii() or not value.isdigit() or int(value) > 10**9:
        raise ConfigError(f"DAILY_READ_BUDGET must be a whole number of post reads (0 = none), got {value!r}")
    return int(value)


def _prices(env: Mapping[str, str]) -> Prices:
    from xmetrics.services.billing import PRICES, Prices

    value = env.get("X_PRICES", "").strip()
    if not value:
        return PRICES
    try:
        return Prices.parse(value)
    except ValueError as exc:
        raise ConfigError(f"X_PRICES is malformed ({exc}); e.g. post=0.001,media=0.005,user=0.010") from None


# ExcludePostTypes -> X's `exclude`. Reposts carry no metrics of the account's own, take places
# under X's 3,200-post reach and cost a read each.
EXCLUDE_POST_TYPES = {
    "none": "",
    "reposts": "retweets",
    "replies": "replies",
    "reposts,replies": "retweets,replies",
    "replies,reposts": "retweets,replies",
}


def _exclude(env: Mapping[str, str]) -> str:
    value = env.get("EXCLUDE_POST_TYPES", "").strip().lower().replace(" ", "") or "reposts"
    if value not in EXCLUDE_POST_TYPES:
        raise ConfigError(
            f"EXCLUDE_POST_TYPES must be none, reposts, replies or reposts,replies; got {value!r}"
        )
    return EXCLUDE_POST_TYPES[value]


@dataclass(frozen=True)
class XEndpoints:
    authorize_url: str
    token_url: str
    revoke_url: str
    api_base_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> XEndpoints:
        token_url = _url(env, "X_TOKEN_URL", "https://api.x.com/2/oauth2/token")
        # X serves revoke beside token; deriving it keeps a stand-in OAuth server to one variable.
        default_revoke = re.sub(r"/token$", "/revoke", token_url)
        return cls(
            authorize_url=_url(env, "X_AUTHORIZE_URL", "https://x.com/i/oauth2/authorize"),
            token_url=token_url,
            revoke_url=_url(env, "X_REVOKE_URL", default_revoke),
            api_base_url=_url(env, "X_API_BASE_URL", "https://api.x.com"),
        )


@dataclass(frozen=True)
class ConnectSettings:
    """What the authorize function needs. A client id is public (it is in every authorize URL),
    so it comes from the environment and this function's role needs no access to the secret."""

    table_name: str
    client_id: str
    scopes: str
    redirect_uri: str | None
    x: XEndpoints

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ConnectSettings:
        env = os.environ if env is None else env
        return cls(
            table_name=_matching(env, "TABLE_NAME", _TABLE_RE),
            client_id=_matching(env, "CLIENT_ID", _CLIENT_ID_RE),
            scopes=_scopes(env),
            redirect_uri=_optional_url(env, "REDIRECT_URI"),
            x=XEndpoints.from_env(env),
        )


@dataclass(frozen=True)
class AuthSettings:
    """What the callback function needs."""

    table_name: str
    client_secret_arn: str
    token_key_id: str
    scopes: str
    redirect_uri: str | None
    allowed_users: frozenset[str]
    x: XEndpoints

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuthSettings:
        env = os.environ if env is None else env
        return cls(
            table_name=_matching(env, "TABLE_NAME", _TABLE_RE),
            client_secret_arn=_required(env, "CLIENT_SECRET_ARN"),
            token_key_id=_required(env, "TOKEN_KEY_ID"),
            scopes=_scopes(env),
            redirect_uri=_optional_url(env, "REDIRECT_URI"),
            allowed_users=_allowed_users(env),
            x=XEndpoints.from_env(env),
        )


@dataclass(frozen=True)
class FetchSettings:
    """What the refresh-and-fetch function needs."""

    table_name: str
    bucket_name: str
    export_prefix: str
    client_secret_arn: str
    token_key_id: str
    fetch_queue_url: str | None
    x: XEndpoints
    tiers: TierPolicy
    daily_read_budget: int  # billable post reads per UTC day, app-wide; 0 = none
    prices: Prices
    exclude: str  # X's timeline `exclude` value ("" = none)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FetchSettings:
        env = os.environ if env is None else env
        return cls(
            table_name=_matching(env, "TABLE_NAME", _TABLE_RE),
            bucket_name=_matching(env, "BUCKET_NAME", _BUCKET_RE),
            export_prefix=_matching(env, "EXPORT_PREFIX", _PREFIX_RE, "x-metrics").strip("/"),
            client_secret_arn=_required(env, "CLIENT_SECRET_ARN"),
            token_key_id=_required(env, "TOKEN_KEY_ID"),
            fetch_queue_url=_optional_url(env, "FETCH_QUEUE_URL"),
            x=XEndpoints.from_env(env),
            tiers=_tiers(env),
            daily_read_budget=_budget(env),
            prices=_prices(env),
            exclude=_exclude(env),
        )
