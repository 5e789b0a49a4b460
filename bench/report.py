"""results.md: a header naming the machine, a summary of the targets, then one section per figure."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import bill, scale, usage_cap
from bench.calls import CallsResult, Scenario
from bench.coldstart import ColdStartResult, Series
from bench.throughput import ClientRun, ThroughputResult
from xmetrics.services.tokens import REFRESH_MARGIN_SECONDS
from xmetrics.timeutil import iso_z

COLD_TARGET = 1.3
CPU_TARGET = 0.5
MEMORY_TARGET_MB = 128


@dataclass(frozen=True)
class Machine:
    date: str
    cpus: int
    cpu_model: str
    platform: str
    python: str
    revision: str


def prose(text: str) -> str:
    """One paragraph from an indented triple-quoted block."""
    return " ".join(text.split())


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def usd(value: float) -> str:
    if value <= 0:
        return "$0"
    decimals = max(2, 2 - math.floor(math.log10(value)))
    return f"${value:,.{decimals}f}"


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def render(
    machine: Machine,
    cold: ColdStartResult,
    calls: CallsResult,
    throughput: ThroughputResult,
    plan: scale.ScaleResult,
    charges: bill.BillResult,
    bench_seconds: float,
) -> str:
    header = [
        "# x-metrics-export benchmarks",
        "",
        f"- date: {machine.date}",
        f"- machine: {machine.cpus} CPUs ({machine.cpu_model}), {machine.platform}",
        f"- python: {machine.python}; code: {machine.revision}",
        "- stack: moto server + X sandbox on loopback, no added latency (`local/stack.py`)",
        "- sections 1-4: RefreshTiers `all` (every run reads the account's whole window: the heaviest"
        " run); sections 5-7: the default tiers, against `all`",
        f"- `python -m bench` took {bench_seconds:.0f} s",
        "",
        prose(
            """Every figure is a ratio or a count measured in this run against that stack, except
            sections 4 and 6, which are arithmetic on the measured counts with the prices and
            latencies they state."""
        ),
        "",
    ]
    sections = [
        _summary(cold, calls, throughput, charges),
        _cold_section(cold),
        _calls_section(calls),
        _throughput_section(throughput, cold),
        _scale_section(plan, charges),
        bill_sections(charges),
    ]
    return "\n".join(header + sections).rstrip() + "\n"


# --------------------------------------------------------------------------------- summary


def _summary(
    cold: ColdStartResult, calls: CallsResult, tp: ThroughputResult, charges: bill.BillResult
) -> str:
    base = cold.baseline.median("seconds")
    rows: list[list[object]] = []
    for series in [*cold.functions.values(), *cold.shipped.values(), *cold.compiled.values()]:
        ratio = series.median("seconds") / base
        rows.append(
            [f"cold start: {series.name}", f"<= {COLD_TARGET}x", f"{ratio:.2f}x", yes(ratio <= COLD_TARGET)]
        )
    for s in calls.scenarios:
        checks = s.checks()
        rows.append(
            [
                f"calls per account: {s.name} ({s.container})",
                "; ".join(c.target for c in checks),
                "; ".join(c.measured for c in checks),
                yes(all(c.ok for c in checks)),
            ]
        )
    rows.append(
        [
            "fetch CPU, ours / tweepy (3,200 posts)",
            f"<= {CPU_TARGET}x",
            f"{tp.ratio:.2f}x",
            yes(tp.ratio <= CPU_TARGET),
        ]
    )
    peak = cold.large_fetch.peak_rss_mb()
    rows.append(
        [
            "peak memory, 3,200-post account (whole FetchFunction process)",
            f"<= {MEMORY_TARGET_MB} MB",
            f"{peak:.0f} MB",
            yes(peak <= MEMORY_TARGET_MB),
        ]
    )
    same = tp.same_output
    rows.append(["JSONL identical to tweepy's", "identical", "identical" if same else "differs", yes(same)])
    rows += bill_targets(charges)
    return "\n".join(["## Targets", "", table(["figure", "target", "measured", "holds"], rows), ""])


# ------------------------------------------------------------------------------ cold start


def _cold_row(series: Series, base: float) -> list[object]:
    return [
        series.name,
        series.event,
        f"{series.median('seconds') * 1000:.0f}",
        f"{series.median('seconds') / base:.2f}x",
        f"{series.median('import_seconds') * 1000:.0f}",
        f"{series.median('call_seconds') * 1000:.0f}",
        f"{series.peak_rss_mb():.0f}",
        f"{series.ru_maxrss_mb():.0f}",
        series.outcomes(),
    ]


def _imports_table(cold: ColdStartResult) -> str:
    packages: list[str] = []
    for shares in cold.imports.values():
        packages += [s.package for s in shares if s.package not in packages]
    lookup = {fn: {s.package: s for s in shares} for fn, shares in cold.imports.items()}
    columns = [*cold.functions, "baseline"]

    def cell(fn: str, package: str) -> str:
        share = lookup[fn].get(package)
        if share is None:
            return "-"
        if fn == "baseline":
            return f"{share.at_import_ms:.0f}"
        return f"{share.at_import_ms:.0f} + {share.first_call_ms:.0f}"

    return table(["package", *columns], ([p, *(cell(fn, p) for fn in columns)] for p in packages))


def _above_clients(cold: ColdStartResult) -> str:
    parts = []
    for logical_id, reference in cold.references.items():
        ours, theirs = cold.compiled[logical_id].median("seconds"), reference.median("seconds")
        parts.append(f"{logical_id} {(ours - theirs) * 1000:+.0f} ms ({ours / theirs:.2f}x)")
    return ", ".join(parts)


def _cold_section(cold: ColdStartResult) -> str:
    base = cold.baseline.median("seconds")
    header = [
        "function",
        "event",
        "median ms",
        "ratio",
        "spawn -> handler imported ms",
        "first call ms",
        "peak RSS MB (VmHWM)",
        "ru_maxrss MB",
        "answers",
    ]
    rows = [_cold_row(cold.baseline, base)]
    for group in (cold.references, cold.functions, cold.shipped, cold.compiled):
        rows += [_cold_row(s, base) for s in group.values()]
    rows.append(_cold_row(cold.large_fetch, base))
    return "\n".join(
        [
            "## 1. Cold start",
            "",
            prose(
                f"""From spawning a fresh interpreter to its first handler call returning; median of
                {cold.runs} processes per row, all rows interleaved so drift on the machine touches
                them alike. Baseline: a fresh interpreter that runs `import boto3` and creates one
                DynamoDB client. Each function process imports its handler module and calls it once
                with the event shown, against the running stack, with the environment template.yaml
                gives it (LOG_LEVEL INFO, logs to /dev/null). The Callback event is a valid one:
                before each process the bench runs /connect and X's consent, so every child
                exchanges a live code (token, users/me, KMS data key, DynamoDB write)."""
            ),
            "",
            prose(
                """Rows *as shipped* run the code laid out as `sam build` ships it (layer sources
                and unpacked wheels, function code in its own directory, no `.pyc`: the python_pip
                workflow does not compile, and /opt and /var/task are read-only in Lambda, so every
                cold start compiles every module the layer gives it). Rows *as shipped +
                compileall* add the build step `sam build` runs (layers/common/Makefile: `python -m
                compileall --invalidation-mode unchecked-hash`): these are the deployed figures.
                The last row exports the 3,200-post account (3 processes), for memory."""
            ),
            "",
            prose(
                f"""Reference rows: bare boto3 creating the clients the function's run creates,
                and nothing else (no call, no app code). Above them, as shipped + compileall, the
                app adds {_above_clients(cold)}: its imports (Powertools, the app,
                cryptography where tokens are sealed or opened) and its round trips to AWS and X
                (section 2)."""
            ),
            "",
            prose(
                """Peak RSS is the child's VmHWM from /proc/self/status.
                `resource.getrusage().ru_maxrss` is shown beside it and is not usable here: Linux
                carries the forking parent's peak (the bench process, which hosts moto) across exec."""
            ),
            "",
            table(header, rows),
            "",
            prose(
                """Where the cold path goes: `python -X importtime`, self time per top-level package
                in ms (standard library folded into one row), *loaded by the handler module's
                import + loaded during its first call*: the app creates its botocore session and
                clients lazily, on first use. One process per column; importtime's own overhead
                inflates every number alike."""
            ),
            "",
            _imports_table(cold),
            "",
        ]
    )


# ---------------------------------------------------------------------------------- calls


def _calls_row(s: Scenario) -> list[object]:
    c = s.calls
    per = f" ({c.service('dynamodb') / s.accounts:.2f}/account)" if s.accounts > 1 else ""
    return [
        s.name,
        s.container,
        s.accounts,
        s.tweets or "-",
        "0" if s.name.startswith("dispatch") else f"{c.x['tweets']} / {s.expected_pages}",
        c.x["token"],
        c.x["me"],
        c.ops("dynamodb") + per,
        c.aws["s3.PutObject"],
        c.service("kms"),
        c.ops("sqs") if c.service("sqs") else "0",
        c.service("secrets-manager"),
        c.retries,
    ]


def _calls_section(calls: CallsResult) -> str:
    header = [
        "run",
        "container",
        "accounts",
        "posts",
        "X timeline pages / ceil(posts/100)",
        "X token",
        "X users/me",
        "DynamoDB",
        "S3 put",
        "KMS",
        "SQS",
        "Secrets Manager",
        "retries",
    ]
    dispatch = calls.scenarios[0]
    return "\n".join(
        [
            "## 2. Calls per account per run",
            "",
            prose(
                """AWS operations counted with botocore's `before-call` event (HTTP attempts with
                `before-send`; retries = attempts - operations), registered on boto3's default
                session, which `xmetrics.wiring.Clients` builds every client from; X requests from
                the sandbox's own request log. Only the handler invocations count: the bench's own
                queue receive/delete stands in for Lambda's poller and is left out. *cold* = a new
                container (handler caches cleared, fresh clients); *warm* = clients already built.
                Each worker run gets a new snapshot, since a redelivered snapshot whose export
                landed is skipped by design."""
            ),
            "",
            table(header, (_calls_row(s) for s in calls.scenarios)),
            "",
            prose(
                f"""The dispatch costs {dispatch.calls.service("dynamodb")} Scan page and
                {dispatch.calls.aws["sqs.SendMessageBatch"]} SendMessageBatch for
                {dispatch.accounts} accounts (one batch per 10) and no X request. Secrets Manager
                is read once per container, on its first refresh: the client credentials are needed
                only at the token endpoint. Measured sizes used in section 4: account item
                {calls.account_item_bytes} bytes (DynamoDB's size rules); export
                {calls.export_bytes_per_post:.0f} bytes per post."""
            ),
            "",
        ]
    )


# ----------------------------------------------------------------------------- throughput


def _client_row(c: ClientRun, base: float) -> list[object]:
    return [
        c.name,
        f"{c.cpu_median * 1000:.0f} ({min(c.cpu) * 1000:.0f}-{max(c.cpu) * 1000:.0f})",
        f"{c.cpu_median / base:.2f}x",
        f"{c.wall_median * 1000:.0f}",
        c.pages,
        c.posts,
        f"{c.bytes / 1e6:.2f}",
        f"{c.vm_hwm_kb / 1024:.0f}",
        f"{c.heap_peak_bytes / 2**20:.1f}",
    ]


def _throughput_section(tp: ThroughputResult, cold: ColdStartResult) -> str:
    header = [
        "client",
        "CPU ms median (min-max)",
        "vs tweepy",
        "wall ms",
        "pages",
        "posts",
        "JSONL MB",
        "process peak RSS MB",
        "Python heap peak MB",
    ]
    base = tp.tweepy.cpu_median
    served = ", ".join(f"{k} {v}" for k, v in sorted(tp.served.items()))
    return "\n".join(
        [
            "## 3. Throughput: fetch, join media, serialize 3,200 posts",
            "",
            prose(
                f"""The sandbox runs alone in its own process; each client runs in fresh
                interpreters, and `time.process_time()` brackets only the work: every page of the
                30-day window, media joined onto posts, the JSON-lines body built. Ours:
                `XApi.timeline` + `records.build` + `records.to_jsonl` (what FetchFunction runs
                between reading the token and the S3 put). tweepy {tp.tweepy_version} (its own venv
                in bench/.work): `Client.get_users_tweets` through `Paginator`, the same
                tweet.fields / expansions / media.fields, the same records, written with the
                standard library's `json`; its hard-coded api.twitter.com is rewritten to the
                sandbox by a `requests.Session` subclass, its only seam. One warm-up, then
                {tp.runs} timed runs in each of {tp.processes} alternating processes per client
                (medians over {tp.runs * tp.processes}); the heap peak from one more run under
                tracemalloc. Byte-identical bodies: {yes(tp.same_output)}. The sandbox served:
                {served}."""
            ),
            "",
            table(header, [_client_row(tp.ours, base), _client_row(tp.tweepy, base)]),
            "",
            prose(
                f"""A whole FetchFunction process exporting a 3,200-post account (section 1, last
                row) peaks at {cold.large_fetch.peak_rss_mb():.0f} MB of the function's
                {scale.Template.read().fetch_memory_mb} MB. Ours holds every page until the export
                is complete (no partial exports, by design), hence the larger heap than tweepy's
                page-at-a-time loop."""
            ),
            "",
        ]
    )


# ---------------------------------------------------------------------------------- scale


def _wall(w: scale.Wall) -> str:
    notes = (["X app limit"] if w.x_bound else []) + ([] if w.fits else ["**longer than the schedule**"])
    return duration(w.seconds) + (f" ({', '.join(notes)})" if notes else "")


def _inputs(plan: scale.ScaleResult) -> str:
    m = plan.model
    t = m.template
    prices = prose(
        f"""Lambda arm ${scale.LAMBDA_ARM_GB_SECOND:.10f}/GB-s + $0.20/M requests; DynamoDB
        on-demand $0.625/M WRU, $0.125/M RRU; S3 PUT $0.005/1,000; KMS $0.03/10,000; SQS
        $0.40/M; Secrets Manager $0.05/10,000"""
    )
    return table(
        ["input", "value", "source"],
        [
            ["FetchFunction memory", f"{t.fetch_memory_mb} MB, arm64", "template.yaml MemorySize"],
            ["SQS BatchSize, FetchConcurrency", f"{t.batch_size}, {t.concurrency}", "template.yaml"],
            ["schedule", f"every {t.schedule_seconds // 60} min", "template.yaml ScheduleExpression"],
            [
                "runs that refresh",
                f"{m.refresh_share:.0%}",
                f"token life {scale.X_TOKEN_TTL} s (X), refresh margin {REFRESH_MARGIN_SECONDS} s",
            ],
            ["calls per account", "warm worker rows of section 2, weighted by that share", "measured"],
            ["account item size", f"{m.item_bytes} B", "measured"],
            ["client CPU per page", f"{m.cpu_per_page * 1000:.1f} ms", "measured (section 3, this CPU)"],
            ["CPU slowdown at that memory", f"x{m.cpu_slowdown:.1f}", f"one vCPU at {scale.FULL_VCPU_MB} MB"],
            [
                "X page, token, AWS call latency",
                f"{scale.X_PAGE_SECONDS} s, {scale.X_TOKEN_SECONDS} s, {scale.AWS_CALL_SECONDS} s",
                "**assumption**",
            ],
            ["prices, us-east-1", prices, scale.PRICES_AS_OF],
        ],
    )


def _cost_table(plan: scale.ScaleResult, rows: list[scale.Row]) -> str:
    t = plan.model.template
    runs_per_month = 30 * 86_400 / t.schedule_seconds
    header = [
        "accounts",
        "X requests (pages + refreshes)",
        "invocations",
        "GB-s",
        "Lambda",
        "DynamoDB",
        "S3",
        "KMS",
        "SQS",
        "total / run",
        "total / 30 days",
        f"run wall @ {t.concurrency} workers (template)",
        f"@ {plan.recommended_concurrency} (recommended)",
    ]
    body = [
        [
            f"{r.cost.accounts:,}",
            f"{r.cost.x_requests:,.0f}",
            f"{r.cost.invocations:,}",
            f"{r.cost.gb_seconds:,.1f}",
            usd(r.cost.lambda_usd),
            usd(r.cost.dynamodb_usd),
            usd(r.cost.s3_usd),
            usd(r.cost.kms_usd),
            usd(r.cost.sqs_usd),
            usd(r.cost.total_usd),
            usd(r.cost.total_usd * runs_per_month),
            _wall(r.now),
            _wall(r.recommended),
        ]
        for r in rows
    ]
    return table(header, body)


def _scale_section(plan: scale.ScaleResult, charges: bill.BillResult) -> str:
    m = plan.model
    t = m.template
    rate = scale.X_APP_LIMIT / scale.X_WINDOW
    c = plan.recommended_concurrency
    latencies = (0.2, 0.3, 0.5, 1.0)
    safe = table(
        ["X page latency", *(f"{x} s" for x in latencies)],
        [["most workers under 10,000 requests / 15 min", *(m.max_safe_concurrency(x) for x in latencies)]],
    )
    tables: list[str] = []
    for profile, rows in plan.rows.items():
        tables += [f"Accounts with {profile}:", "", _cost_table(plan, rows), ""]
    one_page, full = (plan.per_account[p.name] for p in scale.PROFILES)
    covered = m.accounts_per_schedule_at(c, one_page), m.accounts_per_schedule_at(c, full)
    sim, cost = charges.sim, charges.cost
    caps = ", ".join(
        f"{cost.cost(r, bill.TIERS).cap_accounts:,} accounts posting {r} a day"
        f" ({cost.cost(r, bill.EVERY_RUN).cap_accounts:,} with `all`)"
        for r in bill.RATES
    )
    most_under_cap = max(c.cap_accounts for c in cost.costs.values())
    mid = bill.RATES[len(bill.RATES) // 2]
    mid_tiers, mid_all = cost.cost(mid, bill.TIERS), cost.cost(mid, bill.EVERY_RUN)
    calls = ", ".join(
        f"{sim.trace(r, bill.TIERS).week.calls_per_day:.0f}"
        f" ({sim.trace(r, bill.EVERY_RUN).week.calls_per_day:.0f})"
        for r in bill.RATES
    )
    return "\n".join(
        [
            "## 4. Scale on paper (AWS)",
            "",
            prose(
                """One scheduled run: the dispatch invocation (Scan + SendMessageBatch) and one
                worker invocation per SQS batch. Lambda GB-s = busy seconds x memory; busy seconds
                per account = pages x (X latency + CPU per page x slowdown) + AWS calls x their
                latency + a refresh's token call when due. DynamoDB units from the measured item
                size (a run's first read is a strongly consistent BatchGetItem of the account and
                the usage-cap marker, counted as two reads; UpdateItem per KB; eventually
                consistent Scan); SQS includes an estimate of the poller's receive + delete per
                batch (not the app's calls). Run wall time = busy time / workers, or the X app
                limit's pace when that is slower. **AWS only**: X's bill for the same runs is
                section 6, and it is the larger part by far."""
            ),
            "",
            _inputs(plan),
            "",
            *tables,
            prose(
                f"""These tables read every account's whole window on every run, as RefreshTiers
                `all` does. With the default tiers most runs read only the last 48 hours: X
                timeline requests per account-day, measured in section 5, are {calls} for
                {", ".join(str(r) for r in bill.RATES)} posts a day with the default tiers (with
                `all`)."""
            ),
            "",
            prose(
                f"""**X's rate limit paces a run; X's bill and its monthly cap bound the app.** A
                worker asks for one page at a time, so FetchConcurrency workers send about workers
                / (page latency + CPU) requests a second, against X's app limit of 10,000 / 900 s
                = {rate:.1f}/s: a run of at most 10,000 pages never meets it, a larger one is paced
                by it. Per {t.schedule_seconds // 60}-minute schedule that limit would let
                {m.accounts_per_schedule(1):,} one-page accounts through, or
                {m.accounts_per_schedule(scale.X_MAX_PAGES):,} at X's full reach. X's cap of
                {bill.X_MONTHLY_CAP:,} post reads a month stops the app long before: at most
                {caps} (section 6). And X bills those reads: an account posting {mid} a day costs
                {usd(mid_tiers.x_usd)} a month at X with the default tiers ({usd(mid_all.x_usd)}
                with `all`) against {usd(mid_tiers.aws_usd)} ({usd(mid_all.aws_usd)}) at AWS. The
                per-user limit ({scale.X_USER_LIMIT}/15 min) is never near: one account needs at
                most {scale.X_MAX_PAGES} pages a run."""
            ),
            "",
            safe,
            "",
            prose(
                f"""**Recommended FetchConcurrency default: {c}** (now {t.concurrency}). At {c}
                workers the app stays under X's app limit even when X answers a page in
                {scale.X_PAGE_FAST_SECONDS} s; {t.concurrency} workers stay under it only while pages
                take at least {t.concurrency / rate:.2f} s. The price: at {scale.X_PAGE_SECONDS} s a
                page, {c} workers finish about {covered[0]:,} one-page accounts (or {covered[1]:,}
                at full reach) between two runs; more accounts make the run outlast the schedule (the
                tables' flagged rows), though X's monthly cap stops the app at
                {most_under_cap:,} accounts or fewer at every posting rate of section 6. Lambda
                has billed INIT since 2025-08: about {t.concurrency} cold starts a run, a fraction
                of a GB-s, left out."""
            ),
            "",
        ]
    )


# ----------------------------------------------------------------------------------- X's bill

BILL_HEADING = "## 5. "


def bill_targets(charges: bill.BillResult) -> list[list[object]]:
    """The Targets rows of sections 5 and 7."""
    sim, cap = charges.sim, charges.cap
    rows: list[list[object]] = []
    for key, what in ((bill.TIERS, "steady state"), (bill.NEW, "the week an account connects")):
        ratios = [sim.ratio(r, key) for r in bill.RATES]
        rows.append(
            [
                f"X bill: billed posts, default tiers / `all`, {what} ({_rates()} posts a day)",
                f"<= {bill.RATIO_TARGET:.2f}x",
                ", ".join(f"{x:.2f}x" for x in ratios),
                yes(all(x <= bill.RATIO_TARGET for x in ratios)),
            ]
        )
    tiered = [t for t in sim.traces.values() if t.plan.policy != bill.ALL]
    for index, name in enumerate(_rule_names(sim)):
        ok = all(t.rules[index].ok for t in tiered)
        rows.append([f"freshness, default tiers: {name}", "every post", _held(tiered, index), yes(ok)])
    days = [(t, t.week.disagreements()) for t in sim.traces.values()]
    wrong = sum(len(d) for _, d in days)
    checked = sum(2 * len(t.week.days) for t, _ in days)
    rows.append(
        [
            "X bill: the app's billed count (summaries) vs X's ledger, per account-day",
            "equal",
            f"{checked - wrong} of {checked} (posts and media) equal",
            yes(wrong == 0),
        ]
    )
    capped = cap.round("capped mid-run")
    per_worker = list(capped.calls_after_flip.values())
    rows += [
        [
            "usage cap mid-run: X timeline calls after the cap, per worker",
            "<= 1",
            ", ".join(str(n) for n in per_worker) or "-",
            yes(bool(per_worker) and max(per_worker) <= 1),
        ],
        [
            "usage cap mid-run: the run's wall time after the cap",
            "seconds",
            f"{capped.seconds_after_flip:.2f} s",
            yes(capped.seconds_after_flip < 60),
        ],
        [
            # A batch item failure is a job handed back while another run probes X (status
            # failed, retried in a minute); a usage_capped answer must never be one.
            "usage cap: dead-letter queue; batch item failures beyond the jobs waiting on a probe",
            "0; 0",
            f"{cap.dead_letters}; {sum(r.batch_failures - r.statuses.get('failed', 0) for r in cap.rounds)}",
            yes(
                cap.dead_letters == 0
                and all(r.batch_failures == r.statuses.get("failed", 0) for r in cap.rounds)
            ),
        ],
        [
            "usage cap: a run within the hour, X timeline calls",
            "0",
            str(cap.round("30 min later").timeline_calls),
            yes(cap.round("30 min later").timeline_calls == 0),
        ],
    ]
    return rows


def _rates() -> str:
    return " / ".join(str(r) for r in bill.RATES)


def _rule_names(sim: bill.SimResult) -> list[str]:
    first = next(iter(sim.traces.values()))
    return [rule.name for rule in first.rules]


def _held(traces: Iterable[bill.Trace], index: int) -> str:
    rules = [t.rules[index] for t in traces]
    missed = sum(r.missed for r in rules)
    return f"{sum(r.checked for r in rules):,} checked, {missed:,} missed"


def bill_sections(charges: bill.BillResult) -> str:
    return "\n".join([_week_section(charges), _month_section(charges), _cap_section(charges)]).rstrip() + "\n"


def splice_bill(text: str, path: Path | None = None) -> None:
    """Put freshly measured sections 5-7 in place of the ones in results.md (`python -m bench.bill
    --write`); the rest of the file, the Targets table included, keeps its previous run's figures."""
    target = path or Path(__file__).resolve().parent / "results.md"
    current = target.read_text(encoding="utf-8")
    head = current.split("\n" + BILL_HEADING, 1)[0].rstrip() + "\n\n"
    target.write_text(head + text, encoding="utf-8")


def _week_section(charges: bill.BillResult) -> str:
    sim = charges.sim
    start, end = bill.WEEK_START, bill.WEEK_START + bill.WEEK_DAYS * bill.DAY - bill.HOUR
    header = [
        "posts a day",
        "read tiers",
        "billed posts / day (X's ledger)",
        "the app's count",
        "billed media / day (X; app)",
        "vs `all`",
        "X timeline calls / day",
        "pages a run: mean, max",
        "token refreshes / day",
    ]
    rows = []
    for rate in bill.RATES:
        for p in bill.PLANS:
            t = sim.trace(rate, p.key)
            w = t.week
            same = "" if not w.disagreements() else " (**differs**)"
            rows.append(
                [
                    rate,
                    p.label,
                    f"{w.posts_per_day:,.1f}",
                    f"{w.app_posts_per_day:,.1f}{same}",
                    f"{w.media_per_day:,.1f}; {w.app_media_per_day:,.1f}",
                    "1.00x" if p.key == bill.EVERY_RUN else f"**{sim.ratio(rate, p.key):.2f}x**",
                    f"{w.calls_per_day:,.1f}",
                    f"{sum(r.pages for r in w.runs) / len(w.runs):.2f}, {w.peak_calls_per_run}",
                    f"{w.token_calls / len(w.days):.1f}",
                ]
            )
    fresh_header = ["posts a day", "read tiers", *_rule_names(sim)]
    fresh_rows = []
    for rate in bill.RATES:
        for p in bill.PLANS:
            t = sim.trace(rate, p.key)
            fresh_rows.append(
                [rate, p.label, *(f"{'pass' if r.ok else '**FAIL**'}: {r.detail}" for r in t.rules)]
            )
    weekly = "; ".join(
        f"{rate} a day: {', '.join(sim.trace(rate, bill.TIERS).weekly_read_days)}" for rate in bill.RATES
    )
    connect = ", ".join(
        f"{sim.trace(r, bill.TIERS).connect_day_posts:,} ({sim.trace(r, bill.TIERS).week.posts_per_day:,.0f})"
        for r in bill.RATES
    )
    statuses = Counter[str]()
    for t in sim.traces.values():
        statuses.update(t.statuses)
    disagreements = [d for t in sim.traces.values() for d in t.week.disagreements()]
    agree = (
        "The app's count equals X's ledger on every account-day, posts and media."
        if not disagreements
        else f"The app's count differs from X's ledger on {len(disagreements)} account-days: "
        + "; ".join(disagreements[:5])
        + "."
    )
    return "\n".join(
        [
            "## 5. X's bill: read tiers over a simulated week",
            "",
            prose(
                f"""X bills every post it returns ($0.001 an owned read), every media item ($0.005)
                and user ($0.010), and a resource read again within the same UTC day is not billed
                again. Simulated: {bill.WEEK_DAYS} days of hourly scheduled runs,
                {iso_z(start)} to {iso_z(end)}, for accounts posting {_rates()} times a day, each
                with {bill.HISTORY_DAYS} days of posts before the week ({bill.MEDIA}).
                Every run is the real fetch use case (`build_fetch(...).export.run`, what
                FetchFunction's worker runs for an account) against moto's DynamoDB, KMS and S3 and
                an X sandbox of its own per account, on one simulated clock set to each run's
                scheduled time (posts appear, access tokens expire and rotate, UTC days turn).
                *Steady state*: the account connected a day before the week, so its connect run's
                full read falls outside it; *the week the account connects*: its first run is the
                week's first. Billed posts and media per account-day are X's own ledger
                (`billed_by_day()`), beside the app's count (the runs' summaries, `billed`). The
                section took {sim.seconds:.0f} s ({sum(t.runs for t in sim.traces.values()):,}
                account-runs, statuses: {_counts(statuses)})."""
            ),
            "",
            table(header, rows),
            "",
            prose(
                f"""{agree} A run reads its due tiers as one merged window, so the day's first run
                (00:00 UTC) reads 7 days back, or 30 on the account's weekly day, and every other
                run the last 48 hours (one request at these rates). Steady-state accounts read
                the 7-30 d tier on {weekly}: the first date is the connect run's full read, the
                second the first run of the 7th UTC day after it. The day an account connects
                costs a full read: billed posts that day (steady-state days) {connect} for
                {_rates()} posts a day. In the week an account connects its first run reads every
                tier and the 7-30 d tier comes back 7 UTC days later, after the week: that week
                holds one full read, as a steady week does, and bills the same."""
            ),
            "",
            prose(
                f"""Freshness, checked on the S3 objects the runs wrote (every export read back):
                *younger than 48 h* = created after the snapshot - 48 h and before the snapshot
                (a window ends at its snapshot, exclusive, so a post created in the snapshot's
                second is the next run's); *48 h to 7 d*, per UTC day, every post of that age at
                any of the day's runs; *7 to 30 d*, at every run, every post of that age (up to the
                window's {bill.WINDOW.days} days {bill.WINDOW.seconds // 3600} h: older posts are
                never read) was read within the last 7 days, over all of the account's runs (the
                steady-state accounts include their day before the week)."""
            ),
            "",
            table(fresh_header, fresh_rows),
            "",
        ]
    )


def _span(values: list[float]) -> str:
    low, high = f"{min(values):.0%}", f"{max(values):.0%}"
    return low if low == high else f"{low}-{high}"


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counter.items()))


def _month_section(charges: bill.BillResult) -> str:
    cost, sim = charges.cost, charges.sim
    m = cost.model
    prices = bill.PRICES
    header = [
        "posts a day",
        "read tiers",
        "billed posts / month",
        "billed media / month",
        "X / month",
        "AWS / month",
        "total / month",
        "X's share",
        f"most accounts under X's cap ({bill.X_MONTHLY_CAP:,} post reads / {bill.CAP_MONTH_DAYS}-day month)",
        "most accounts per hourly run under X's rate limit",
    ]
    rows = []
    for rate in bill.RATES:
        for key in (bill.TIERS, bill.EVERY_RUN):
            c = cost.cost(rate, key)
            rows.append(
                [
                    rate,
                    bill.PLAN[key].label,
                    f"{c.posts_per_day * bill.MONTH_DAYS:,.0f}",
                    f"{c.media_per_day * bill.MONTH_DAYS:,.0f}",
                    usd(c.x_usd),
                    usd(c.aws_usd),
                    usd(c.total_usd),
                    f"{c.x_usd / c.total_usd:.1%}",
                    f"**{c.cap_accounts:,}**",
                    f"{c.rate_limit_accounts:,}",
                ]
            )
    fleet_header = [
        "accounts",
        "posts a day",
        "X / month, default tiers",
        "X / month, `all`",
        "AWS / month, default tiers",
        "AWS / month, `all`",
        "total, default tiers",
        "total, `all`",
    ]

    def x_cell(row: bill.FleetRow, key: str) -> str:
        return usd(row.x_usd[key]) + (" (**over X's cap**)" if row.over_cap[key] else "")

    fleet_rows = [
        [
            f"{row.accounts:,}",
            row.rate,
            x_cell(row, bill.TIERS),
            x_cell(row, bill.EVERY_RUN),
            usd(row.aws_usd[bill.TIERS]),
            usd(row.aws_usd[bill.EVERY_RUN]),
            usd(row.x_usd[bill.TIERS] + row.aws_usd[bill.TIERS]),
            usd(row.x_usd[bill.EVERY_RUN] + row.aws_usd[bill.EVERY_RUN]),
        ]
        for row in cost.fleet
    ]
    cpu = (
        f"{m.cpu_per_page * 1000:.1f} ms (section 3, this run)"
        if cost.cpu_measured
        else f"{m.cpu_per_page * 1000:.1f} ms (assumed: section 3 did not run)"
    )
    users = sum(t.week.users_per_day for t in sim.traces.values())
    month = bill.MONTH_DAYS
    every = list(cost.costs.values())
    shares = [c.media_per_day * prices.media * month / c.x_usd for c in every]
    cheaper = [
        ((c.posts_per_day + c.media_per_day) * prices.post + c.users_per_day * prices.user) * month / c.x_usd
        for c in every
    ]
    media_share = _span(shares)
    cheapest = _span(cheaper)
    users_note = (
        f"""Not in these figures: DESIGN.md's daily account snapshot (`users/me` on each UTC
        day's first run) is not in the fetch yet (no run of the week was billed a user); at
        ${prices.user} a user read it will add {usd(prices.user * bill.MONTH_DAYS)} per
        account-month."""
        if users == 0
        else "Billed users (the daily account snapshot, `users/me`) are in the X column."
    )
    return "\n".join(
        [
            "## 6. Cost per account-month: X's bill + AWS",
            "",
            prose(
                f"""X: billed posts x ${prices.post} + billed media x ${prices.media} + billed users x
                ${prices.user}, the app's own price table (`xmetrics.services.billing.PRICES`, X's
                pay-per-use prices as of {prices.as_of}; media returned with owned reads priced at
                X's media read price, an upper bound), for {bill.MONTH_DAYS} days of section 5's
                steady-state week (X's ledger; a user read a day: the account snapshot's `users/me`). AWS:
                section 4's model (`scale.Model.run`, its prices and latencies) fed with this
                section's measured per-run counts (pages, DynamoDB, KMS, S3, token refreshes, from
                the same week) for one scheduled run of {bill.COST_FLEET:,} accounts, x
                {cost.runs_per_month:.0f} runs, / {bill.COST_FLEET:,}; account item
                {m.item_bytes} B (measured, read bookkeeping included); client CPU per page {cpu}.
                Accounts under X's cap: {bill.X_MONTHLY_CAP:,} / (billed posts a day x
                {bill.CAP_MONTH_DAYS}), for a whole app; under the rate limit: 10,000 requests /
                15 min x 4 / the account's heaviest run (its pages)."""
            ),
            "",
            table(header, rows),
            "",
            prose(
                f"""Media ({bill.MEDIA}) cost more than the posts themselves here: each is priced 5x
                a post, and they make {media_share} of X's bill at every rate and plan. Whether
                X bills media returned beside owned reads at its media price is not documented
                (the app's price table takes that upper bound): at $0.001, the owned-read price,
                X's bill would be {cheapest} of the figures above. An account that posts no
                media costs its billed posts x ${prices.post} only. {users_note}"""
            ),
            "",
            "X and AWS per month for a fleet (each account posting at the rate shown; cap: a 31-day month):",
            "",
            table(fleet_header, fleet_rows),
            "",
        ]
    )


def _cap_section(charges: bill.BillResult) -> str:
    cap = charges.cap
    header = [
        "scheduled run",
        "snapshot",
        "queued",
        "deliveries",
        "statuses",
        "X timeline calls (answers)",
        "after the cap: calls per worker (answers)",
        "after the cap: wall time",
        "dispatch to last account",
        "batch item failures",
    ]

    def answers(counter: Counter[int]) -> str:
        return ", ".join(f"{n}x {status}" for status, n in sorted(counter.items())) or "-"

    rows = [
        [
            r.name,
            iso_z(r.snapshot),
            r.queued,
            f"{len(r.handled)}" + (f" ({r.redelivered} twice)" if r.redelivered else ""),
            _counts(r.statuses),
            f"{r.timeline_calls} ({answers(r.timeline_statuses)})",
            (
                f"{', '.join(str(n) for n in r.calls_after_flip.values())} ({answers(r.statuses_after_flip)})"
                if r.flip_at is not None
                else "-"
            ),
            f"{r.seconds_after_flip:.2f} s" if r.flip_at is not None else "-",
            f"{r.seconds:.2f} s",
            r.batch_failures,
        ]
        for r in cap.rounds
    ]
    capped, lifted = cap.round("capped mid-run"), cap.rounds[-1]
    skipped = lifted.statuses.get("usage_capped", 0)
    extra = capped.statuses.get("exported", 0) - usage_cap.FLIP_AFTER
    early = (
        f""" In the capped run {extra} account(s) beyond the first {usage_cap.FLIP_AFTER} were
        exported: X had admitted their request before the switch."""
        if extra > 0
        else ""
    )
    twice = sum(r.redelivered for r in cap.rounds)
    redelivered = (
        f""" SQS delivers at least once, and moto's queue, polled by concurrent workers, handed
        {twice} message(s) to two of them (the deliveries column); the app answers a redelivery
        like any run, and one whose export already landed is acknowledged without calling X."""
        if twice
        else ""
    )
    return "\n".join(
        [
            "## 7. X's usage cap met mid-run",
            "",
            prose(
                f"""The queue path of the local stack: the scheduled event to FetchFunction
                (dispatch: one SQS message per account), then {cap.workers} workers
                (FetchConcurrency), each a container of its own (clients, HTTP pool, use cases),
                draining the queue in batches of {cap.batch_size} (the template's BatchSize) as
                Lambda's poller does: each message through `ExportQueued.run`, the handler's batch
                loop, messages that did not fail deleted. {cap.accounts} connected accounts. Once
                {usage_cap.FLIP_AFTER} accounts are exported, the X sandbox answers every
                timeline request with X's usage-cap 429 (`UsageCapExceeded`,
                `x-rate-limit-remaining` still high). Then a run 30 minutes later (inside the
                marker's hour), the next hourly run (with X still capped) and one more hour later
                with X serving again. Wall clock; loopback, no added latency; the section took
                {cap.seconds:.1f} s."""
            ),
            "",
            table(header, rows),
            "",
            prose(
                f"""After the cap: {sum(capped.calls_after_flip.values())} timeline calls in all,
                at most {max(capped.calls_after_flip.values(), default=0)} per worker (a worker's
                account in flight meets the 429 and records the marker; every later account reads
                the marker with its own item and skips X), the rest of the run done
                {capped.seconds_after_flip:.2f} s after X started refusing; no retry, no wait for
                `x-rate-limit-reset`. Dead-letter queue: {cap.dead_letters} messages; left in the
                fetch queue: {cap.left_in_queue}; batch item failures
                {sum(r.batch_failures for r in cap.rounds)}: `usage_capped` is an answer, not a
                failure, so SQS does not redeliver it (a failing message would reach the
                dead-letter queue only after 5 receives, 30 minutes apart: the batch item failures
                are the evidence). The run 30 minutes later
                calls X {cap.round("30 min later").timeline_calls} times; the next hourly run
                sends {cap.round("next hourly run").timeline_calls} probe. Once X serves again,
                the probing run's account is exported and the marker dropped
                (marker left: {cap.marker_until or "none"}). An account whose worker reads the
                marker while another run's probe is in flight is handed back to SQS for a minute
                (`failed`, a batch item failure, not `usage_capped`), so it is exported once the
                probe has X's answer instead of losing its hour; those are the batch item
                failures of the last two rounds and the messages left in the queue
                ({skipped} of {lifted.queued} accounts were `usage_capped` in the last round:
                their run ended before the probe began).{early}{redelivered}"""
            ),
            "",
        ]
    )
