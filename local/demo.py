"""`make demo`: the whole job offline, as a user would see it, over a simulated week.

embedded AWS (moto server) + X sandbox + local API gateway -> a browser-like connect -> a week of
scheduled runs through the SQS fan-out (time compressed: the events carry the scheduled times and
the sandbox's clock follows them, so posts appear, their counts grow and followers come as the week
passes) -> JSON lines in S3 -> a copy on disk that `make report` charts.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from local import flows
from local import report as charts
from local.clock import SettableClock, fetch_function_clock
from local.gateway import LocalGateway
from local.stack import LocalStack
from local.template import ROOT
from local.x_sandbox import XSandbox
from xmetrics.services.billing import PRICES
from xmetrics.timeutil import iso_z

DEMO_USER = ("ada_metrics", "1700000000000000001")
DAYS = 7
# Every 6 hours rather than the deployed hourly schedule: 28 runs keep the demo to seconds and
# still show what the tiers do (the first run of each UTC day reads the older posts and the account).
RUN_EVERY = timedelta(hours=6)
# Where the demo leaves its exports, mirroring the bucket's keys; `make report` reads it by default.
EXPORTS_DIR = ROOT / ".demo" / "exports"
# The callback stores the token's expiry by the wall clock, while the sandbox and the fetch runs
# keep the simulated one, a week behind: a token X would call expired after 2 simulated hours
# still looks fresh to the app. A token that outlives the week keeps the story about metrics; the
# rotation has suites of its own.
TOKEN_LIFE = 30 * 86_400


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


def schedule(now: datetime) -> list[datetime]:
    """DAYS of scheduled times, every RUN_EVERY, the last one at or before `now`.

    The handler accepts scheduled times of the last 30 days only, so the week is the one just past.
    """
    every = int(RUN_EVERY.total_seconds())
    last = datetime.fromtimestamp(int(now.timestamp()) // every * every, UTC)
    count = DAYS * int(timedelta(days=1) / RUN_EVERY)
    return [last - RUN_EVERY * i for i in reversed(range(count))]


def story_sandbox(runs: list[datetime]) -> tuple[XSandbox, SettableClock]:
    """The X sandbox for a stretch of scheduled runs, its clock at the first one, the demo account
    on it: 4 weeks of posts that end at the last run, so the stretch's posts appear as the clock
    passes them, counts that grow with a post's age, and followers that grow from the first run."""
    clock = SettableClock(runs[-1])
    sandbox = XSandbox(clock=clock).start()
    sandbox.metrics_grow = True
    sandbox.access_token_ttl = TOKEN_LIFE
    # Posts, replies, quotes and reposts, as a real account's timeline holds them.
    user = sandbox.add_user(
        DEMO_USER[0],
        user_id=DEMO_USER[1],
        tweet_count=140,
        days=28,
        video_ratio=0.35,
        reply_ratio=0.2,
        quote_ratio=0.1,
        repost_ratio=0.15,
    )
    # Followers grow from when the sandbox got the account: backdated to the first run, they grow
    # over the stretch, not only after it.
    user.added_at = runs[0].timestamp()
    clock.at(runs[0])
    return sandbox, clock


def browser_connect(gateway_url: str) -> requests.Response:
    """GET /connect and follow every redirect, keeping cookies, the way a browser does."""
    with requests.Session() as browser:
        answer = browser.get(f"{gateway_url}/connect", timeout=30)
    if answer.status_code != 200:
        raise DemoError(f"callback answered {answer.status_code}")
    return answer


def scheduled_run(stack: LocalStack, at: datetime) -> None:
    """EventBridge's event at `at`, then Lambda's SQS poller delivering what it queued."""
    dispatched = stack.invoke("FetchFunction", flows.schedule_event(at))
    if dispatched.get("queued") != 1:
        raise DemoError(f"run at {iso_z(at)}: expected one queued account, got {dispatched}")
    failures = sum(len(a["batchItemFailures"]) for a in flows.drain_queue(stack))
    if failures:
        raise DemoError(f"run at {iso_z(at)}: {failures} queue message(s) failed; see the log above")


def copy_exports(stack: LocalStack, into: Path) -> list[Path]:
    """Every object under the export prefix, written to `into`/<key>; a previous demo's copy goes
    first, so the report never mixes two demos' weeks."""
    prefix = stack.environment["EXPORT_PREFIX"]
    shutil.rmtree(into / prefix, ignore_errors=True)
    s3, bucket = stack.client("s3"), stack.resources.bucket_name
    copied: list[Path] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        for item in page.get("Contents", []):
            target = into / item["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            copied.append(target)
    return copied


def _lines(files: list[Path]) -> list[dict[str, Any]]:
    return [json.loads(line) for path in files for line in path.read_text(encoding="utf-8").splitlines()]


@dataclass
class Week:
    """What the simulated week left in S3, read back from the copy on disk."""

    root: Path
    tweets: list[Path]
    accounts: list[Path]
    objects: Counter[str]  # by dataset: tweets, accounts, and any other the fetch writes (runs)

    @classmethod
    def read(cls, root: Path, files: list[Path]) -> Week:
        def under(dataset: str) -> list[Path]:
            return sorted(p for p in files if p.relative_to(root).parts[0] == dataset)

        datasets = Counter(p.relative_to(root).parts[0] for p in files)
        return cls(root, under("tweets"), under("accounts"), datasets)

    def latest_per_post(self) -> list[dict[str, Any]]:
        """The newest line of each post: its current picture."""
        newest: dict[str, dict[str, Any]] = {}
        for record in _lines(self.tweets):
            seen = newest.get(record["tweet_id"])
            if seen is None or record["snapshot_at"] > seen["snapshot_at"]:
                newest[record["tweet_id"]] = record
        return sorted(newest.values(), key=lambda r: r["created_at"], reverse=True)


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


def _cost(billed: dict[str, int]) -> float:
    return billed["posts"] * PRICES.post + billed["media"] * PRICES.media + billed["users"] * PRICES.user


def report(
    week: Week,
    runs: list[datetime],
    week_bill: dict[str, int],
    again: dict[str, Any],
    connected: str,
    page_path: Path,
    elapsed: float,
) -> None:
    latest = week.latest_per_post()
    lines = _lines(week.tweets)
    tiers = Counter(r["read_tier"] for r in lines)
    tier_runs = Counter(tier for tier, _ in {(r["read_tier"], r["snapshot_at"]) for r in lines})
    accounts = sorted(_lines(week.accounts), key=lambda r: r["snapshot_at"])
    first, last = accounts[0].get("public_metrics", {}), accounts[-1].get("public_metrics", {})
    print()
    print(f"== x-metrics-export demo: done in {elapsed:.1f}s")
    print(f"account connected : {connected}")
    print(
        f"scheduled runs    : {len(runs)} over {DAYS} days, every {RUN_EVERY.seconds // 3600} h from "
        f"{iso_z(runs[0])} to {iso_z(runs[-1])}, each through the SQS fan-out; all exported"
    )
    print(
        f"tweets exported   : {len(lines)} lines in {len(week.tweets)} objects: {len(latest)} posts, "
        "each read again as it aged (the newest line of a post is its current picture)"
    )
    print(
        "read tiers        : "
        + "; ".join(f"{name} {tier_runs[name]} runs, {tiers[name]} lines" for name in sorted(tiers))
        + " (under 48 h every run, 2-7 days on a UTC day's first, older every 7 days and on the first run)"
    )
    kinds = Counter(r["post_type"] for r in latest)
    print(
        "post types        : "
        + ", ".join(f"{kinds[k]} {plural}" for k, plural in _KINDS if kinds[k])
        + " (reposts are left out: ExcludePostTypes=reposts)"
    )
    newest = week.tweets[-1]
    print(
        f"S3 objects        : the newest, {newest.relative_to(week.root.parent).as_posix()} "
        f"({newest.stat().st_size} bytes, JSON lines)"
    )
    print(
        f"the account       : {first.get('followers_count', '-')} -> {last.get('followers_count', '-')} "
        f"followers over the week, {last.get('tweet_count', '-')} posts in all "
        f"({len(accounts)} daily account snapshots under accounts/)"
    )
    print(
        f"X's bill          : {week_bill['posts']} posts + {week_bill['media']} media + "
        f"{week_bill['users']} users billed over the week, est. ${_cost(week_bill):.3f} "
        f"(X's {PRICES.as_of} prices; a post read again the same UTC day is not billed again)"
    )
    print(
        f"a run right after : a manual run re-read the {again['tweets']} posts younger than 48 h "
        f"({', '.join(again.get('tiers', []))}); {again['billed']['posts']} new today, "
        f"est. ${again.get('cost_usd', 0):.3f}: X bills a post once per UTC day"
    )
    print("newest posts (organic impressions, public likes, non-public link clicks, video quartiles):")
    with_video = [r for r in latest if any(m.get("type") == "video" for m in r["media"])]
    for record in (with_video[:2] + [r for r in latest if r not in with_video][:2])[:4]:
        print(_row(record))
    print(
        f"exports on disk   : {week.root.relative_to(ROOT).as_posix()}/ ("
        + ", ".join(f"{count} {dataset}/" for dataset, count in sorted(week.objects.items()))
        + " objects), as keyed in the bucket"
    )
    print(f"report            : {page_path}")
    print(" " * 20 + "open it in a browser; `make report` builds it again (README 'See your metrics')")
    print()
    print("next: `make local` to click through /connect in your browser; `make test` for the test suite.")


def run() -> int:
    started = time.monotonic()
    total = 6
    stack: LocalStack | None = None
    gateway: LocalGateway | None = None
    runs = schedule(datetime.now(UTC))
    try:
        with step(1, total, "starting embedded AWS (moto server) and the X sandbox"):
            sandbox, clock = story_sandbox(runs)
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
        with step(
            3,
            total,
            f"a week of scheduled runs, {iso_z(runs[0])} to {iso_z(runs[-1])}: "
            f"{len(runs)} EventBridge events -> SQS -> worker -> S3",
        ):
            with fetch_function_clock(clock):
                for at in runs:
                    clock.at(at)
                    scheduled_run(stack, at)
            week_bill = sandbox.billed()
        with step(4, total, "a manual run now, as `make invoke` would"):
            clock.now = time.time()
            summary = stack.invoke("FetchFunction", {"user_id": DEMO_USER[1]})
            if summary.get("status") != "exported":
                raise DemoError(f"manual fetch: {summary}")
        with step(5, total, f"copying the exports from S3 to {EXPORTS_DIR.relative_to(ROOT)}/"):
            prefix = stack.environment["EXPORT_PREFIX"]
            copied = copy_exports(stack, EXPORTS_DIR)
            week = Week.read(EXPORTS_DIR / prefix, copied)
            if len(week.tweets) != len(runs) + 1:
                raise DemoError(f"expected {len(runs) + 1} tweets objects, found {len(week.tweets)}")
        with step(6, total, "charting them: the HTML report `make report` builds"):
            page_path = charts.build(
                EXPORTS_DIR, prefix, f"{EXPORTS_DIR.relative_to(ROOT)}/{prefix}", charts.DEFAULT_OUT
            )
        report(
            week,
            runs,
            week_bill,
            summary,
            f"@{DEMO_USER[0]} (id {DEMO_USER[1]}), at the week's start",
            page_path,
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
