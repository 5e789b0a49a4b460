"""results.md: a header naming the machine, a summary of the targets, then one section per figure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bench import scale
from bench.calls import CallsResult, Scenario
from bench.coldstart import ColdStartResult, Series
from bench.throughput import ClientRun, ThroughputResult
from xmetrics.services.tokens import REFRESH_MARGIN_SECONDS

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
    bench_seconds: float,
) -> str:
    header = [
        "# x-metrics-export benchmarks",
        "",
        f"- date: {machine.date}",
        f"- machine: {machine.cpus} CPUs ({machine.cpu_model}), {machine.platform}",
        f"- python: {machine.python}; code: {machine.revision}",
        "- stack: moto server + X sandbox on loopback, no added latency (`local/stack.py`)",
        f"- `python -m bench` took {bench_seconds:.0f} s",
        "",
        prose(
            """Every figure is a ratio or a count measured in this run against that stack, except
            section 4, which is arithmetic on the measured counts with the prices and latencies it
            states."""
        ),
        "",
    ]
    sections = [
        _summary(cold, calls, throughput),
        _cold_section(cold),
        _calls_section(calls),
        _throughput_section(throughput, cold),
        _scale_section(plan),
    ]
    return "\n".join(header + sections).rstrip() + "\n"


# --------------------------------------------------------------------------------- summary


def _summary(cold: ColdStartResult, calls: CallsResult, tp: ThroughputResult) -> str:
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
            f"{r.cost.x_requests:,}",
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


def _scale_section(plan: scale.ScaleResult) -> str:
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
    return "\n".join(
        [
            "## 4. Scale on paper",
            "",
            prose(
                """One scheduled run: the dispatch invocation (Scan + SendMessageBatch) and one
                worker invocation per SQS batch. Lambda GB-s = busy seconds x memory; busy seconds
                per account = pages x (X latency + CPU per page x slowdown) + AWS calls x their
                latency + a refresh's token call when due. DynamoDB units from the measured item
                size (strongly consistent GetItem, UpdateItem per KB, eventually consistent Scan);
                SQS includes an estimate of the poller's receive + delete per batch (not the app's
                calls). Run wall time = busy time / workers, or the X app limit's pace when that is
                slower."""
            ),
            "",
            _inputs(plan),
            "",
            *tables,
            prose(
                f"""Where X's app limit binds: a worker asks for one page at a time, so
                FetchConcurrency workers send about workers / (page latency + CPU) requests a
                second, against 10,000 / 900 s = {rate:.1f}/s. A run of at most 10,000 pages never
                meets the limit, whatever the concurrency; a larger one is paced by it once
                workers / page latency exceeds {rate:.1f}/s. Per {t.schedule_seconds // 60}-minute
                schedule the app limit allows at most {m.accounts_per_schedule(1):,} one-page
                accounts, or {m.accounts_per_schedule(scale.X_MAX_PAGES):,} at X's full reach; more
                need a longer schedule (or more X apps). The per-user limit
                ({scale.X_USER_LIMIT}/15 min) is never near: one account needs at most
                {scale.X_MAX_PAGES} pages a run."""
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
                tables' flagged rows). Beyond that, raise FetchConcurrency together with an app-wide
                X request budget shared by the workers (X's limit then allows up to
                {m.accounts_per_schedule(1):,} one-page accounts an hour) rather than
                alone. Lambda has billed INIT since 2025-08: about {t.concurrency} cold starts a
                run, a fraction of a GB-s, left out."""
            ),
            "",
        ]
    )
