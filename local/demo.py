"""`make demo`: the whole job offline, as a user would see it, with a short report.

embedded AWS (moto server) + X sandbox + local API gateway -> a browser-like connect ->
the scheduled run through the SQS fan-out -> JSON lines in S3.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import requests

from local import flows
from local.gateway import LocalGateway
from local.stack import LocalStack
from local.x_sandbox import XSandbox
from xmetrics.exporter import export_key
from xmetrics.services.billing import PRICES
from xmetrics.timeutil import parse_utc

T = TypeVar("T")
DEMO_USER = ("ada_metrics", "1700000000000000001")


class DemoError(Exception):
    pass


@contextmanager
def step(number: int, total: int, title: str) -> Iterator[None]:
    print(f"[{number}/{total}] {title} ...", end="", flush=True)
    started = time.monotonic()
    try:
        yield
    except BaseException:
        print(" failed")
        raise
    print(f" ok ({time.monotonic() - started:.1f}s)")


def browser_connect(gateway_url: str) -> requests.Response:
    """GET /connect and follow every redirect, keeping cookies, the way a browser does."""
    with requests.Session() as browser:
        answer = browser.get(f"{gateway_url}/connect", timeout=30)
    if answer.status_code != 200:
        raise DemoError(f"callback answered {answer.status_code}")
    return answer


def _row(record: dict[str, Any]) -> str:
    pub = record.get("public_metrics", {})
    org = record.get("organic_metrics", {})
    npm = record.get("non_public_metrics", {})
    line = (
        f"  {record['tweet_id']}  {record.get('created_at', '')[:10]}"
        f"  impressions {org.get('impression_count', '-'):>6}"
        f"  likes {pub.get('like_count', '-'):>4}  link clicks {npm.get('url_link_clicks', '-'):>4}"
    )
    videos = [m for m in record["media"] if m.get("type") == "video"]
    if videos:
        q = videos[0].get("non_public_metrics", {})
        quartiles = "/".join(str(q.get(f"playback_{p}_count", "-")) for p in (0, 25, 50, 75, 100))
        line += f"  video 0/25/50/75/100%: {quartiles}"
    return line


_KINDS = (("post", "posts"), ("reply", "replies"), ("quote", "quotes"), ("repost", "reposts"))


def report(
    stack: LocalStack,
    key: str,
    first_bill: dict[str, int],
    again: dict[str, Any],
    connected: str,
    elapsed: float,
) -> None:
    s3 = stack.client("s3")
    body = s3.get_object(Bucket=stack.resources.bucket_name, Key=key)["Body"].read().decode()
    rows = [json.loads(line) for line in body.splitlines()]
    with_video = [r for r in rows if any(m.get("type") == "video" for m in r["media"])]
    sample = (with_video[:2] + [r for r in rows if r not in with_video][:2])[:4]
    tiers = sorted({r["read_tier"] for r in rows})
    cost = (
        first_bill["posts"] * PRICES.post
        + first_bill["media"] * PRICES.media
        + first_bill["users"] * PRICES.user
    )
    print()
    print(f"== x-metrics-export demo: done in {elapsed:.1f}s")
    print(f"account connected : {connected}")
    print(f"tweets exported   : {len(rows)} by the scheduled run, read tiers {', '.join(tiers)}")
    kinds = Counter(r["post_type"] for r in rows)
    print(
        "post types        : "
        + ", ".join(f"{kinds[k]} {plural}" for k, plural in _KINDS if kinds[k])
        + " (reposts are left out: ExcludePostTypes=reposts)"
    )
    print(f"S3 object written : s3://{stack.resources.bucket_name}/{key}  ({len(body)} bytes, JSON lines)")
    account_key = key.replace("/tweets/", "/accounts/", 1)
    account = json.loads(s3.get_object(Bucket=stack.resources.bucket_name, Key=account_key)["Body"].read())
    counts = account.get("public_metrics", {})
    print(
        f"the account       : {counts.get('followers_count', '-')} followers, "
        f"{counts.get('tweet_count', '-')} posts in all (the day's account snapshot, {account_key})"
    )
    print(
        f"X's bill          : {first_bill['posts']} posts + {first_bill['media']} media + "
        f"{first_bill['users']} user billed by the scheduled run, est. ${cost:.3f} "
        f"(X's {PRICES.as_of} prices)"
    )
    print(
        f"a run right after : re-read the {again['tweets']} posts younger than 48 h "
        f"({', '.join(again.get('tiers', []))}); {again['billed']['posts']} new today, "
        f"est. ${again.get('cost_usd', 0):.3f}: X bills a post once per UTC day"
    )
    print("sample rows (organic impressions, public likes, non-public link clicks, video quartiles):")
    for record in sample:
        print(_row(record))
    print()
    print("next: `make local` to click through /connect in your browser; README 'Where the exports land'")
    print("      for the schema and an Athena table; `make test` for the test suite.")


def run() -> int:
    started = time.monotonic()
    total = 5
    stack: LocalStack | None = None
    gateway: LocalGateway | None = None
    try:
        with step(1, total, "starting embedded AWS (moto server) and the X sandbox"):
            sandbox = XSandbox().start()
            # Posts, replies, quotes and reposts, as a real account's timeline holds them.
            sandbox.add_user(
                DEMO_USER[0],
                user_id=DEMO_USER[1],
                tweet_count=140,
                days=28,
                video_ratio=0.35,
                reply_ratio=0.2,
                quote_ratio=0.1,
                repost_ratio=0.15,
            )
            gateway = LocalGateway(lambda fn, ev: stack.invoke(fn, ev) if stack else None).start()
            # The functions' JSON logs would bury the report; warnings and errors still show.
            stack = LocalStack.start(
                sandbox=sandbox,
                redirect_uris=(f"{gateway.url}/callback",),
                extra_env={"LOG_LEVEL": "WARNING"},
            )
        print(f"      AWS endpoint {stack.moto.endpoint}, X sandbox {sandbox.url}, API {gateway.url}")
        with step(2, total, f"connecting @{DEMO_USER[0]}: GET /connect -> X consent -> GET /callback"):
            page = browser_connect(gateway.url)
            if f"@{DEMO_USER[0]}" not in page.text:
                raise DemoError("the callback page does not name the account")
        snapshot = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime())
        at = parse_utc(snapshot)
        with step(3, total, f"scheduled run at {snapshot}: dispatching active accounts to SQS"):
            dispatched = stack.invoke("FetchFunction", flows.schedule_event(at))
            if dispatched.get("queued") != 1:
                raise DemoError(f"expected one queued account, got {dispatched}")
        with step(4, total, "worker: refresh if due, fetch every page, join media, write JSON lines"):
            failures = sum(len(a["batchItemFailures"]) for a in flows.drain_queue(stack))
            if failures:
                raise DemoError(f"{failures} queue message(s) failed; see the function's log above")
            first_bill = sandbox.billed()
        with step(5, total, "a manual run, then reading the export back from S3"):
            summary = stack.invoke("FetchFunction", {"user_id": DEMO_USER[1]})
            if summary.get("status") != "exported":
                raise DemoError(f"manual fetch: {summary}")
            key = export_key(stack.environment["EXPORT_PREFIX"], DEMO_USER[1], at)
            listed = stack.client("s3").list_objects_v2(Bucket=stack.resources.bucket_name, Prefix=key)
            if listed.get("KeyCount") != 1:
                raise DemoError(f"expected the scheduled export at {key}, found none")
        report(
            stack,
            key,
            first_bill,
            summary,
            f"@{DEMO_USER[0]} (id {DEMO_USER[1]})",
            time.monotonic() - started,
        )
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the local stack")
        return 130
    except DemoError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if gateway is not None:
            gateway.stop()
        if stack is not None:
            stack.stop()


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
