"""Scale on paper: one scheduled run's duration and AWS cost for 1 to 100,000 accounts (X's bill
for the same reads is bench/bill.py's, and far larger).

Counts come from the call-count section (measured in this run); sizes from template.yaml; prices
and latencies are the stated constants below. Nothing here is measured against AWS or X.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bench.calls import CallsResult, Scenario
from local.template import load, resource
from xmetrics.services.tokens import REFRESH_MARGIN_SECONDS

ACCOUNTS = (1, 100, 10_000, 100_000)

# us-east-1 list prices (AWS pricing pages as of November 2026; unchanged since the
# DynamoDB on-demand cut of November 2024). Free tiers and monthly fixed fees left out.
PRICES_AS_OF = (
    "AWS list prices as stated on 2026-11-29 (not fetched at run time: check the pricing pages before "
    "budgeting); free tiers and fixed monthly fees (KMS key, secret, alarms) excluded"
)
LAMBDA_ARM_GB_SECOND = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1_000_000
DYNAMODB_WRU = 0.625 / 1_000_000
DYNAMODB_RRU = 0.125 / 1_000_000
S3_PUT = 0.005 / 1_000
KMS_REQUEST = 0.03 / 10_000
SQS_REQUEST = 0.40 / 1_000_000
SECRETS_REQUEST = 0.05 / 10_000

# X facts (shared/x-api/README.md).
X_APP_LIMIT = 10_000  # timeline requests per 15 minutes per app
X_USER_LIMIT = 900  # per user
X_WINDOW = 900.0
X_TOKEN_TTL = 7200
X_MAX_PAGES = 32

# Assumptions (not measurable here): round trips from Lambda in us-east-1.
X_PAGE_SECONDS = 0.5  # one 100-post timeline page with metrics and media expansion, typical
X_PAGE_FAST_SECONDS = 0.3  # a fast page: what the concurrency recommendation must survive
X_TOKEN_SECONDS = 0.3
AWS_CALL_SECONDS = 0.01
# Lambda gives a function one vCPU at 1,769 MB; CPU-bound work at 256 MB runs this much slower.
FULL_VCPU_MB = 1769
# A run's first read (store.get_account_and_cap) is one BatchGetItem of two keys: the account and
# X's usage-cap marker, each billed as a strongly consistent read (the marker even when absent).
BATCH_GET_KEYS = 2


@dataclass(frozen=True)
class Template:
    fetch_memory_mb: int
    batch_size: int
    concurrency: int
    schedule_seconds: int

    @classmethod
    def read(cls) -> Template:
        template = load()
        glob = template.get("Globals", {}).get("Function", {})
        fetch = resource(template, "FetchFunction")["Properties"]
        queue = fetch["Events"]["Queue"]["Properties"]
        params = template["Parameters"]
        return cls(
            fetch_memory_mb=int(fetch.get("MemorySize", glob.get("MemorySize", 128))),
            batch_size=int(queue.get("BatchSize", 10)),
            concurrency=int(params["FetchConcurrency"]["Default"]),
            schedule_seconds=_rate_seconds(str(params["ScheduleExpression"]["Default"])),
        )


def _rate_seconds(expression: str) -> int:
    found = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not found:
        return 3600  # a cron() schedule: assume hourly
    unit = {"minute": 60, "hour": 3600, "day": 86_400}[found.group(2).rstrip("s")]
    return int(found.group(1)) * unit


def refresh_share(schedule_seconds: int) -> float:
    """Share of runs that refresh: a token lives X_TOKEN_TTL and is refreshed inside the margin."""
    runs_per_token = math.floor((X_TOKEN_TTL - REFRESH_MARGIN_SECONDS) / schedule_seconds) + 1
    return 1.0 / runs_per_token


@dataclass(frozen=True)
class PerAccount:
    """What one account costs a run, weighted by how often a refresh is due (measured counts)."""

    pages: float
    dynamodb_reads: float
    dynamodb_writes: float
    kms: float
    s3_puts: float
    x_token: float
    aws_calls: float


def per_account(calls: CallsResult, pages: int, share: float) -> PerAccount:
    plain = _scenario(calls, "worker: no refresh", "warm")
    due = _scenario(calls, "worker: refresh due", "warm")

    def mix(op: str) -> float:
        return (1 - share) * plain.calls.aws[op] + share * due.calls.aws[op]

    reads = mix("dynamodb.GetItem") + BATCH_GET_KEYS * mix("dynamodb.BatchGetItem")
    writes = mix("dynamodb.UpdateItem") + mix("dynamodb.PutItem")
    aws = (1 - share) * sum(plain.calls.aws.values()) + share * sum(due.calls.aws.values())
    return PerAccount(
        pages=pages,
        dynamodb_reads=reads,
        dynamodb_writes=writes,
        kms=mix("kms.Decrypt"),
        s3_puts=mix("s3.PutObject"),
        x_token=share * due.calls.x["token"],
        aws_calls=aws - mix("secrets-manager.GetSecretValue"),
    )


def _scenario(calls: CallsResult, name: str, container: str) -> Scenario:
    for s in calls.scenarios:
        if s.name == name and s.container == container:
            return s
    raise KeyError(name)


@dataclass(frozen=True)
class RunCost:
    accounts: int
    pages: float
    x_requests: float  # timeline pages + token refreshes
    invocations: int
    gb_seconds: float
    lambda_usd: float
    dynamodb_usd: float
    s3_usd: float
    kms_usd: float
    sqs_usd: float
    secrets_usd: float

    @property
    def total_usd(self) -> float:
        return (
            self.lambda_usd + self.dynamodb_usd + self.s3_usd + self.kms_usd + self.sqs_usd + self.secrets_usd
        )


@dataclass(frozen=True)
class Wall:
    seconds: float
    x_bound: bool  # the X app limit, not the workers, sets the pace
    fits: bool  # done before the next scheduled run starts


@dataclass(frozen=True)
class Model:
    template: Template
    refresh_share: float
    item_bytes: int
    cpu_per_page: float  # measured client CPU per page (fetch + join + serialize), this machine

    @property
    def cpu_slowdown(self) -> float:
        return FULL_VCPU_MB / self.template.fetch_memory_mb

    def page_seconds(self, x_seconds: float = X_PAGE_SECONDS) -> float:
        return x_seconds + self.cpu_per_page * self.cpu_slowdown

    def account_seconds(self, a: PerAccount) -> float:
        return a.pages * self.page_seconds() + a.aws_calls * AWS_CALL_SECONDS + a.x_token * X_TOKEN_SECONDS

    def dispatch_seconds(self, accounts: int) -> float:
        # A Scan of every account item (1 MB pages) and one SendMessageBatch per 10 accounts.
        scan_pages = math.ceil(accounts * self.item_bytes / 1_048_576)
        return (scan_pages + math.ceil(accounts / 10)) * AWS_CALL_SECONDS

    def run(self, accounts: int, a: PerAccount) -> RunCost:
        t = self.template
        scan_bytes = accounts * self.item_bytes
        send_batches = math.ceil(accounts / 10)
        invocations = math.ceil(accounts / t.batch_size)
        busy = self.dispatch_seconds(accounts) + accounts * self.account_seconds(a)
        gb_seconds = busy * t.fetch_memory_mb / 1024
        reads = accounts * a.dynamodb_reads * math.ceil(self.item_bytes / 4096)
        reads += 0.5 * math.ceil(scan_bytes / 4096)  # eventually consistent Scan
        writes = accounts * a.dynamodb_writes * math.ceil(self.item_bytes / 1024)
        # SQS: the app's sends, plus (estimated, Lambda's poller) one receive and one delete per batch.
        sqs = send_batches + 2 * invocations
        # The client secret is read once per worker container, on its first refresh.
        secrets = min(t.concurrency, invocations)
        pages = accounts * a.pages
        return RunCost(
            accounts=accounts,
            pages=pages,
            x_requests=pages + math.ceil(accounts * a.x_token),
            invocations=1 + invocations,
            gb_seconds=gb_seconds,
            lambda_usd=gb_seconds * LAMBDA_ARM_GB_SECOND + (1 + invocations) * LAMBDA_REQUEST,
            dynamodb_usd=reads * DYNAMODB_RRU + writes * DYNAMODB_WRU,
            s3_usd=accounts * a.s3_puts * S3_PUT,
            kms_usd=accounts * a.kms * KMS_REQUEST,
            sqs_usd=sqs * SQS_REQUEST,
            secrets_usd=secrets * SECRETS_REQUEST,
        )

    def wall(self, accounts: int, a: PerAccount, concurrency: int) -> Wall:
        """The run's duration: workers in parallel, unless X's app limit is slower."""
        workers = min(concurrency, math.ceil(accounts / self.template.batch_size))
        by_workers = self.dispatch_seconds(accounts) + accounts * self.account_seconds(a) / workers
        pages = accounts * a.pages
        by_x = 0.0 if pages <= X_APP_LIMIT else pages * X_WINDOW / X_APP_LIMIT
        seconds = max(by_workers, by_x)
        return Wall(seconds, by_x > by_workers, seconds <= self.template.schedule_seconds)

    def accounts_per_schedule_at(self, concurrency: int, a: PerAccount) -> int:
        """Accounts `concurrency` workers finish between two scheduled runs."""
        return int(concurrency * self.template.schedule_seconds / self.account_seconds(a))

    def max_safe_concurrency(self, x_seconds: float) -> int:
        """Most workers whose sequential page requests stay under the app limit at that latency."""
        return max(1, math.floor(X_APP_LIMIT / X_WINDOW * self.page_seconds(x_seconds)))

    def accounts_per_schedule(self, pages: float) -> int:
        """Accounts one run can cover before the X app limit stretches it past the schedule interval."""
        windows = self.template.schedule_seconds / X_WINDOW
        return int(X_APP_LIMIT * windows // pages)


@dataclass(frozen=True)
class Profile:
    name: str
    pages: int


PROFILES = (
    Profile("up to 100 posts in 30 days (1 page)", 1),
    Profile(f"X's reach, 3,200 posts ({X_MAX_PAGES} pages)", X_MAX_PAGES),
)


@dataclass(frozen=True)
class Row:
    cost: RunCost
    now: Wall  # at the template's FetchConcurrency
    recommended: Wall


@dataclass(frozen=True)
class ScaleResult:
    model: Model
    rows: dict[str, list[Row]]
    per_account: dict[str, PerAccount]
    recommended_concurrency: int


def build(calls: CallsResult, cpu_per_page: float) -> ScaleResult:
    template = Template.read()
    share = refresh_share(template.schedule_seconds)
    model = Model(template, share, calls.account_item_bytes, cpu_per_page)
    recommended = model.max_safe_concurrency(X_PAGE_FAST_SECONDS)
    rows: dict[str, list[Row]] = {}
    accounts: dict[str, PerAccount] = {}
    for profile in PROFILES:
        a = accounts[profile.name] = per_account(calls, profile.pages, share)
        rows[profile.name] = [
            Row(model.run(n, a), model.wall(n, a, template.concurrency), model.wall(n, a, recommended))
            for n in ACCOUNTS
        ]
    return ScaleResult(model, rows, accounts, recommended)
