"""The local stack the cold-start and call-count sections run against, with connected accounts."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from local import flows
from local.stack import LocalStack
from local.x_sandbox import XSandbox

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"


@dataclass(frozen=True)
class BenchUser:
    name: str
    user_id: str
    tweets: int


# One page, three pages (a partial last page), and X's 3,200-post reach (32 full pages).
SMALL = BenchUser("bench_small", "1700000000000000101", 60)
MEDIUM = BenchUser("bench_medium", "1700000000000000102", 250)
LARGE = BenchUser("bench_large", "1700000000000000103", 3200)
# Accounts that only make the scheduled dispatch realistic (more than one SQS batch of 10).
FILLERS = tuple(BenchUser(f"bench_fill_{i:02d}", f"17000000000000002{i:02d}", 12) for i in range(10))
USERS = (SMALL, MEDIUM, LARGE, *FILLERS)
# Spread over 28 days, so every post is inside the 30-day window (minus the hour of margin).
DAYS = 28
VIDEO_RATIO = 0.35
PHOTO_RATIO = 0.2
# The bench's accounts only post, where the sandbox's default timeline also holds replies, quotes and
# reposts: pages, reads and bills follow from the post counts alone and stay comparable with earlier
# results.
POSTS_ONLY = {"reply_ratio": 0.0, "quote_ratio": 0.0, "repost_ratio": 0.0}


def new_sandbox(clock: Callable[[], float] = time.time) -> XSandbox:
    """The X sandbox serving final counts, not counts grown with age (its default): the export's
    bytes per post, which the AWS model and the client CPU figures rest on, stay as measured before."""
    sandbox = XSandbox(clock=clock)
    sandbox.metrics_grow = False
    return sandbox


def start_stack() -> LocalStack:
    sandbox = new_sandbox().start()
    for user in USERS:
        sandbox.add_user(
            user.name,
            user_id=user.user_id,
            tweet_count=user.tweets,
            days=DAYS,
            video_ratio=VIDEO_RATIO,
            photo_ratio=PHOTO_RATIO,
            **POSTS_ONLY,
        )
    # In-process handler logs would bury the bench's output; the cold-start children log at INFO.
    # Every run reads each account's whole window (RefreshTiers `all`): the calls, cold-start and
    # memory figures are those of the heaviest run, whatever runs came before (with the default
    # tiers a later run of the same day reads only the last 48 hours). Section 5 measures the tiers.
    stack = LocalStack.start(sandbox=sandbox, extra_env={"LOG_LEVEL": "WARNING", "REFRESH_TIERS": "all"})
    for user in USERS:
        connect(stack, user)
    return stack


def connect(stack: LocalStack, user: BenchUser) -> None:
    assert stack.x is not None
    stack.x.login_as(user.name)
    answer = flows.connect(stack)
    if answer.get("statusCode") != 200:
        raise RuntimeError(f"connecting @{user.name} failed: {answer.get('statusCode')}")


def child_environment(stack: LocalStack, **extra: str) -> dict[str, str]:
    """What a fresh Lambda process of this stack would have: its variables and the layer path."""
    layer_path = os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)])
    return {**os.environ, **stack.environment, "LOG_LEVEL": "INFO", "PYTHONPATH": layer_path, **extra}
