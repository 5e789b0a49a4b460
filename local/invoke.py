"""`make invoke EVENT=events/….json`: run a function in-process against the running `make local`,
the way `sam local invoke -e` runs it in a container."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from local.lambda_context import LocalContext
from local.serve import STATE_FILE
from local.stack import handler_module

_FUNCTION_BY_EVENT = {"connect.json": "AuthorizeFunction", "callback.json": "CallbackFunction"}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: make invoke EVENT=events/fetch-one.json [FUNCTION=FetchFunction]", file=sys.stderr)
        return 2
    if not STATE_FILE.exists():
        print("no local stack is running: start `make local` in another terminal first", file=sys.stderr)
        return 1
    path = Path(argv[1])
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"cannot read {path}: {exc}", file=sys.stderr)
        return 2
    function = os.environ.get("FUNCTION") or _FUNCTION_BY_EVENT.get(path.name, "FetchFunction")
    os.environ.update(json.loads(STATE_FILE.read_text(encoding="utf-8"))["environment"])
    result = handler_module(function).lambda_handler(event, LocalContext(function_name=function))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
