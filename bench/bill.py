"""X's bill: the read tiers against reading the whole window every run, over a simulated week.

Accounts posting 3, 10 and 40 times a day are exported by the real fetch use case
(`build_fetch(...).export.run`, what FetchFunction runs for each account) at every simulated hour,
against moto's AWS and one X sandbox per account: X's own ledger (`billed_by_day()`) is then
exactly that account's bill, and the app's summaries (`billed`) are checked against it. The app
and the sandboxes read one simulated clock, set to each run's scheduled time before the run, so
posts appear, access tokens expire and rotate, and UTC days turn as they would.

Each rate is run three ways (PLANS): the default tiers in their steady state (connected a day
before the week), the default tiers in the week the account connects (its first run reads every
tier), and `all`. Every account has 40 days of posts before the week (47 days generated with the
sandbox clock at the week's end, then the clock set back). Month figures come from the steady
state: a connect's full read happens once per account.

`python -m bench.bill` runs this section and the usage-cap one alone and prints them
(`--write` also puts them into bench/results.md in place of the previous ones).
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from bench import scale
from bench.calls import item_bytes
from bench.fixture import PHOTO_RATIO, POSTS_ONLY, VIDEO_RATIO, new_sandbox
from local import aws
from local.clock import SettableClock
from local.stack import CLIENT_ID, CLIENT_SECRET, EVENT_HOST, LocalStack
from local.x_sandbox import XSandbox
from xmetrics.config import FetchSettings
from xmetrics.crypto import PlainTokens, TokenCipher
from xmetrics.deadline import Deadline
from xmetrics.services.billing import PRICES
from xmetrics.services.tiers import ALL, DEFAULT_SPEC
from xmetrics.services.window import WINDOW, make_job
from xmetrics.store import Store
from xmetrics.timeutil import iso_z
from xmetrics.wiring import Clients, build_fetch, client_config

if TYPE_CHECKING:
    from bench.usage_cap import CapResult
    from xmetrics.wiring import FetchUseCases

RATES = (3, 10, 40)  # posts a day
MEDIA = f"{VIDEO_RATIO:.0%} of posts with a video, {PHOTO_RATIO:.0%} with one or two photos"
# A Monday, 00:00 UTC: every simulated day is a whole UTC day, as X's billing counts them.
WEEK_START = datetime(2026, 11, 2, tzinfo=UTC)
HISTORY_DAYS = 40  # days of posts before the week
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
WEEK_DAYS = 7
WARM_UP = DAY
START = WEEK_START - WARM_UP
RUNS = int((WEEK_DAYS * DAY + WARM_UP) / HOUR)
RATIO_TARGET = 0.40
# X caps pay-per-use apps at 2 million post reads a month (shared/x-api/README.md).
X_MONTHLY_CAP = 2_000_000
# The cap counts a calendar month: the longest one decides whether a steady load fits under it.
CAP_MONTH_DAYS = 31
# A month of bills and AWS costs: 30 days, as section 4's "total / 30 days".
MONTH_DAYS = 30
FLEET = (10, 100, 1_000)
# Per-account AWS cost per month is quoted in a fleet this big (fixed costs per run shared out).
COST_FLEET = 1_000
# Client CPU per 100-post page when the throughput section did not run (its last measurement).
DEFAULT_CPU_PER_PAGE = 0.002
YOUNG = timedelta(hours=48)
DAILY_OLDEST = timedelta(days=7)
WEEKLY_GAP = timedelta(days=7)


@dataclass(frozen=True)
class Plan:
    """How an account is read, and since when it is connected."""

    key: str
    policy: str  # REFRESH_TIERS
    connected: datetime
    label: str


TIERS, NEW, EVERY_RUN = "tiers", "new", "all"
PLANS = (
    # Connected a day before the week: the connect run's full read falls the day before, and the
    # week holds exactly one read of the 7-30 d tier, as any 7 whole days do.
    Plan(TIERS, DEFAULT_SPEC, WEEK_START - WARM_UP, f"`{DEFAULT_SPEC}` (default), steady state"),
    # Connected at the week's first run, which reads every tier.
    Plan(NEW, DEFAULT_SPEC, WEEK_START, f"`{DEFAULT_SPEC}`, the week the account connects"),
    Plan(EVERY_RUN, ALL, WEEK_START, "`all`: the whole window every run"),
)
PLAN = {p.key: p for p in PLANS}


class Recorder:
    """Telemetry for the use cases: metrics summed, warnings kept, info lines dropped."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.warnings: list[str] = []

    def count(self, name: str, value: float = 1, unit: str = "Count") -> None:
        self.metrics[name] = self.metrics.get(name, 0.0) + value

    def info(self, message: str, **fields: Any) -> None:
        pass

    def warning(self, message: str, **fields: Any) -> None:
        self.warnings.append(message)


class AwsCounter:
    """Counts the AWS operations of the clients it makes, into whichever Counter is current."""

    def __init__(self) -> None:
        import botocore.session

        self.current: Counter[str] | None = None
        self._session = botocore.session.get_session()
        self._session.register("before-call", self._on_call)

    def _on_call(self, event_name: str, **kwargs: Any) -> None:
        if self.current is not None:
            _, service, operation = event_name.split(".", 2)
            self.current[f"{service}.{operation}"] += 1

    def clients(self) -> Clients:
        return Clients(lambda service: self._session.create_client(service, config=client_config(service)))


@dataclass(frozen=True)
class Run:
    at: datetime
    status: str
    pages: int
    billed_posts: int
    billed_media: int
    refreshed: bool
    tiers: tuple[str, ...]
    ids: frozenset[str]  # what the run's S3 object holds


@dataclass(frozen=True)
class Rule:
    name: str
    checked: int
    missed: int
    detail: str

    @property
    def ok(self) -> bool:
        return self.missed == 0 and self.checked > 0


@dataclass
class Week:
    """One account's seven UTC days of runs."""

    days: list[str]
    runs: list[Run]
    x_billed: dict[str, dict[str, int]]  # the sandbox's ledger, by UTC day
    app_billed: dict[str, dict[str, int]]  # the summaries' `billed`, by the snapshot's UTC day
    timeline_calls: dict[str, int]
    token_calls: int
    aws: Counter[str]

    def _per_day(self, source: dict[str, dict[str, int]], kind: str) -> float:
        return sum(source.get(day, {}).get(kind, 0) for day in self.days) / len(self.days)

    @property
    def posts_per_day(self) -> float:
        return self._per_day(self.x_billed, "posts")

    @property
    def media_per_day(self) -> float:
        return self._per_day(self.x_billed, "media")

    @property
    def users_per_day(self) -> float:
        return self._per_day(self.x_billed, "users")

    @property
    def app_posts_per_day(self) -> float:
        return self._per_day(self.app_billed, "posts")

    @property
    def app_media_per_day(self) -> float:
        return self._per_day(self.app_billed, "media")

    def disagreements(self) -> list[str]:
        """Days and kinds where the app's count differs from X's ledger."""
        found = []
        for day in self.days:
            for kind in ("posts", "media"):
                x, app = self.x_billed.get(day, {}).get(kind, 0), self.app_billed.get(day, {}).get(kind, 0)
                if x != app:
                    found.append(f"{day} {kind}: app {app}, X {x}")
        return found

    @property
    def calls_per_day(self) -> float:
        return sum(self.timeline_calls.get(day, 0) for day in self.days) / len(self.days)

    @property
    def peak_calls_per_run(self) -> int:
        return max(r.pages for r in self.runs)

    @property
    def x_usd_per_day(self) -> float:
        return (
            self.posts_per_day * PRICES.post
            + self.media_per_day * PRICES.media
            + self.users_per_day * PRICES.user
        )

    def per_account(self) -> scale.PerAccount:
        """What one run of this account asked of AWS and X, averaged over the week (measured)."""
        n, a = len(self.runs), self.aws

        def ops(*names: str) -> float:
            return sum(a[name] for name in names) / n

        return scale.PerAccount(
            pages=sum(r.pages for r in self.runs) / n,
            dynamodb_reads=ops("dynamodb.GetItem") + scale.BATCH_GET_KEYS * ops("dynamodb.BatchGetItem"),
            dynamodb_writes=ops("dynamodb.UpdateItem", "dynamodb.PutItem", "dynamodb.DeleteItem"),
            kms=ops(*(k for k in a if k.startswith("kms."))),
            s3_puts=ops("s3.PutObject"),
            x_token=self.token_calls / n,
            aws_calls=sum(v for k, v in a.items() if not k.startswith("secretsmanager.")) / n,
        )


@dataclass
class Trace:
    """One account under one plan: its week, its connect day's bill and the freshness rules."""

    rate: int
    plan: Plan
    week: Week
    connect_day_posts: int  # X's ledger on the day of the account's first run
    rules: list[Rule]
    statuses: Counter[str]
    weekly_read_days: list[str]  # UTC days a run read the 7-30 d tier
    runs: int


@dataclass
class SimResult:
    traces: dict[tuple[int, str], Trace]
    seconds: float
    item_bytes: int

    def trace(self, rate: int, plan: str) -> Trace:
        return self.traces[(rate, plan)]

    def ratio(self, rate: int, plan: str = TIERS) -> float:
        every = self.trace(rate, EVERY_RUN).week.posts_per_day
        return self.trace(rate, plan).week.posts_per_day / every


@dataclass
class _Account:
    rate: int
    plan: Plan
    username: str
    user_id: str
    sandbox: XSandbox
    use: FetchUseCases
    posts: list[tuple[float, str]]  # (created_at epoch, id), oldest first
    runs: list[Run] = field(default_factory=list)
    aws: list[Counter[str]] = field(default_factory=list)  # one per run


def _seed(stack: LocalStack, account: _Account, clock: SettableClock) -> None:
    """What a finished /callback leaves behind, written directly: tokens minted by the sandbox."""
    answer = account.sandbox.issue_tokens(account.username, CLIENT_ID)
    cipher = TokenCipher(stack.client("kms"), stack.resources.key_id)
    key = cipher.new_data_key(account.user_id)
    sealed = cipher.seal(account.user_id, key, PlainTokens(answer["access_token"], answer["refresh_token"]))
    Store(stack.client("dynamodb"), stack.resources.table_name).save_connection(
        user_id=account.user_id,
        username=account.username,
        sealed=sealed,
        access_expires_at=clock() + int(answer["expires_in"]),
        scope=answer["scope"],
        now_iso=iso_z(datetime.fromtimestamp(clock(), UTC)),
    )


def _account(stack: LocalStack, clock: SettableClock, counter: AwsCounter, rate: int, index: int) -> _Account:
    plan = PLANS[index]
    sandbox = new_sandbox(clock).start()
    sandbox.register_client(CLIENT_ID, CLIENT_SECRET, [f"https://{EVENT_HOST}/callback"])
    username, user_id = f"bill{rate}_{plan.key}", f"17{index + 1}0000000000000{rate:03d}"
    # Same seed, same index in its sandbox: every plan of a rate reads the very same posts.
    clock.at(WEEK_START + WEEK_DAYS * DAY)
    user = sandbox.add_user(
        username,
        user_id=user_id,
        tweet_count=rate * (HISTORY_DAYS + WEEK_DAYS),
        days=HISTORY_DAYS + WEEK_DAYS,
        video_ratio=VIDEO_RATIO,
        photo_ratio=PHOTO_RATIO,
        **POSTS_ONLY,
    )
    posts = sorted((_epoch(t["created_at"]), str(t["id"])) for t in user.tweets)
    clock.at(plan.connected)
    env = {
        **stack.environment,
        "X_API_BASE_URL": sandbox.api_base_url,
        "X_TOKEN_URL": sandbox.token_url,
        "X_AUTHORIZE_URL": sandbox.authorize_url,
        "REFRESH_TIERS": plan.policy,
        "DAILY_READ_BUDGET": "0",
    }
    use = build_fetch(FetchSettings.from_env(env), counter.clients(), Recorder(), clock=clock)
    account = _Account(rate, plan, username, user_id, sandbox, use, posts)
    _seed(stack, account, clock)
    return account


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _day(moment: datetime | float) -> str:
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return f"{moment:%Y-%m-%d}"


def _exported_ids(s3: Any, bucket: str, key: str | None) -> frozenset[str]:
    if key is None:
        return frozenset()
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return frozenset(str(orjson.loads(line)["tweet_id"]) for line in body.splitlines() if line)


def _run_once(account: _Account, at: datetime, counter: AwsCounter, s3: Any, bucket: str) -> None:
    ops: Counter[str] = Counter()
    counter.current = ops
    try:
        summary = account.use.export.run(make_job(account.user_id, at), Deadline(lambda: 300.0))
    finally:
        counter.current = None
    account.aws.append(ops)
    account.runs.append(
        Run(
            at=at,
            status=summary.status,
            pages=summary.pages,
            billed_posts=summary.billed.get("posts", 0),
            billed_media=summary.billed.get("media", 0),
            refreshed=summary.refreshed,
            tiers=tuple(summary.tiers),
            ids=_exported_ids(s3, bucket, summary.key if summary.status == "exported" else None),
        )
    )


def simulate(progress: Callable[[str], None]) -> SimResult:
    started = time.perf_counter()
    clock = SettableClock(START)
    counter = AwsCounter()
    # moto keeps its state per process: a server of our own, reset, so no earlier stack's
    # resources are in the way.
    moto = aws.MotoServer().start()
    stack = LocalStack.start(moto=moto, extra_env={"LOG_LEVEL": "WARNING"})
    accounts: list[_Account] = []
    try:
        for rate in RATES:
            for index in range(len(PLANS)):
                accounts.append(_account(stack, clock, counter, rate, index))
        s3, bucket = stack.client("s3"), stack.resources.bucket_name
        for hour in range(RUNS):
            at = START + hour * HOUR
            clock.at(at)
            for account in accounts:
                if at >= account.plan.connected:
                    _run_once(account, at, counter, s3, bucket)
            if hour % 24 == 23:
                progress(f"bill: simulated day {hour // 24 + 1} of {RUNS // 24} ({len(accounts)} accounts)")
        table = stack.client("dynamodb")
        size = max(
            item_bytes(
                table.get_item(
                    TableName=stack.resources.table_name,
                    Key={"pk": {"S": f"account#{a.user_id}"}},
                    ConsistentRead=True,
                )["Item"]
            )
            for a in accounts
        )
        traces = {(a.rate, a.plan.key): _trace(a) for a in accounts}
    finally:
        for account in accounts:
            account.sandbox.stop()
        stack.stop()
        moto.stop()
    return SimResult(traces, time.perf_counter() - started, size)


def _trace(account: _Account) -> Trace:
    sandbox = account.sandbox
    x_billed = sandbox.billed_by_day()
    app_billed: dict[str, dict[str, int]] = {}
    for run in account.runs:
        day = app_billed.setdefault(_day(run.at), {"posts": 0, "media": 0})
        day["posts"] += run.billed_posts
        day["media"] += run.billed_media
    calls: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    for entry in sandbox.request_log:
        if entry.endpoint == "tweets":
            calls[_day(entry.at)] += 1
        elif entry.endpoint == "token":
            tokens[_day(entry.at)] += 1
    days = [_day(WEEK_START + d * DAY) for d in range(WEEK_DAYS)]
    aws: Counter[str] = Counter()
    for run, ops in zip(account.runs, account.aws, strict=True):
        if _day(run.at) in days:
            aws.update(ops)
    week = Week(
        days=days,
        runs=[r for r in account.runs if _day(r.at) in days],
        x_billed={d: x_billed.get(d, {}) for d in days},
        app_billed={d: app_billed.get(d, {}) for d in days},
        timeline_calls={d: calls[d] for d in days},
        token_calls=sum(tokens[d] for d in days),
        aws=aws,
    )
    return Trace(
        rate=account.rate,
        plan=account.plan,
        week=week,
        connect_day_posts=x_billed.get(_day(account.plan.connected), {}).get("posts", 0),
        rules=freshness(account.posts, account.runs),
        statuses=Counter(r.status for r in account.runs),
        weekly_read_days=sorted(
            {_day(r.at) for r in account.runs if any(t.endswith("-30d") for t in r.tiers)}
        ),
        runs=len(account.runs),
    )


# ------------------------------------------------------------------------------- freshness

Between = Callable[[float, float], list[tuple[float, str]]]


def freshness(posts: list[tuple[float, str]], runs: list[Run]) -> list[Rule]:
    """The default tiers' three promises, checked on what each run's S3 object holds."""
    created = [c for c, _ in posts]

    def between(low: float, high: float) -> list[tuple[float, str]]:
        """Posts created in (low, high)."""
        return posts[bisect.bisect_right(created, low) : bisect.bisect_left(created, high)]

    return [_young(runs, between), _daily(runs, between), _weekly(runs, between)]


def _young(runs: list[Run], between: Between) -> Rule:
    """Every post younger than 48 h is in every hourly export. Younger means created after
    snapshot - 48 h and before the snapshot (a run's window ends at its snapshot, exclusive)."""
    checked = missed = 0
    first_miss = ""
    for run in runs:
        t = run.at.timestamp()
        young = between(t - YOUNG.total_seconds(), t)
        lost = [i for _, i in young if i not in run.ids]
        checked, missed = checked + len(young), missed + len(lost)
        if lost and not first_miss:
            first_miss = f"; first miss: {len(lost)} posts at {iso_z(run.at)}"
    return Rule(
        "younger than 48 h: in every hourly export",
        checked,
        missed,
        f"{checked:,} (post, run) pairs over {len(runs)} runs{first_miss}",
    )


def _daily(runs: list[Run], between: Between) -> Rule:
    """Every post aged 48 h to 7 d at any run of a UTC day is in one of that day's exports."""
    by_day: dict[str, list[Run]] = {}
    for run in runs:
        by_day.setdefault(_day(run.at), []).append(run)
    checked = missed = 0
    first_miss = ""
    for day, day_runs in by_day.items():
        first, last = day_runs[0].at.timestamp(), day_runs[-1].at.timestamp()
        # age in [48 h, 7 d) at some run t of the day <=> created in (first - 7 d, last - 48 h]
        due = between(first - DAILY_OLDEST.total_seconds(), last - YOUNG.total_seconds() + 1)
        read = set().union(*(r.ids for r in day_runs))
        lost = [i for _, i in due if i not in read]
        checked, missed = checked + len(due), missed + len(lost)
        if lost and not first_miss:
            first_miss = f"; first miss: {len(lost)} posts on {day}"
    return Rule(
        "48 h to 7 d old: read at least once each UTC day",
        checked,
        missed,
        f"{checked:,} (post, day) pairs over {len(by_day)} days{first_miss}",
    )


def _weekly(runs: list[Run], between: Between) -> Rule:
    """Every post aged 7 d to 30 d (less the window's hour of margin) was read within the last
    7 days at every run while it is that old: no gap between two reads longer than 7 days."""
    last_read: dict[str, float] = {}
    checked = missed = 0
    longest = 0.0
    for run in runs:
        t = run.at.timestamp()
        last_read.update(dict.fromkeys(run.ids, t))
        for _, i in between(t - WINDOW.total_seconds(), t - DAILY_OLDEST.total_seconds() + 1):
            since = t - last_read.get(i, float("-inf"))
            checked += 1
            missed += since > WEEKLY_GAP.total_seconds()
            longest = max(longest, since)
    read = "a post never read" if longest == float("inf") else f"{longest / 3600:.0f} h"
    return Rule(
        "7 to 30 d old: read at least once in every 7 days",
        checked,
        missed,
        f"{checked:,} (post, run) pairs; longest time since a read {read}",
    )


# ------------------------------------------------------------------------------- cost


@dataclass(frozen=True)
class Cost:
    """One account for a month at one posting rate under one plan (its week x 30 days)."""

    rate: int
    plan: str
    posts_per_day: float
    media_per_day: float
    users_per_day: float
    x_usd: float
    aws_usd: float  # in a fleet of COST_FLEET accounts: per-run fixed costs shared out
    cap_accounts: int  # most accounts under X's monthly cap of post reads
    rate_limit_accounts: int  # most accounts X's app rate limit lets one hourly run serve
    per_account: scale.PerAccount

    @property
    def total_usd(self) -> float:
        return self.x_usd + self.aws_usd


@dataclass(frozen=True)
class FleetRow:
    accounts: int
    rate: int
    x_usd: dict[str, float]  # by plan, a month
    aws_usd: dict[str, float]
    over_cap: dict[str, bool]


@dataclass
class CostResult:
    model: scale.Model
    runs_per_month: float
    costs: dict[tuple[int, str], Cost]
    fleet: list[FleetRow]
    cpu_measured: bool

    def cost(self, rate: int, plan: str) -> Cost:
        return self.costs[(rate, plan)]


def costs(sim: SimResult, cpu_per_page: float | None = None) -> CostResult:
    template = scale.Template.read()
    model = scale.Model(
        template,
        scale.refresh_share(template.schedule_seconds),
        sim.item_bytes,
        DEFAULT_CPU_PER_PAGE if cpu_per_page is None else cpu_per_page,
    )
    runs_per_month = MONTH_DAYS * 86_400 / template.schedule_seconds
    found: dict[tuple[int, str], Cost] = {}
    for (rate, key), trace in sim.traces.items():
        week = trace.week
        a = week.per_account()
        found[(rate, key)] = Cost(
            rate=rate,
            plan=key,
            posts_per_day=week.posts_per_day,
            media_per_day=week.media_per_day,
            users_per_day=week.users_per_day,
            x_usd=week.x_usd_per_day * MONTH_DAYS,
            aws_usd=model.run(COST_FLEET, a).total_usd * runs_per_month / COST_FLEET,
            cap_accounts=int(X_MONTHLY_CAP // (week.posts_per_day * CAP_MONTH_DAYS)),
            rate_limit_accounts=model.accounts_per_schedule(week.peak_calls_per_run),
            per_account=a,
        )
    fleet = []
    for accounts in FLEET:
        for rate in RATES:
            x_usd, aws_usd, over = {}, {}, {}
            for key in (TIERS, EVERY_RUN):
                c = found[(rate, key)]
                x_usd[key] = c.x_usd * accounts
                aws_usd[key] = model.run(accounts, c.per_account).total_usd * runs_per_month
                over[key] = accounts > c.cap_accounts
            fleet.append(FleetRow(accounts, rate, x_usd, aws_usd, over))
    return CostResult(model, runs_per_month, found, fleet, cpu_per_page is not None)


# ------------------------------------------------------------------------------- the sections


@dataclass
class BillResult:
    sim: SimResult
    cost: CostResult
    cap: CapResult
    seconds: float


def measure(progress: Callable[[str], None], cpu_per_page: float | None = None) -> BillResult:
    from bench import usage_cap

    started = time.perf_counter()
    progress(f"bill: {RUNS} hourly runs, {len(RATES)} posting rates x {len(PLANS)} plans")
    sim = simulate(progress)
    progress(f"bill: simulated in {sim.seconds:.0f} s")
    for key in (TIERS, NEW):
        ratios = ", ".join(f"{r}/day {sim.ratio(r, key):.2f}x" for r in RATES)
        progress(f"bill: billed posts, default tiers / all ({PLAN[key].label}): {ratios}")
    for trace in sim.traces.values():
        verdicts = "; ".join(f"{'pass' if rule.ok else 'FAIL'} {rule.name}" for rule in trace.rules)
        ledger = "agrees" if not trace.week.disagreements() else "DIFFERS"
        progress(f"bill: {trace.rate}/day, {trace.plan.key}: {verdicts}; app's count vs X's ledger {ledger}")
    cap = usage_cap.measure(progress)
    return BillResult(sim, costs(sim, cpu_per_page), cap, time.perf_counter() - started)


def main() -> None:
    import sys

    from bench import report

    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[bench.bill {time.perf_counter() - started:6.1f}s] {message}", flush=True)

    result = measure(progress)
    text = report.bill_sections(result)
    if "--write" in sys.argv[1:]:
        report.splice_bill(text)
        progress("wrote sections 5-7 into bench/results.md")
    print()
    print(text)


if __name__ == "__main__":
    main()
