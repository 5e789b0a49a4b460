"""A local X (Twitter) for this app: OAuth 2.0 with PKCE and the two API v2 endpoints it reads.

It behaves like X where the app's correctness depends on it: single-use 30-second codes bound to
client, redirect URI and S256 challenge; refresh tokens that rotate on every use (a spent one is
dead); the 30-day / own-posts rule for private metrics with X's partial errors; 3,200-post reach,
opaque pagination, X's validation and problem shapes, and rate limits with their headers. Posts
appear as the clock reaches their created_at; reads are billed per resource once a UTC day, and the
monthly usage cap and exhausted credits answer as X does (`usage_cap`, `usage_capped`). Faults
(`inject`) reproduce what the network and X do on bad days, including "X rotated the token but the
answer never arrived". Standard library only; all state sits behind one lock.

By default it serves what X serves: generated timelines hold replies, quotes and reposts beside
plain posts (`add_user(reply_ratio=, quote_ratio=, repost_ratio=)`, 0 each for posts only; `post_type`
tells them apart), `exclude` meets X's 3,200 / 800 reach (with switches for its undocumented
corners), users/me serves its profile and public_metrics when `user.fields` asks, and posts' counts
grow with their age, in hourly steps from when the account was added (`metrics_grow`, False for
final counts).

XSandbox is built in layers, each on the one before: timeline (the users and their posts), oauth,
usage (billing and the cap), api, faults, server (HTTP and lifecycle); wire holds the request and
reply types they share.
"""

from local.x_sandbox.faults import ENDPOINTS, FAULT_KINDS
from local.x_sandbox.oauth import ClientApp
from local.x_sandbox.server import LoggedRequest, XSandbox
from local.x_sandbox.timeline import (
    POST_TYPES,
    TIMELINE_REACH,
    TIMELINE_REACH_WITHOUT_REPLIES,
    SandboxUser,
    post_type,
)
from local.x_sandbox.usage import KINDS, USAGE_SWITCHES

__all__ = [
    "ENDPOINTS",
    "FAULT_KINDS",
    "KINDS",
    "POST_TYPES",
    "TIMELINE_REACH",
    "TIMELINE_REACH_WITHOUT_REPLIES",
    "USAGE_SWITCHES",
    "ClientApp",
    "LoggedRequest",
    "SandboxUser",
    "XSandbox",
    "post_type",
]
