"""Export one account: a usable token, every page of its window, one JSON-lines object in S3."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from xmetrics import records
from xmetrics.deadline import Deadline
from xmetrics.errors import (
    AccountNotFoundError,
    DeadlineError,
    NeedsReconnectError,
    RateLimitedError,
    TokenUnreadableError,
    UnauthorizedError,
    UsageCappedError,
    XMetricsError,
)
from xmetrics.limits import EXPORT_RESERVE_SECONDS
from xmetrics.services.account_snapshot import AccountSnapshots
from xmetrics.services.billing import (
    PRICES,
    Bookkeeping,
    Prices,
    Reads,
    Span,
    count_page,
    covered,
    created_at,
    hours,
    merge,
    uncovered,
    utc_day,
)
from xmetrics.services.budget import ReadBudget, Share
from xmetrics.services.completeness import Completeness, judge
from xmetrics.services.ports import AccountStore, ExportSink, Timelines
from xmetrics.services.results import Summary, describe
from xmetrics.services.tiers import DEFAULT_SPEC, Tier, TierPolicy, tier_of, windows
from xmetrics.services.tokens import AccessGrant, TokenKeeper
from xmetrics.services.usage_cap import Admission, UsageCapGate, until_iso
from xmetrics.services.window import WINDOW, FetchJob
from xmetrics.telemetry import Telemetry
from xmetrics.timeutil import from_epoch, iso_z
from xmetrics.x_api import MIN_PAGE_SIZE, PAGE_SIZE, TIMELINE_REACH, Timeline

if TYPE_CHECKING:
    from xmetrics.store import Account

# An account whose posting rate is not known yet (its first run under a budget) reserves one page:
# its newest posts come first, its older tiers stay due, and the next reservations are sized by
# the rate this read shows. A larger guess would hold budget that other accounts' young posts
# need until this container reserves again (a new account's whole month, up to 3,200 posts).
FIRST_RESERVATION = PAGE_SIZE
# The rate used to drop tiers from a share before any is known: a heavy poster, 40 posts a day.
DEFAULT_RATE = 40 / 24
# X reaches at most 3,200 posts of a timeline.
MAX_RESERVATION = TIMELINE_REACH
# Posts reserved beyond the expected ones: a burst of new posts still fits in the share.
RESERVE_MARGIN = 10


class ExportAccount:
    def __init__(
        self,
        store: AccountStore,
        tokens: TokenKeeper,
        x: Timelines,
        exporter: ExportSink,
        telemetry: Telemetry,
        *,
        tiers: TierPolicy | None = None,
        budget: ReadBudget | None = None,
        prices: Prices = PRICES,
        reach: int = TIMELINE_REACH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._x = x
        self._exporter = exporter
        self._telemetry = telemetry
        self._tiers = tiers or TierPolicy.parse(DEFAULT_SPEC)
        self._budget = budget or ReadBudget(store, 0)
        self._prices = prices
        self._gate = UsageCapGate(store, clock)
        self._snapshots = AccountSnapshots(x, exporter, telemetry, self._bill, clock)
        self._reach = reach
        self._clock = clock

    def run(self, job: FetchJob, deadline: Deadline, *, skip_if_done: bool = False) -> Summary:
        """A status for every outcome, whatever AWS or X answers: never an exception. Each outcome
        of a connected account is also a line of the runs dataset."""
        try:
            summary = self._outcome(job, deadline, skip_if_done, tally := Reads())
        except DeadlineError as exc:
            # Handed back untouched: writing last_error or the run's line would spend the little
            # time that is left, and the retry writes its own.
            self._telemetry.count("HandedBack")
            return Summary(job.user_id, "failed", error=str(exc))
        if summary.status != "exported" and tally:
            # A run that failed after X answered still read (and was billed for) those pages.
            summary.reads, summary.billed = tally.returned(), tally.billed()
            summary.cost_usd = tally.cost(self._prices)
        if not summary.skipped and summary.status != "not_found":
            self._record_run(job, summary)
        return summary

    def _outcome(self, job: FetchJob, deadline: Deadline, skip_if_done: bool, tally: Reads) -> Summary:
        try:
            return self._run(job, deadline, skip_if_done, tally)
        except AccountNotFoundError:
            return Summary(job.user_id, "not_found", error="no such account; connect it via /connect")
        except NeedsReconnectError:
            return Summary(job.user_id, "needs_reconnect", error="reconnect the account via /connect")
        except RateLimitedError as exc:
            self._telemetry.count("RateLimited")
            return Summary(
                job.user_id,
                "failed",
                error="rate limited by X; retried after the reset",
                retry_after=exc.reset_at,
            )
        except DeadlineError:
            raise
        except XMetricsError as exc:
            return self._failed(job, exc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A shape X's answers should never have (a post without an id, a list for an object):
            # the run fails with a status, and the log names the kind of damage, not the data.
            return self._failed(
                job, XMetricsError(f"X sent an answer this app cannot read ({type(exc).__name__})")
            )

    def _record_run(self, job: FetchJob, summary: Summary) -> None:
        """One line under runs/, keyed like the run's export: a retry overwrites its own line, so
        the line says how the run last ended. Losing it never changes the run's status."""
        try:
            self._exporter.put(
                job.user_id,
                job.snapshot,
                [summary.as_run_line(iso_z(job.snapshot))],
                window=job.window,
                dataset="runs",
            )
        except XMetricsError as exc:
            self._telemetry.warning(
                "could not write the run's line", user_id=job.user_id, error=describe(exc)
            )

    def _failed(self, job: FetchJob, exc: XMetricsError) -> Summary:
        message = describe(exc)
        if isinstance(exc, TokenUnreadableError):
            self._telemetry.count("TokenUnreadable")
        self._telemetry.count("FetchFailed")
        self._telemetry.warning("fetch failed", user_id=job.user_id, error=message)
        try:
            self._store.record_error(job.user_id, message=message, at_iso=self._now_iso())
        except XMetricsError as also:
            self._telemetry.warning("could not record the error", user_id=job.user_id, error=describe(also))
        return Summary(job.user_id, "failed", error=message)

    def _run(self, job: FetchJob, deadline: Deadline, skip_if_done: bool, tally: Reads) -> Summary:
        account, cap = self._store.get_account_and_cap(job.user_id)
        if account is None:
            raise AccountNotFoundError(job.user_id)
        last = account.last_export or {}
        key = self._exporter.key_for(job.user_id, job.snapshot, window=job.window)
        if skip_if_done and last.get("key") == key:
            # A redelivered message whose export already landed: the object is there, nothing to
            # redo, and no token to refresh for it.
            return Summary(
                job.user_id, "exported", key=key, skipped=True, tweets=int(float(last.get("count", 0)))
            )
        admission = self._gate.admit(cap, job.snapshot)
        if admission is Admission.CLOSED:
            assert cap is not None
            self._telemetry.count("UsageCapped")
            return Summary(
                job.user_id,
                "usage_capped",
                error=f"X's usage cap for this app is reached; no run calls X before {until_iso(cap)}",
            )
        if admission is Admission.WAIT:
            # Not usage_capped: X may be serving again; a queued job is handed back, not dropped.
            self._telemetry.count("UsageCapProbeWait")
            return Summary(
                job.user_id,
                "failed",
                error="another run is checking whether X lifted its usage cap; retried once it knows",
                retry_after=self._gate.retry_at(cap),
            )
        capped_again = False
        try:
            return self._export(job, deadline, account, tally)
        except UsageCappedError as exc:
            capped_again = True
            return self._capped(job, exc)
        finally:
            if admission is Admission.PROBE and not capped_again:
                self._end_probe(job)

    def _capped(self, job: FetchJob, exc: UsageCappedError) -> Summary:
        """No wait, no retry, no requeue: the cap lifts on X's calendar, not in minutes."""
        self._telemetry.count("UsageCapped")
        message = f"X's usage cap for this app is reached ({describe(exc)}); no run calls X for an hour"
        self._telemetry.warning("usage cap reached", user_id=job.user_id, error=message)
        try:
            self._gate.capped(job.snapshot, exc.detail or exc.title)
        except XMetricsError as also:
            # The next runs will each meet the cap themselves: one call each, still no retry.
            self._telemetry.warning("could not record the usage cap", error=describe(also))
        return Summary(job.user_id, "usage_capped", error=message[:300])

    def _end_probe(self, job: FetchJob) -> None:
        try:
            self._gate.probed(job.snapshot)
        except XMetricsError as exc:
            self._telemetry.warning("could not lift the usage cap marker", error=describe(exc))

    def _export(self, job: FetchJob, deadline: Deadline, account: Account, tally: Reads) -> Summary:
        book = Bookkeeping.loads(account.reads)
        read_today = book.read_today(job.snapshot)
        due = self._tiers.due(job, book.tiers)
        if not due:
            return Summary(job.user_id, "exported")  # REFRESH_TIERS has no every-run tier
        share = self._budget.reserve(utc_day(job.snapshot), self._wanted(job, due, book, read_today))
        if share.exhausted:
            self._telemetry.count("BudgetExhausted")
            return Summary(
                job.user_id,
                "budget_exhausted",
                error=f"DailyReadBudget is used up for {share.day} (UTC); X was not called",
            )
        tiers = self._fit(job, due, share, book, read_today)
        # What X returned so far, page by page: even a read that fails midway was billed for the
        # pages it got, and only the rest of the share goes back to the budget.
        asked: list[bool] = []  # set once a timeline request went out
        try:
            grant = self._tokens.access_token(job.user_id, deadline, known=account)
            try:
                read = self._read(grant, job, deadline, tiers, read_today, share, tally, asked)
            except UnauthorizedError:
                # A token we believed valid was refused (revoked, or X expired it early): refresh
                # once, retry once.
                grant = self._tokens.access_token(job.user_id, deadline, rejected=grant.access_token)
                read = self._read(grant, job, deadline, tiers, read_today, share, tally, asked)
        except BaseException:
            # A run that asked X and then failed keeps its whole share: X may have billed pages
            # whose answers never arrived. One that never asked X gives it all back.
            self._budget.settle(share, (share.granted or 0) if asked else 0)
            self._bill(tally)
            raise
        self._budget.settle(share, tally.billed_posts)
        self._bill(tally)
        return self._write(job, grant, read, book, deadline, skipped=[t.name for t in due if t not in tiers])

    def _write(
        self,
        job: FetchJob,
        grant: AccessGrant,
        read: _Read,
        book: Bookkeeping,
        deadline: Deadline,
        skipped: list[str],
    ) -> Summary:
        batch = records.build(
            read.pages,
            user_id=job.user_id,
            username=grant.account.username,
            snapshot_at=iso_z(job.snapshot),
            read_tier=lambda tweet: _tier_of(read.tiers, job.snapshot, tweet),
        )
        # Only now, with every page in hand, does anything reach S3: no partial exports.
        exported = self._exporter.put(job.user_id, job.snapshot, batch.records, window=job.window)
        # A backfill's reads count toward the day's bill, but it completes no tier.
        reads = (
            book.after(job.snapshot, read.spans, [], None)
            if job.backfill
            else book.after(job.snapshot, read.spans, read.completed, read.rate)
        )
        snap = self._snapshots.take(job, grant, book, deadline)
        if snap.taken:
            reads = reads.with_account(job.snapshot, snap.tweet_count)
        if snap.read_day:
            reads = reads.with_user_read(snap.read_day)
        seen = self._completeness(job, read, batch.records, reads)
        try:
            self._store.record_export(
                job.user_id,
                key=exported.key,
                count=exported.count,
                at_iso=self._now_iso(),
                reads=reads.dumps(),
                username=snap.username if snap.username != grant.account.username else None,
                completeness=None if seen is None else {**seen.as_item(), "snapshot_at": iso_z(job.snapshot)},
            )
        except AccountNotFoundError:
            self._telemetry.warning("account disconnected during its export", user_id=job.user_id)
            return Summary(
                job.user_id,
                "not_found",
                key=exported.key,
                tweets=exported.count,
                error="the account was disconnected during this export; its object stays in S3",
            )
        read.reads.users += snap.reads.users
        read.reads.billed_users += snap.reads.billed_users
        cost = read.reads.cost(self._prices)
        self._report(job, grant, read, exported.count, exported.size, exported.key, batch.run_errors, cost)
        if seen is not None and not seen.complete:
            self._telemetry.count("WindowTruncated")
            self._telemetry.warning(
                "X's reach may not cover the window", user_id=job.user_id, reason=seen.reason
            )
        return Summary(
            job.user_id,
            "exported",
            account=snap.status,
            account_key=snap.key,
            tweets=exported.count,
            key=exported.key,
            refreshed=grant.refreshed,
            pages=len(read.pages),
            errors=batch.run_errors,
            tiers=[t.name for t in read.tiers],
            skipped_tiers=skipped + [t.name for t in read.tiers if t.name not in read.completed],
            reads=read.reads.returned(),
            billed=read.reads.billed(),
            cost_usd=cost,
            complete=None if seen is None else seen.complete,
            complete_reason=None if seen is None else seen.reason,
            oldest_reached=None if seen is None else seen.oldest_reached,
        )

    def _completeness(
        self, job: FetchJob, read: _Read, lines: Sequence[dict[str, Any]], book: Bookkeeping
    ) -> Completeness | None:
        """Whether X's reach covered the windows this run read; None when it read none."""
        if not read.spans:
            return None
        today = utc_day(job.snapshot)
        created = [moment for line in lines if (moment := created_at(line)) is not None]
        return judge(
            start=min(start for start, _ in read.spans),
            today=today,
            counts=book.accounts,
            reach=self._reach,
            returned=read.reads.posts,
            returned_today=sum(1 for moment in created if utc_day(moment) == today),
            oldest=min(created, default=None),
        )

    def _wanted(self, job: FetchJob, due: Sequence[Tier], book: Bookkeeping, read_today: list[Span]) -> int:
        """A reservation that covers the due tiers' new posts with a little room to spare (a run
        never reads past its share): what is not read goes back to the budget with this process's
        next reservation, so a large margin would only keep the budget from other accounts."""
        if book.rate is None:
            return FIRST_RESERVATION + RESERVE_MARGIN
        expected = sum(self._expected(job, t, book, read_today) for t in due)
        return min(MAX_RESERVATION, math.ceil(1.25 * expected) + RESERVE_MARGIN)

    def _expected(self, job: FetchJob, tier: Tier, book: Bookkeeping, read_today: list[Span]) -> float:
        rate = DEFAULT_RATE if book.rate is None else book.rate
        return rate * hours(uncovered(tier.window(job.snapshot), read_today))

    def _fit(
        self, job: FetchJob, due: tuple[Tier, ...], share: Share, book: Bookkeeping, read_today: list[Span]
    ) -> tuple[Tier, ...]:
        """Near the budget, the oldest tiers wait for another day so the young posts keep flowing."""
        if share.granted is None or share.granted >= share.asked:
            return due
        kept, expected = [due[0]], self._expected(job, due[0], book, read_today)
        for tier in due[1:]:
            expected += self._expected(job, tier, book, read_today)
            if expected > share.granted:
                break
            kept.append(tier)
        return tuple(kept)

    def _read(
        self,
        grant: AccessGrant,
        job: FetchJob,
        deadline: Deadline,
        tiers: tuple[Tier, ...],
        read_today: list[Span],
        share: Share,
        tally: Reads,
        asked: list[bool],
    ) -> _Read:
        """Each window of the due tiers, youngest first, until the budget share is spent.

        With a budget, no page can take the run past its share: a page holds at most what is left
        of it (X bills at most the posts a page returns), and paging stops before a page that
        might not fit."""
        # What X returned is counted once, page by page, as the pages arrive (`enough`).
        read = _Read(tiers=tiers, reads=tally)
        asks = windows(job.snapshot, tiers)
        parts = [part for window in asks for part in _parts(window, read_today, share.granted is not None)]
        spent = False  # a billable part was cut short: the older billable parts wait, youngest first
        for start, end, free in parts:
            size = PAGE_SIZE if free else None if spent else _page_size(share, tally)
            if size is None:
                spent = True
                continue  # the share is spent: the billable parts wait, their tiers stay due

            def enough(page: dict[str, Any], size: int = size, free: bool = free) -> bool:
                count_page(page, read_today, tally)
                return not free and share.granted is not None and share.granted - tally.billed_posts < size

            asked.append(True)
            timeline = self._x.timeline(
                grant.access_token,
                job.user_id,
                start_time=start,
                end_time=end,
                wait_budget=lambda: deadline.remaining() - EXPORT_RESERVE_SECONDS,
                enough=enough,
                page_size=size,
                # Only PublicHistoryDays reaches past the window for private metrics.
                private=end > job.snapshot - WINDOW,
            )
            read.add(timeline)
            oldest = _oldest(timeline.pages) if timeline.stopped_early else None
            read.spans.append((oldest or end, end) if timeline.stopped_early else (start, end))
            spent = spent or timeline.stopped_early
        read.finish(job.snapshot)
        return read

    def _report(
        self,
        job: FetchJob,
        grant: AccessGrant,
        read: _Read,
        count: int,
        size: int,
        key: str,
        run_errors: list[dict[str, object]],
        cost: float,
    ) -> None:
        self._telemetry.count("TweetsExported", count)
        self._telemetry.count("PagesFetched", len(read.pages))
        if read.rate_limited_waits:
            self._telemetry.count("RateLimited", read.rate_limited_waits)
        if read.retries:
            self._telemetry.count("XRetries", read.retries)
        self._telemetry.count("ExportBytes", size, unit="Bytes")
        if run_errors:
            self._telemetry.count("PartialErrors", len(run_errors))
            self._telemetry.warning(
                "X reported errors naming no post", user_id=job.user_id, errors=run_errors[:5]
            )
        self._telemetry.info(
            "account exported",
            user_id=job.user_id,
            key=key,
            tweets=count,
            pages=len(read.pages),
            refreshed=grant.refreshed,
            tiers=[t.name for t in read.tiers],
            billed_posts=read.reads.billed_posts,
            cost_usd=cost,
        )

    def _bill(self, reads: Reads) -> None:
        """What X bills: every resource it returned, and the ones new for the UTC day."""
        if not reads:
            return
        for kind, returned in reads.returned().items():
            self._telemetry.count(f"X{kind.title()}Read", returned)
            self._telemetry.count(f"X{kind.title()}Billed", reads.billed()[kind])
        self._telemetry.count("XCostEstimate", reads.cost(self._prices), unit="None")

    def _now_iso(self) -> str:
        return iso_z(from_epoch(self._clock()))


@dataclass
class _Read:
    """What one run read of X: the pages of its windows, the spans of `created_at` they covered,
    and what X bills for them."""

    tiers: tuple[Tier, ...]
    reads: Reads  # shared with the run's budget accounting, so each page is counted once
    pages: list[dict[str, Any]] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    rate_limited_waits: int = 0
    retries: int = 0
    completed: list[str] = field(default_factory=list)
    rate: float | None = None

    def add(self, timeline: Timeline) -> None:
        self.pages += timeline.pages
        self.rate_limited_waits += timeline.rate_limited_waits
        self.retries += timeline.retries

    def finish(self, snapshot: datetime) -> None:
        spans = merge(self.spans)  # a window asked in parts is read whole when its parts are
        self.completed = [
            t.name
            for t in self.tiers
            if any(a <= t.window(snapshot)[0] and t.window(snapshot)[1] <= b for a, b in spans)
        ]
        # A posting rate from at least an hour of posts (a first read cut short by its budget share
        # still gives one, so the next run's share fits what is left). Only the private window
        # counts: the public history is as thin as X's reach leaves it, not as the account posts.
        recent = [(a, b) for a, b in self.spans if b > snapshot - WINDOW]
        hours_read = hours(recent)
        posts = sum(
            1
            for page in self.pages
            for tweet in page.get("data") or ()
            if (moment := created_at(tweet)) is not None and covered(recent, moment)
        )
        self.rate = posts / hours_read if hours_read >= 1 else None


def _oldest(pages: Sequence[dict[str, Any]]) -> datetime | None:
    moments = [m for page in pages for t in page.get("data") or () if (m := created_at(t)) is not None]
    return min(moments) if moments else None


def _parts(window: Span, read_today: Sequence[Span], split: bool) -> list[tuple[datetime, datetime, bool]]:
    """A window as X is asked for it, newest part first, each saying whether it is free: under a
    budget, the parts already read today (X does not bill them again) are asked on their own, with
    full pages, so the share bounds only what X may bill. Otherwise the window is one ask."""
    start, end = window
    if not split:
        return [(start, end, False)]
    billable = uncovered(window, read_today)
    free = uncovered(window, billable)
    parts = [(a, b, False) for a, b in billable] + [(a, b, True) for a, b in free]
    return sorted(parts, key=lambda part: part[1], reverse=True)


def _page_size(share: Share, tally: Reads) -> int | None:
    """The largest page that cannot overrun the share; None when not even X's smallest fits."""
    if share.granted is None:
        return PAGE_SIZE
    left = share.granted - tally.billed_posts
    return min(PAGE_SIZE, left) if left >= MIN_PAGE_SIZE else None


def _tier_of(tiers: Sequence[Tier], snapshot: datetime, tweet: dict[str, Any]) -> str:
    created = created_at(tweet)
    return tier_of(tiers, snapshot, created) if created is not None else tiers[0].name
