"""`make local`: the embedded stack in the foreground, for a person with a browser.

With X_CLIENT_ID (and X_CLIENT_SECRET for a confidential app) set, the functions talk to the
real X instead of the sandbox; register the printed callback URL at X first.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Any

from local.gateway import LocalGateway
from local.stack import LocalStack
from local.template import ROOT, load
from local.x_sandbox import XSandbox

STATE_FILE = ROOT / ".local-stack.json"


def real_x() -> dict[str, str]:
    """X's endpoints as a deploy gets them: the template's own parameter defaults."""
    parameters = load()["Parameters"]
    return {name: str(parameters[name]["Default"]) for name in ("XAuthorizeUrl", "XTokenUrl", "XApiBaseUrl")}


def main() -> None:
    port = int(os.environ.get("LOCAL_PORT", "3000"))
    client_id = os.environ.get("X_CLIENT_ID", "").strip()
    holder: dict[str, LocalStack] = {}

    def invoke(function: str, event: dict[str, Any]) -> Any:
        return holder["stack"].invoke(function, event)

    gateway = LocalGateway(invoke, port=port).start()
    callback = f"{gateway.url}/callback"
    sandbox: XSandbox | None = None
    if client_id:
        stack = LocalStack.start(
            client_id=client_id, client_secret=os.environ.get("X_CLIENT_SECRET") or None, x_urls=real_x()
        )
    else:
        sandbox = XSandbox(auto_consent=False).start()
        sandbox.add_user("ada_metrics", user_id="1700000000000000001", tweet_count=140, days=28)
        stack = LocalStack.start(sandbox=sandbox, redirect_uris=(callback,))
    holder["stack"] = stack
    STATE_FILE.write_text(json.dumps({"environment": stack.environment}, indent=1), encoding="utf-8")
    STATE_FILE.chmod(0o600)

    print("x-metrics-export local stack is running (Ctrl-C to stop)")
    print(f"  connect an account : open {gateway.url}/connect in your browser")
    if client_id:
        print(f"  X (real)           : register {callback} as a callback URL of your X app")
    else:
        print(f"  X sandbox          : {sandbox.url if sandbox else ''} (consent page as @ada_metrics)")
    print(
        f"  embedded AWS       : {stack.moto.endpoint}  (aws --endpoint-url {stack.moto.endpoint} "
        f"s3 ls s3://{stack.resources.bucket_name} --recursive)"
    )
    print("  fetch by hand      : make invoke EVENT=events/fetch-one.json")
    sys.stdout.flush()

    stop = threading.Event()
    # Both set explicitly: a shell that starts us in the background ignores SIGINT by default.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        print("\nstopping")
        STATE_FILE.unlink(missing_ok=True)
        gateway.stop()
        stack.stop()


if __name__ == "__main__":
    main()
