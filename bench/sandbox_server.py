"""The X sandbox in a process of its own, so its CPU never lands on the client being measured.

    python bench/sandbox_server.py TWEETS DAYS

Prints one JSON line (url, user_id, access token, window) and serves until stdin closes; then
prints the request counts per endpoint.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

from bench.fixture import POSTS_ONLY, new_sandbox

USERNAME = "bench_reach"
USER_ID = "1700000000000000301"
CLIENT_ID = "bench-client"


def main(argv: list[str]) -> None:
    tweets, days = int(argv[1]), int(argv[2])
    sandbox = new_sandbox().start()
    # Both clients fetch the same account many times; the per-user window is not under test here.
    sandbox.rate_limits = {"me": 75, "tweets": 100_000, "tweets_app": 100_000}
    sandbox.add_user(
        USERNAME,
        user_id=USER_ID,
        tweet_count=tweets,
        days=days,
        video_ratio=0.35,
        photo_ratio=0.2,
        **POSTS_ONLY,
    )
    sandbox.register_client(CLIENT_ID, None, ["http://127.0.0.1/callback"])
    token = sandbox.issue_tokens(USERNAME, CLIENT_ID)["access_token"]
    # Now, to the second: the newest post is older than that, so the window holds every post.
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=30) + timedelta(hours=1)
    info = {
        "url": sandbox.api_base_url,
        "user_id": USER_ID,
        "username": USERNAME,
        "token": token,
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    print(json.dumps(info), flush=True)
    sys.stdin.read()
    served = Counter(entry.endpoint for entry in sandbox.request_log)
    sandbox.stop()
    print(json.dumps(dict(served)), flush=True)


if __name__ == "__main__":
    main(sys.argv)
