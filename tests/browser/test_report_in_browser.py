"""`make report` opened in a real headless Chromium: every chart drawn, nothing in the console.

The exports are real: the demo's story (scheduled runs through the SQS fan-out, the X sandbox's
clock following each scheduled time) over a shorter stretch, on DynamoDB Local and moto, and the
report reads them from moto's bucket the way it reads a deployed one (`--bucket`). The browser is
the connect test's: Debian's Chromium, skipped on a laptop without it, required in CI.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from local import aws, demo, flows, report
from local.clock import fetch_function_clock
from local.dynamodb_local import DynamoDBLocal
from local.stack import LocalStack, reset_handlers
from tests.browser.conftest import PNG_MAGIC
from xmetrics.services.results import Summary
from xmetrics.timeutil import iso_z

pytestmark = pytest.mark.browser

# The connect test's Chromium: Debian's browser and driver, offline; it keeps the page's SEVERE
# console entries (chromedriver's default), which is where a blocked load or a script error lands.
USER_ID = demo.DEMO_USER[1]
RUNS = 12  # the last 3 days of the demo's schedule: posts appear, counts grow, followers move
PREFIX = "x-metrics"
STATUSES = ("exported", "failed", "needs_reconnect")
READ_KINDS = ("posts", "media", "users")


@dataclass
class Exports:
    stack: LocalStack
    prefix: str

    def lines(self, dataset: str) -> list[dict[str, Any]]:
        s3, bucket = self.stack.client("s3"), self.stack.resources.bucket_name
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{self.prefix}/{dataset}/").get("Contents", [])
        bodies = (s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode() for o in listed)
        return [json.loads(line) for body in bodies for line in body.splitlines()]


@pytest.fixture
def exports(moto_server: aws.MotoServer, dynamodb_local: DynamoDBLocal) -> Iterator[Exports]:
    """The demo account connected at the stretch's start, then each scheduled run in turn."""
    saved = dict(os.environ)
    runs = demo.schedule(datetime.now(UTC))[-RUNS:]
    sandbox, clock = demo.story_sandbox(runs)
    stack = LocalStack.start(moto=moto_server, sandbox=sandbox, dynamodb_endpoint=dynamodb_local.endpoint)
    try:
        assert flows.connect(stack)["statusCode"] == 200
        with fetch_function_clock(clock):
            for at in runs:
                clock.at(at)
                demo.scheduled_run(stack, at)
        yield Exports(stack, stack.environment["EXPORT_PREFIX"])
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        reset_handlers()


def _open(driver: WebDriver, page: Path) -> None:
    driver.set_window_size(1280, 2400)
    driver.get(page.as_uri())


def _console_errors(driver: WebDriver) -> list[dict[str, Any]]:
    # The page's Content-Security-Policy forbids every load: one attempted shows here as SEVERE.
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _figure(driver: WebDriver, chart: str) -> WebElement:
    (figure,) = driver.find_elements(By.CSS_SELECTOR, f'#account-{USER_ID} figure[data-chart="{chart}"]')
    return figure


def _series(figure: WebElement) -> dict[str, WebElement]:
    """The chart's series groups (matplotlib's gid, prefixed per chart) by name, once the browser
    has laid the drawing out at a visible size."""
    (drawing,) = figure.find_elements(By.TAG_NAME, "svg")
    size = drawing.size
    assert size["width"] > 200 and size["height"] > 100, size
    return {
        str(group.get_attribute("id")).split("-series-", 1)[1]: group
        for group in drawing.find_elements(By.CSS_SELECTOR, '[id*="-series-"]')
    }


def _shapes(group: WebElement, tag: str) -> int:
    """How many `tag` elements the series drew that the browser gave an area (a marker is a <use>)."""
    return sum(
        1 for shape in group.find_elements(By.TAG_NAME, tag) if shape.rect["width"] or shape.rect["height"]
    )


def _screenshot(driver: WebDriver, path: Path) -> None:
    assert driver.save_screenshot(str(path))
    assert path.read_bytes().startswith(PNG_MAGIC) and path.stat().st_size > 10_000


def test_the_report_of_scheduled_runs_draws_every_chart_in_chromium(
    chromium: WebDriver, exports: Exports, tmp_path: Path
) -> None:
    # Given: a stretch of scheduled runs' exports in the bucket
    days = {r["snapshot_at"][:10] for r in exports.lines("tweets")}
    accounts = sorted(exports.lines("accounts"), key=lambda a: a["snapshot_at"])
    run_lines = exports.lines("runs")
    # When: the report reads the bucket as it would a deployed one, and Chromium opens it
    out = tmp_path / "report.html"
    bucket = exports.stack.resources.bucket_name
    assert report.main(["--bucket", bucket, "--prefix", exports.prefix, "--out", str(out)]) == 0
    _open(chromium, out)
    # Then: nothing went wrong in the page, and the one account is shown
    assert _console_errors(chromium) == []
    shown = chromium.find_elements(By.CSS_SELECTOR, "section.account")
    assert [s.get_attribute("data-user-id") for s in shown] == [USER_ID]
    # and each chart drew its series, as many points or bars as the exports hold
    daily = _series(_figure(chromium, "daily"))
    assert set(daily) == {"impressions", "engagements"}
    assert [_shapes(daily[name], "use") for name in daily] == [len(days)] * 2
    followers = _series(_figure(chromium, "followers"))
    assert set(followers) == {"followers"}
    assert _shapes(followers["followers"], "use") == len(accounts) > 1
    top = _figure(chromium, "top")
    assert set(_series(top)) == {"engagement-rate"}
    assert (
        _shapes(_series(top)["engagement-rate"], "path")
        == len(top.find_elements(By.CSS_SELECTOR, "tbody tr"))
        == 10
    )
    funnel = _series(_figure(chromium, "funnel"))
    assert set(funnel) == {"plays"} and _shapes(funnel["plays"], "path") == 5
    # and the run history is charted from the runs lines, or says there are none
    runs = _figure(chromium, "runs")
    if run_lines:
        statuses = {f"status-{line['status']}" for line in run_lines}
        assert set(_series(runs)) == statuses | {f"reads-{kind}" for kind in READ_KINDS}
    else:
        assert runs.get_attribute("data-empty") == "true" and "No run history" in runs.text
    # and the newest follower count heads the account
    newest = accounts[-1]["public_metrics"]["followers_count"]
    assert chromium.find_element(By.CSS_SELECTOR, f"#account-{USER_ID} .kpi b").text == f"{newest:,}"
    _screenshot(chromium, tmp_path / "report.png")


def _runs_line(at: datetime, status: str) -> dict[str, Any]:
    """A runs/ line as the fetch writes it (Summary.as_run_line); a run that failed read nothing."""
    exported = status == "exported"
    summary = (
        Summary(
            USER_ID,
            status,
            tweets=12,
            tiers=["0-48h"],
            reads={"posts": 12, "media": 4, "users": 0},
            billed={"posts": 3, "media": 1, "users": 0},
            cost_usd=0.008,
            complete=True,
        )
        if exported
        else Summary(USER_ID, status, error=f"{status} (as the summary says)")
    )
    return summary.as_run_line(iso_z(at))


def test_run_history_charts_each_status_and_the_reads_and_notes_what_is_missing(
    chromium: WebDriver, tmp_path: Path
) -> None:
    # Given: an account's runs of the last days, a failed one and one that needs a reconnect among
    # them, and no post or account snapshot (a local copy holding runs/ alone)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    statuses = ["exported"] * 6 + ["failed", "exported", "needs_reconnect", "needs_reconnect"]
    history = [(now - timedelta(hours=6 * (len(statuses) - 1 - i)), s) for i, s in enumerate(statuses)]
    for at, status in history:
        key = (
            tmp_path / "copy" / PREFIX / f"runs/dt={at:%Y-%m-%d}/user_id={USER_ID}/{at:%Y%m%dT%H%M%SZ}.jsonl"
        )
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_text(json.dumps(_runs_line(at, status)) + "\n", encoding="utf-8")
    # When
    out = tmp_path / "report.html"
    assert report.main(["--dir", str(tmp_path / "copy"), "--prefix", PREFIX, "--out", str(out)]) == 0
    _open(chromium, out)
    # Then: one series per status and per kind read
    assert _console_errors(chromium) == []
    runs = _series(_figure(chromium, "runs"))
    assert set(runs) == {f"status-{s}" for s in STATUSES} | {f"reads-{kind}" for kind in READ_KINDS}
    # and a bar for each UTC day a status occurred on
    for status in STATUSES:
        days = {at.date() for at, s in history if s == status}
        assert _shapes(runs[f"status-{status}"], "path") == len(days)
    # and the charts without data say so instead of drawing an empty frame
    for chart in ("daily", "followers", "top", "funnel"):
        figure = _figure(chromium, chart)
        assert figure.get_attribute("data-empty") == "true"
        assert not figure.find_elements(By.TAG_NAME, "svg")
        assert "No " in figure.find_element(By.CSS_SELECTOR, "p.note").text
    _screenshot(chromium, tmp_path / "runs.png")
