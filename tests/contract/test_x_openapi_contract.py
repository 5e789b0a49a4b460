"""Contract: what our client sends to X and what the X sandbox answers, against X's published OpenAPI.

The spec files are reference data beside the repository (`../shared/x-api/`, see its README); they
are read at test time, never copied in. v2.165 is the contract (the `tweet.fields` names our client
sends and X's docs describe); v2.167 renames fields, so it is only checked for the sandbox's
`repost_count` spelling. openapi-core resolves a request against the spec's server, so requests to
the sandbox are validated as if they had been sent to that server (`SentToX`).

openapi-core skips OAuth2 security schemes and ignores `discriminator` on v2.165's `Problem`; the
bearer header and each problem's own subtype schema are therefore checked here as well.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.deserializing.media_types.util import json_loads
from openapi_core.validation.schemas import oas30_read_schema_validators_factory
from requests.structures import CaseInsensitiveDict

import xmetrics.wiring
from local import flows
from local.stack import LocalStack, reset_handlers
from local.x_sandbox import XSandbox
from xmetrics.transport import USER_AGENT, Backoff, Response, Session
from xmetrics.x_api import EXPANSIONS, MEDIA_FIELDS, PAGE_SIZE, TWEET_FIELDS, XApi

# The OAuth2 security scheme is skipped with a UserWarning on every validation; the bearer header
# is asserted by `check_request` instead.
pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")

# X_API_SPEC_DIR lets a clone that does not sit beside shared/ (CI's, say) point at the specs.
SPEC_DIR = Path(
    os.environ.get("X_API_SPEC_DIR") or Path(__file__).resolve().parents[2].parent / "shared" / "x-api"
)
CONTRACT_SPEC = "openapi-v2.165.json"
RENAMED_SPEC = "openapi-v2.167.json"
OPERATIONS = {"/2/users/me", "/2/users/{id}/tweets"}
ADA = "1700000000000000001"  # the conftest sandbox's user: 25 posts over 25 days
GRACE = "1700000000000000002"  # 12 posts over 40 days: the older ones have no private metrics
PAGED = "1700000000000000003"  # 250 posts: three pages of 100
TYPED = "1700000000000000009"  # 60 posts: replies, quotes and reposts among them
TYPE_FIELDS = ("referenced_tweets", "in_reply_to_user_id", "conversation_id", "author_id")
PROFILE_FIELDS = "public_metrics,created_at,description,verified,profile_image_url"
CLIENT, SECRET, REDIRECT = "contract-client", "contract-secret", "https://app.example/callback"


def spec_path(name: str) -> Path:
    path = SPEC_DIR / name
    if path.is_file():
        return path
    reason = f"X's OpenAPI spec {path} is missing (the repository's sibling shared/x-api/, see its README)"
    if os.environ.get("CI") or os.environ.get("REQUIRE_CONTRACT") == "1":
        pytest.fail(f"{reason}; contract tests are required here (CI or REQUIRE_CONTRACT=1 is set)")
    pytest.skip(reason)


class SentToX(RequestsOpenAPIRequest):
    """A request sent to the sandbox, presented to openapi-core as sent to the spec's server."""

    def __init__(self, request: requests.PreparedRequest, host_url: str) -> None:
        super().__init__(request)
        self._x_host_url = host_url

    @property
    def host_url(self) -> str:
        return self._x_host_url


class Contract:
    def __init__(self, path: Path, *, check_spec: bool = True) -> None:
        self.spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        self.name = path.name
        # X answers errors as application/problem+json; openapi-core only knows plain JSON.
        config = Config(extra_media_type_deserializers={"application/problem+json": json_loads})
        if not check_spec:
            # v2.167 fails openapi-spec-validator (a duplicated enum item): load it unchecked.
            config.spec_validator_cls = None
        self.app = OpenAPI.from_dict(self.spec, config=config)
        self.host_url: str = self.spec["servers"][0]["url"]
        problem = self.spec["components"]["schemas"]["Problem"]
        self.problem_types: dict[str, str] = dict((problem.get("discriminator") or {}).get("mapping") or {})

    def request_errors(self, request: requests.PreparedRequest) -> list[str]:
        result = self.app.unmarshal_request(SentToX(request, self.host_url))
        return [_describe(error) for error in result.errors]

    def parameters(self, request: requests.PreparedRequest) -> dict[str, Any]:
        result = self.app.unmarshal_request(SentToX(request, self.host_url))
        result.raise_for_errors()
        return dict(result.parameters.query)

    def response_errors(self, response: requests.Response) -> list[str]:
        request = SentToX(response.request, self.host_url)
        result = self.app.unmarshal_response(request, RequestsOpenAPIResponse(response))
        errors = [_describe(error) for error in result.errors]
        if not errors and self.problem_types:
            errors = self._problem_subtype_errors(response)
        return errors

    def _problem_subtype_errors(self, response: requests.Response) -> list[str]:
        """v2.165's Problem maps `type` to a subtype schema; jsonschema never follows the mapping."""
        body = response.json()
        if response.headers.get("Content-Type", "").startswith("application/problem+json"):
            problems = [body]
        else:
            problems = list(body.get("errors") or []) if isinstance(body, dict) else []
        errors: list[str] = []
        for problem in problems:
            ref = self.problem_types.get(problem.get("type", ""))
            if ref is None:
                errors.append(f"problem type {problem.get('type')!r} is not one {self.name} documents")
                continue
            errors.extend(self._schema_errors(ref, problem))
        return errors

    def _schema_errors(self, ref: str, value: Any) -> list[str]:
        schema = self.app.spec
        for part in ref.removeprefix("#/").split("/"):
            schema = schema / part
        validator = oas30_read_schema_validators_factory.create(self.app.spec, schema)
        try:
            validator.validate(value)
        except Exception as exc:  # noqa: BLE001 - any validation error is a finding, reported by text
            return [f"{ref}: {_describe(exc)}"]
        return []


def _describe(error: BaseException) -> str:
    cause = error.__cause__
    details = getattr(cause, "schema_errors", None) or getattr(error, "schema_errors", None) or ()
    text = f"{type(error).__name__}: {error}"
    if details:
        text += " [" + "; ".join(getattr(d, "message", str(d)) for d in details) + "]"
    elif cause is not None:
        text += f" [{type(cause).__name__}: {cause}]"
    return text


@cache
def _contract(name: str, check_spec: bool) -> Contract:
    return Contract(spec_path(name), check_spec=check_spec)


@pytest.fixture
def x165() -> Contract:
    return _contract(CONTRACT_SPEC, True)


@pytest.fixture
def x167() -> Contract:
    return _contract(RENAMED_SPEC, False)


@dataclass
class Exchanges:
    """Every request the app's transport sent and the response it got, as requests objects (the
    shape openapi-core's requests adapters read)."""

    responses: list[requests.Response] = field(default_factory=list)

    def record(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, answer: Response
    ) -> None:
        response = requests.Response()
        response.request = requests.Request(method, url, headers=headers, data=body).prepare()
        response.status_code = answer.status_code
        response.reason = answer.reason
        response.headers = CaseInsensitiveDict(answer.headers)
        response._content = answer.content
        response.url = url
        self.responses.append(response)

    def session(self, pool_size: int = 10) -> Session:
        return RecordingSession(self, pool_size)

    def api(self) -> list[requests.Response]:
        """The X API v2 exchanges (not OAuth's token and revoke calls, which the spec does not hold)."""
        return [r for r in self.responses if not _path(r.request).startswith("/2/oauth2/")]


class RecordingSession(Session):
    def __init__(self, exchanges: Exchanges, pool_size: int) -> None:
        super().__init__(pool_size)
        self._exchanges = exchanges

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: tuple[float, float],
    ) -> Response:
        answer = super().request(method, url, headers=headers, body=body, timeout=timeout)
        self._exchanges.record(method, url, {"User-Agent": USER_AGENT, **headers}, body, answer)
        return answer


def _path(request: requests.PreparedRequest) -> str:
    return urlsplit(request.url or "").path


def _query(request: requests.PreparedRequest) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url or "").query, keep_blank_values=True).items()}


def _operation(request: requests.PreparedRequest) -> str:
    path = _path(request)
    if path == "/2/users/me":
        return "/2/users/me"
    if path.startswith("/2/users/") and path.endswith("/tweets"):
        return "/2/users/{id}/tweets"
    return path


def check_request(contract: Contract, request: requests.PreparedRequest) -> list[str]:
    errors = contract.request_errors(request)
    scheme, _, token = str(request.headers.get("Authorization", "")).partition(" ")
    if scheme != "Bearer" or not token.strip():
        errors.append("no `Authorization: Bearer <token>` header (the operation's security)")
    if _operation(request) not in OPERATIONS:
        errors.append(f"{request.method} {_path(request)} is not an operation this contract covers")
    return errors


def assert_all_valid(
    contract: Contract,
    exchanges: list[requests.Response],
    check: Callable[[Contract, requests.Response], list[str]],
) -> None:
    failures = {}
    for number, response in enumerate(exchanges):
        errors = check(contract, response)
        if errors:
            where = f"#{number} {response.request.method} {_path(response.request)} -> {response.status_code}"
            failures[where] = errors
    assert not failures, json.dumps(failures, indent=1)


# ----------------------------------------------------------------------------- requests (a)


@pytest.fixture
def recorded_stack(
    stack: LocalStack, sandbox: XSandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Exchanges]:
    """The local stack whose functions' HTTP sessions record every exchange with X."""
    exchanges = Exchanges()
    monkeypatch.setattr(xmetrics.wiring, "new_session", exchanges.session)
    reset_handlers()  # the next invocation builds its services, and so its sessions, anew
    sandbox.add_user("paged_author", user_id=PAGED, tweet_count=250, days=20)
    sandbox.login_as("paged_author")
    yield exchanges
    reset_handlers()  # no cached service may keep a recording session


def test_requests_the_functions_send_match_the_spec(
    x165: Contract, x167: Contract, stack: LocalStack, recorded_stack: Exchanges
) -> None:
    # When: the connect flow and a manual export, through the handlers
    assert flows.connect(stack)["statusCode"] == 200
    summary = stack.invoke("FetchFunction", {"user_id": PAGED})
    assert summary["status"] == "exported" and summary["pages"] == 3, summary
    sent = [r.request for r in recorded_stack.api()]
    # Then: the client asked for the user twice (the connect's, then the day's account snapshot
    # with its user.fields) and for three pages of the timeline
    by_operation = {op: [r for r in sent if _operation(r) == op] for op in OPERATIONS}
    me = by_operation["/2/users/me"]
    assert len(me) == 2 and x165.parameters(me[1])["user.fields"]
    tweets = by_operation["/2/users/{id}/tweets"]
    assert len(tweets) == 3
    # and every request is one both specs allow: path, parameters and their values, bearer token
    for contract in (x165, x167):
        assert_all_valid(contract, recorded_stack.api(), lambda c, r: check_request(c, r.request))
    # and the timeline requests carry the parameters the spec defines, as the spec reads them
    first, *rest = tweets
    params = x165.parameters(first)
    assert params["max_results"] == PAGE_SIZE
    assert params["tweet.fields"] == TWEET_FIELDS.split(",")
    assert params["media.fields"] == MEDIA_FIELDS.split(",")
    assert params["expansions"] == EXPANSIONS.split(",")
    assert isinstance(params["start_time"], datetime) and isinstance(params["end_time"], datetime)
    assert params["start_time"] < params["end_time"]
    assert "pagination_token" not in params
    assert all(x165.parameters(r)["pagination_token"] for r in rest)
    assert all(
        {**_query(r), "pagination_token": ""} == {**_query(first), "pagination_token": ""} for r in rest
    )


def _api_against(sandbox: XSandbox, exchanges: Exchanges) -> tuple[XApi, str]:
    """Our client on a recording session, with backoff pauses that do not sleep."""
    sandbox.register_client(CLIENT, SECRET, [REDIRECT])
    token = sandbox.issue_tokens("ada_metrics", CLIENT)["access_token"]
    backoff = Backoff(sleep=lambda _seconds: None, rand=lambda: 0.0)
    return XApi(sandbox.api_base_url, session=exchanges.session(), backoff=backoff), token


def test_requests_xapi_builds_for_any_window_and_retry_match_the_spec(
    x165: Contract, sandbox: XSandbox
) -> None:
    exchanges = Exchanges()
    api, token = _api_against(sandbox, exchanges)
    sandbox.add_user("paged_author", user_id=PAGED, tweet_count=250, days=20)
    now = datetime.now(UTC).replace(microsecond=123456)
    windows = [
        (now - timedelta(days=30), now),  # the export's usual window, microseconds dropped
        (now - timedelta(days=3), now - timedelta(days=2)),  # a narrow window in the past
        (datetime(2010, 11, 6, tzinfo=UTC), now),  # from the earliest start_time X allows
    ]
    # When: whole timelines over several windows, one of them paged, and one read retried after a
    # 429 and a 503
    api.me(token)
    for start, end in windows:
        for user in (ADA, PAGED):
            api.timeline(token, user, start_time=start, end_time=end, wait_budget=lambda: 3600.0)
    sandbox.inject("tweets", "rate_limit", reset_in=1)
    sandbox.inject("tweets", "status", status=503)
    api.timeline(token, ADA, start_time=windows[0][0], end_time=now, wait_budget=lambda: 3600.0)
    # Then: every request validates, and together they used every parameter the client sends
    assert_all_valid(x165, exchanges.api(), lambda c, r: check_request(c, r.request))
    sent = [r.request for r in exchanges.api()]
    queries = [_query(r) for r in sent]
    assert len(sent) >= 1 + len(windows) * 2 + 3
    for name in ("max_results", "start_time", "end_time", "pagination_token"):
        assert any(name in q for q in queries), name
    assert {r.status_code for r in exchanges.api()} >= {200, 429, 503}


def test_request_validation_bites(x165: Contract, sandbox: XSandbox) -> None:
    """Without this, a validator that accepted anything would make the tests above pass."""
    exchanges = Exchanges()
    api, token = _api_against(sandbox, exchanges)
    now = datetime.now(UTC)
    api.timeline(token, ADA, start_time=now - timedelta(days=30), end_time=now, wait_budget=lambda: 0.0)
    (sent,) = [r.request for r in exchanges.api()]
    assert check_request(x165, sent) == []

    def altered(**changes: str | None) -> requests.PreparedRequest:
        request = sent.copy()
        query = {k: v for k, v in {**_query(sent), **changes}.items() if v is not None}
        request.prepare_url(f"{sandbox.api_base_url}/2/users/{query.pop('id', ADA)}/tweets", query)
        return request

    cases: dict[str, tuple[requests.PreparedRequest, str]] = {
        "max_results above 100": (altered(max_results="500"), "max_results"),
        "max_results below 5": (altered(max_results="1"), "max_results"),
        "an unknown tweet field": (
            altered(**{"tweet.fields": TWEET_FIELDS + ",impressions"}),
            "tweet.fields",
        ),
        "a v2.167 expansion name": (altered(expansions="referenced_posts"), "expansions"),
        "a repeated media field": (altered(**{"media.fields": "type,type"}), "media.fields"),
        "a start_time that is no RFC 3339 date-time": (altered(start_time="2026-01-01 00:00"), "start_time"),
        # (an empty pagination_token is not a case: openapi-core's requests adapter drops blank values)
        "an exclude value X does not know": (altered(exclude="likes"), "exclude"),
        "a user id that is not numeric": (altered(id="ada_metrics"), "id"),
    }
    for case, (request, parameter) in cases.items():
        errors = check_request(x165, request)
        assert errors and parameter in errors[0], (case, errors)
    anonymous = sent.copy()
    del anonymous.headers["Authorization"]
    assert any("Bearer" in e for e in check_request(x165, anonymous))


# ----------------------------------------------------------------------------- responses (b)


@dataclass
class World:
    sandbox: XSandbox
    session: requests.Session
    tokens: dict[str, str]

    def get(self, path: str, token: str | None = "ada", **params: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens.get(token or '', token)}"} if token else {}
        return self.session.get(self.sandbox.url + path, params=params, headers=headers, timeout=10)

    def timeline(self, user_id: str = ADA, token: str | None = "ada", **params: str) -> requests.Response:
        query = {
            "tweet.fields": TWEET_FIELDS,
            "expansions": EXPANSIONS,
            "media.fields": MEDIA_FIELDS,
            "max_results": str(PAGE_SIZE),
            **params,
        }
        return self.get(f"/2/users/{user_id}/tweets", token, **query)


@pytest.fixture
def world(sandbox: XSandbox) -> World:
    sandbox.add_user("grace", user_id=GRACE, tweet_count=12, days=40)
    sandbox.register_client(CLIENT, SECRET, [REDIRECT])
    tokens = {
        "ada": sandbox.issue_tokens("ada_metrics", CLIENT)["access_token"],
        "grace": sandbox.issue_tokens("grace", CLIENT)["access_token"],
        "no_users_read": sandbox.issue_tokens("ada_metrics", CLIENT, scopes="tweet.read")["access_token"],
    }
    return World(sandbox, requests.Session(), tokens)


def _rate_limited(world: World, endpoint: str, call: Callable[[], requests.Response]) -> requests.Response:
    world.sandbox.rate_limits[endpoint] = 1
    assert call().status_code == 200
    return call()


def _last_page(world: World) -> requests.Response:
    page = world.timeline(max_results="10")
    while page.json().get("meta", {}).get("next_token"):
        page = world.timeline(max_results="10", pagination_token=page.json()["meta"]["next_token"])
    return page


def _faulted(world: World, kind: str, **params: Any) -> requests.Response:
    world.sandbox.inject("tweets", kind, **params)
    return world.timeline()


def _expired(world: World) -> requests.Response:
    world.sandbox.expire_access_tokens("ada_metrics")
    return world.get("/2/users/me")


def _usage_capped(world: World) -> requests.Response:
    world.sandbox.usage_capped = "usage_cap"
    return world.timeline()


def _revoked(world: World) -> requests.Response:
    answer = requests.post(
        world.sandbox.revoke_url, data={"token": world.tokens["ada"]}, auth=(CLIENT, SECRET), timeout=10
    )
    assert answer.status_code == 200
    return world.timeline()


def _typed(world: World, **params: str) -> requests.Response:
    """The timeline of an account with every type of post, with the fields that tell them apart."""
    if TYPED not in world.tokens:
        world.sandbox.add_user(
            "mixed_types",
            user_id=TYPED,
            tweet_count=60,
            days=25,
            reply_ratio=0.3,
            quote_ratio=0.15,
            repost_ratio=0.25,
        )
        world.tokens[TYPED] = world.sandbox.issue_tokens("mixed_types", CLIENT)["access_token"]
    fields = ",".join(dict.fromkeys([*TWEET_FIELDS.split(","), *TYPE_FIELDS]))
    return world.timeline(TYPED, TYPED, **{"tweet.fields": fields, **params})


def _switched(
    name: str, call: Callable[[World], requests.Response], value: bool = True
) -> Callable[[World], requests.Response]:
    def exchange(world: World) -> requests.Response:
        setattr(world.sandbox, name, value)
        return call(world)

    return exchange


# The sandbox's post types, exclusions, counts (grown, final) and profile fields: checked against both specs.
TYPED_SCENARIOS: dict[str, tuple[int, set[str], Callable[[World], requests.Response]]] = {
    "replies, quotes and reposts: reposts' field errors": (200, {"data", "errors", "meta"}, _typed),
    "exclude=retweets": (200, {"data", "meta"}, lambda w: _typed(w, exclude="retweets")),
    "exclude=retweets,replies, thinned pages": (
        200,
        {"data", "meta"},
        _switched("exclude_thins_pages", lambda w: _typed(w, exclude="retweets,replies", max_results="10")),
    ),
    "final counts, growth switched off": (
        200,
        {"data", "errors", "meta"},
        _switched("metrics_grow", _typed, value=False),
    ),
    "author expansion with user fields": (
        200,
        {"data", "includes"},
        lambda w: _typed(w, expansions="author_id", **{"user.fields": PROFILE_FIELDS}),
    ),
    "me with public_metrics and profile fields": (
        200,
        {"data"},
        lambda w: w.get("/2/users/me", **{"user.fields": PROFILE_FIELDS}),
    ),
}

# name -> (expected status, what must be in the body, the exchange)
SCENARIOS: dict[str, tuple[int, set[str], Callable[[World], requests.Response]]] = {
    "me": (200, {"data"}, lambda w: w.get("/2/users/me")),
    "me with user fields": (200, {"data"}, lambda w: w.get("/2/users/me", **{"user.fields": "created_at"})),
    "me with an invalid field": (400, {"errors"}, lambda w: w.get("/2/users/me", **{"user.fields": "x"})),
    "me without a token": (401, {"title"}, lambda w: w.get("/2/users/me", token=None)),
    "me with an expired token": (401, {"title"}, _expired),
    "me without users.read": (403, {"title"}, lambda w: w.get("/2/users/me", token="no_users_read")),
    "me rate limited": (429, {"title"}, lambda w: _rate_limited(w, "me", lambda: w.get("/2/users/me"))),
    "own posts, media and private metrics": (200, {"data", "includes", "meta"}, lambda w: w.timeline()),
    "first page with next_token": (200, {"data", "meta"}, lambda w: w.timeline(max_results="10")),
    "last page": (200, {"data", "meta"}, _last_page),
    "author expansion": (200, {"data", "includes"}, lambda w: w.timeline(expansions="author_id")),
    "posts older than 30 days: field errors": (200, {"data", "errors"}, lambda w: w.timeline(GRACE, "grace")),
    "someone else's private metrics: field errors": (200, {"data", "errors"}, lambda w: w.timeline(GRACE)),
    "an unknown user": (200, {"errors"}, lambda w: w.timeline("9999")),
    "an empty window": (200, {"meta"}, lambda w: w.timeline(end_time="2011-01-01T00:00:00Z")),
    "since_id and until_id": (
        200,
        {"meta"},
        lambda w: w.timeline(since_id="1", until_id="99999999999999999"),
    ),
    "partial error beside data": (200, {"data", "errors"}, lambda w: _faulted(w, "partial_error")),
    "invalid max_results": (400, {"errors"}, lambda w: w.timeline(max_results="500")),
    "invalid pagination_token": (400, {"errors"}, lambda w: w.timeline(pagination_token="zzzzzzzzz")),
    "invalid time window": (400, {"errors"}, lambda w: w.timeline(start_time="2009-01-01T00:00:00Z")),
    "no token": (401, {"title"}, lambda w: w.timeline(token=None)),
    "a revoked token": (401, {"title"}, _revoked),
    "rate limited by the window": (
        429,
        {"title"},
        lambda w: _rate_limited(w, "tweets", lambda: w.timeline()),
    ),
    "rate limited (fault)": (429, {"title"}, lambda w: _faulted(w, "rate_limit")),
    "usage cap exceeded": (429, {"title", "period", "scope"}, _usage_capped),
    "server error": (500, {"title"}, lambda w: _faulted(w, "status", status=500)),
    "unavailable": (503, {"title"}, lambda w: _faulted(w, "status", status=503)),
    **TYPED_SCENARIOS,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_responses_the_sandbox_serves_match_the_spec(x165: Contract, world: World, scenario: str) -> None:
    status, keys, exchange = SCENARIOS[scenario]
    response = exchange(world)
    assert response.status_code == status, response.text[:300]
    assert keys <= set(response.json()), response.text[:300]
    if status == 429:
        assert {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} <= set(
            h.lower() for h in response.headers
        )
    assert x165.response_errors(response) == []


def test_responses_to_the_functions_match_the_spec(
    x165: Contract, stack: LocalStack, recorded_stack: Exchanges
) -> None:
    assert flows.connect(stack)["statusCode"] == 200
    assert stack.invoke("FetchFunction", {"user_id": PAGED})["status"] == "exported"
    served = recorded_stack.api()
    assert len(served) == 5  # users/me, three pages, the account snapshot's users/me
    assert_all_valid(x165, served, lambda c, r: c.response_errors(r))
    assert sum(1 for r in served if "next_token" in r.json().get("meta", {})) == 2
    assert "followers_count" in served[-1].json()["data"]["public_metrics"]


def test_responses_to_the_functions_in_v2_167_names_match_v2_167(
    x167: Contract, stack: LocalStack, sandbox: XSandbox, recorded_stack: Exchanges
) -> None:
    """X may serve v2.167's names: what the functions are answered then is what v2.167 describes,
    and the export still reads it (post_count is exported as tweet_count)."""
    sandbox.metrics_spelling = "repost"
    sandbox.problem_base = "https://api.x.com/2/problems/"
    assert flows.connect(stack)["statusCode"] == 200
    summary = stack.invoke("FetchFunction", {"user_id": PAGED})
    assert summary["status"] == "exported" and summary["account"] == "exported", summary
    served = recorded_stack.api()
    assert len(served) == 5
    assert_all_valid(x167, served, lambda c, r: c.response_errors(r))
    (line,) = flows.read_export(stack, summary["account_key"])
    served_counts = served[-1].json()["data"]["public_metrics"]
    assert line["public_metrics"]["tweet_count"] == served_counts["post_count"]


def test_response_validation_bites(x165: Contract, world: World) -> None:
    """A response outside the contract must fail, or the scenarios above prove nothing."""
    # The sandbox's v2.167 spelling: v2.165 requires public_metrics.retweet_count
    world.sandbox.metrics_spelling = "repost"
    reposts = world.timeline()
    assert any("retweet_count" in e for e in x165.response_errors(reposts))
    world.sandbox.metrics_spelling = "retweet"
    # A plain-text error body: the spec has only JSON and problem+json
    world.sandbox.inject("tweets", "status", status=502, body="Bad Gateway")
    assert any("text/plain" in e for e in x165.response_errors(world.timeline()))
    # v2.167's problem type URIs are not ones v2.165 documents
    world.sandbox.problem_base = "https://api.x.com/2/problems/"
    assert any("is not one" in e for e in x165.response_errors(world.timeline(GRACE)))
    world.sandbox.problem_base = "https://api.twitter.com/2/problems/"
    # A partial error without what its subtype requires (jsonschema alone ignores the mapping)
    page = world.timeline(GRACE)
    assert x165.response_errors(page) == []
    body = page.json()
    del body["errors"][0]["field"]
    page._content = json.dumps(body).encode()
    assert any("FieldUnauthorizedProblem" in e and "field" in e for e in x165.response_errors(page))


def test_sandbox_repost_spelling_matches_v2_167(x165: Contract, x167: Contract, world: World) -> None:
    """X may serve v2.167's names (README): the sandbox's `repost` mode is what v2.167 describes."""
    world.sandbox.metrics_spelling = "repost"
    world.sandbox.problem_base = "https://api.x.com/2/problems/"
    pages = [world.timeline(), world.timeline(GRACE), world.timeline(max_results="10")]
    assert all(p.status_code == 200 for p in pages)
    assert any("repost_count" in t["public_metrics"] for t in pages[0].json()["data"])
    for page in pages:
        assert x167.response_errors(page) == []
        assert x165.response_errors(page) != []


@pytest.mark.parametrize("scenario", list(TYPED_SCENARIOS))
def test_typed_responses_in_v2_167_names_match_v2_167(
    x165: Contract, x167: Contract, world: World, scenario: str
) -> None:
    """Replies, quotes, reposts and the profile in the `repost` spelling (repost_count, post_count,
    referenced_posts): what v2.167 describes, and (public counts renamed) not what v2.165 does."""
    world.sandbox.metrics_spelling = "repost"
    world.sandbox.problem_base = "https://api.x.com/2/problems/"
    status, keys, exchange = TYPED_SCENARIOS[scenario]
    response = exchange(world)
    assert response.status_code == status, response.text[:300]
    assert keys <= set(response.json()), response.text[:300]
    assert x167.response_errors(response) == []
    assert x165.response_errors(response) != []


def _list_parameters(contract: Contract, operation: str) -> dict[str, list[str]]:
    """Each comma-separated list parameter of the operation, with every value its enum allows."""
    shared = contract.spec["components"]["parameters"]
    lists: dict[str, list[str]] = {}
    for parameter in contract.spec["paths"][operation]["get"]["parameters"]:
        if "$ref" in parameter:
            parameter = shared[parameter["$ref"].rsplit("/", 1)[-1]]
        enum = parameter.get("schema", {}).get("items", {}).get("enum")
        if parameter["in"] == "query" and enum:
            lists[parameter["name"]] = list(enum)
    return lists


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_sandbox_accepts_every_value_the_spec_allows(x165: Contract, world: World, operation: str) -> None:
    """The sandbox must not refuse what X documents, or it would fail a correct client."""
    lists = _list_parameters(x165, operation)
    assert "tweet.fields" in lists and "expansions" in lists
    path = "/2/users/me" if operation == "/2/users/me" else f"/2/users/{ADA}/tweets"
    for name, values in lists.items():
        response = world.get(path, **{name: ",".join(values)})
        assert response.status_code == 200, (name, response.text[:500])
        assert x165.response_errors(response) == [], name
    everything = world.get(path, **{name: ",".join(values) for name, values in lists.items()})
    assert everything.status_code == 200, everything.text[:500]
    assert x165.request_errors(everything.request) == []
    assert x165.response_errors(everything) == []
