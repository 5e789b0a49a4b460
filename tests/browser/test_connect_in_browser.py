"""/connect -> X's consent page -> /callback in a real headless Chromium, over the local gateway.

The browser is Debian's system Chromium with its chromedriver (never a downloaded one, and Selenium
Manager is never asked). What only a browser proves: the state cookie set on /connect survives the
trip through X's consent form and comes back on /callback, and the pages render.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from local import aws
from local.dynamodb_local import DynamoDBLocal
from local.gateway import LocalGateway
from local.stack import LocalStack, reset_handlers
from local.x_sandbox import XSandbox
from tests.browser.conftest import PNG_MAGIC, WAIT_SECONDS

pytestmark = pytest.mark.browser

USERNAME, USER_ID = "ada_metrics", "1700000000000000001"


@dataclass
class Served:
    """What the gateway handed each function and what the function answered."""

    calls: list[tuple[str, dict[str, Any], Any]] = field(default_factory=list)

    def answers(self, function: str) -> list[Any]:
        return [answer for name, _, answer in self.calls if name == function]


@dataclass
class BrowserStack:
    stack: LocalStack
    gateway: LocalGateway
    sandbox: XSandbox
    served: Served


@pytest.fixture
def browser_stack(
    moto_server: aws.MotoServer, dynamodb_local: DynamoDBLocal, sandbox: XSandbox
) -> Iterator[BrowserStack]:
    """The local stack behind a real HTTP gateway whose /callback is registered with the sandbox."""
    saved_env = dict(os.environ)
    saved_consent = sandbox.auto_consent
    served = Served()
    holder: list[LocalStack] = []

    def invoke(function: str, event: dict[str, Any]) -> Any:
        answer = holder[0].invoke(function, event)
        served.calls.append((function, event, answer))
        return answer

    gateway = LocalGateway(invoke).start()
    try:
        holder.append(
            LocalStack.start(
                moto=moto_server,
                sandbox=sandbox,
                redirect_uris=(f"{gateway.url}/callback",),
                dynamodb_endpoint=dynamodb_local.endpoint,
            )
        )
        sandbox.auto_consent = False  # X shows its consent page and waits for a click
        sandbox.login_as(USERNAME)
        yield BrowserStack(holder[0], gateway, sandbox, served)
    finally:
        sandbox.auto_consent = saved_consent
        gateway.stop()
        os.environ.clear()
        os.environ.update(saved_env)
        reset_handlers()


def _wait_for_text(driver: WebDriver, text: str) -> None:
    WebDriverWait(driver, WAIT_SECONDS).until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), text))


def _navigation_status(driver: WebDriver) -> int:
    """The HTTP status of the page the browser is showing, from the Navigation Timing API."""
    status = driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0]; return n ? n.responseStatus : 0;"
    )
    return int(status or 0)


def _open_consent_page(driver: WebDriver, env: BrowserStack) -> None:
    driver.get(f"{env.gateway.url}/connect")
    WebDriverWait(driver, WAIT_SECONDS).until(ec.element_to_be_clickable((By.ID, "allow")))
    assert driver.current_url.startswith(env.sandbox.authorize_url), driver.current_url
    assert driver.find_element(By.ID, "username").text == f"@{USERNAME}"
    assert driver.find_element(By.ID, "deny").is_displayed()
    # /connect answered 302 and set the plain-http state cookie (the gateway serves http)
    (connect,) = env.served.answers("AuthorizeFunction")
    assert connect["statusCode"] == 302
    assert connect["cookies"][0].startswith("xmx_state=")


def _account_item(env: BrowserStack) -> dict[str, Any] | None:
    got = env.stack.client("dynamodb").get_item(
        TableName=env.stack.resources.table_name, Key={"pk": {"S": f"account#{USER_ID}"}}, ConsistentRead=True
    )
    item: dict[str, Any] | None = got.get("Item")
    return item


def test_authorize_in_the_browser_connects_the_account_and_its_export_runs(
    chromium: WebDriver, browser_stack: BrowserStack, tmp_path: Path
) -> None:
    env = browser_stack
    # Given: the consent page X shows after /connect
    _open_consent_page(chromium, env)
    # When: the user clicks "Authorize app"
    chromium.find_element(By.ID, "allow").click()
    # Then: the browser lands on the app's success page naming the account
    _wait_for_text(chromium, f"@{USERNAME}")
    assert chromium.current_url.startswith(f"{env.gateway.url}/callback?")
    assert _navigation_status(chromium) == 200
    assert f"@{USERNAME}" in chromium.find_element(By.TAG_NAME, "h1").text
    # and the callback got the state cookie back from the browser, not from a test helper
    (callback,) = [event for name, event, _ in env.served.calls if name == "CallbackFunction"]
    assert any(cookie.startswith("xmx_state=") for cookie in callback.get("cookies", []))
    assert env.served.answers("CallbackFunction")[0]["statusCode"] == 200
    screenshot = tmp_path / "connected.png"
    assert chromium.save_screenshot(str(screenshot))
    png = screenshot.read_bytes()
    assert len(png) > len(PNG_MAGIC) and png.startswith(PNG_MAGIC)
    # and the account is stored active
    item = _account_item(env)
    assert item is not None and item["status"]["S"] == "active" and item["username"]["S"] == USERNAME
    # When: a manual fetch for the connected account
    summary = env.stack.invoke("FetchFunction", {"user_id": USER_ID})
    # Then: its export is in S3 with one row per post
    assert summary["status"] == "exported", summary
    head = env.stack.client("s3").head_object(Bucket=env.stack.resources.bucket_name, Key=summary["key"])
    assert head["ContentLength"] > 0
    body = env.stack.client("s3").get_object(Bucket=env.stack.resources.bucket_name, Key=summary["key"])
    rows = [line for line in body["Body"].read().decode("utf-8").splitlines() if line.strip()]
    assert len(rows) == summary["tweets"] > 0


def test_cancel_in_the_browser_shows_the_403_page_and_stores_no_account(
    chromium: WebDriver, browser_stack: BrowserStack
) -> None:
    env = browser_stack
    # Given: the consent page X shows after /connect
    _open_consent_page(chromium, env)
    # When: the user clicks "Cancel"
    chromium.find_element(By.ID, "deny").click()
    # Then: X sends the browser back with error=access_denied and the callback shows its 403 page
    _wait_for_text(chromium, "You cancelled the authorization on X")
    assert chromium.current_url.startswith(f"{env.gateway.url}/callback?")
    assert "error=access_denied" in chromium.current_url
    assert _navigation_status(chromium) == 403
    assert chromium.find_element(By.TAG_NAME, "h1").text == "Not connected"
    assert env.served.answers("CallbackFunction")[0]["statusCode"] == 403
    # and nothing was connected: no account item, no token ever asked of X
    assert _account_item(env) is None
    items = env.stack.client("dynamodb").scan(TableName=env.stack.resources.table_name)["Items"]
    assert not [i for i in items if i["pk"]["S"].startswith("account#")]
    assert env.sandbox.requests_to("token") == 0
