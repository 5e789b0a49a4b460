"""A simulated year of hourly runs of one account, a random fault at every step (issue #11, section 5).

8,760 runs of `ExportAccount.run` through the real TokenKeeper and the in-memory fakes, on a
FakeClock: nothing sleeps for real, so the year takes seconds. A seeded random.Random picks, at
every step, whether it fails and how:

- each token POST: never sent (connect error), 5xx, read timeout before X rotated, a slow answer,
  and, rarely, the one no client survives: X rotated and its answer was lost;
- each DynamoDB call: throttled (the SDK's retries spent, then StoreUnavailableError) or slow;
  each lease and rotation write: its answer lost after it landed, either the SDK's retry meeting
  our own write (TokenConflictError carrying the item) or the SDK giving up (StoreUnavailableError);
- the Secrets Manager read: slow or unavailable;
- the timeline: a 429;
- the invocation: picked up with less time left than a rotation's worst case (deadline near), or
  with just enough (deadline tight: the rotation must start, and finish before Lambda stops it).

Every run must rotate: X's access tokens live 2 h, so with that lifetime an hourly run would find
the token still valid every other hour. The fake X here mints access tokens that live 30 minutes
(FakeTokenEndpoint.access_lifetime), so each run finds the stored one expired and rotates through
the keeper's own due check; nothing pokes the stored item between runs.

Lambda stops a function at its timeout, mid-line: every simulated second goes through `Year.tick`,
which raises LambdaKilled (a BaseException, caught by no handler of ours) once the invocation's
time is up. That gives "deadline near" its teeth: a rotation started without time for its worst
case can be killed between X's answer and the write.

After every run: ExportAccount.run returned a Summary; the stored refresh token is X's live one
(unless X's lost answer spent it, the case counted apart); a deadline-near run neither took the
lease nor called X's token endpoint; a run with the full timeout was never killed. At the end every
token X issued is accounted for: stored by a rotation, lost with X's answer, or a reconnect's.

The seed is fixed (XMETRICS_YEAR_SEED overrides it); a problem is reported with the seed, the run
number and that run's faults in order, so it can be replayed.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest

from tests.fakes.clock import FakeClock
from tests.fakes.crypto import FakeCipher
from tests.fakes.exporter import FakeExporter
from tests.fakes.oauth import LOST_AFTER, NEVER_SENT, SERVER_ERROR, TIMEOUT_BEFORE, FakeTokenEndpoint
from tests.fakes.store import FakeStore, throttled
from tests.fakes.telemetry import Recorder
from tests.fakes.x_api import FakeTimelines
from tests.reliability.conftest import Figures
from xmetrics.crypto import PlainTokens, SealedTokens
from xmetrics.deadline import Deadline
from xmetrics.errors import (
    RateLimitedError,
    SecretsUnavailableError,
    StoreUnavailableError,
    TokenConflictError,
    TransportError,
    UnauthorizedError,
    XApiError,
    XServerError,
)
from xmetrics.events import FetchJob
from xmetrics.limits import ROTATION, TOKEN_TIMEOUT, RotationTiming
from xmetrics.oauth.client import ClientCredentials, TokenSet
from xmetrics.services.export_account import ExportAccount
from xmetrics.services.results import Summary
from xmetrics.services.tokens import TokenKeeper
from xmetrics.store import NEEDS_RECONNECT, Account
from xmetrics.timeutil import from_epoch

USER = "1700000000000000001"
HOUR = 3600.0
RUNS = 365 * 24
DEFAULT_SEED = 20261128
SEED = int(os.environ.get("XMETRICS_YEAR_SEED", DEFAULT_SEED))
# FetchFunction's timeout (template.yaml): what a queued job normally has.
LAMBDA_SECONDS = 300.0
# Short enough that every hourly run finds the access token due (X's own lifetime is 7,200 s).
ACCESS_LIFETIME = 1800.0
POSTS = [
    {"id": str(i), "text": f"post {i}", "public_metrics": {"like_count": i, "impression_count": 10 * i}}
    for i in range(1, 4)
]

# --- the fault mix: each rate is per step (one POST, one DynamoDB call, one run) --------------------
SLOW = "slow"
POST_RATES = {NEVER_SENT: 0.04, SERVER_ERROR: 0.04, TIMEOUT_BEFORE: 0.04, SLOW: 0.03, LOST_AFTER: 0.001}
STORE_RATES = {"throttled": 0.02, SLOW: 0.04}
# Both lost-answer shapes for the writes the rotation depends on.
MET_OWN_WRITE, SDK_GAVE_UP = "landed, answer lost, retry met it", "landed, answer lost, SDK gave up"
ANSWER_RATES = {MET_OWN_WRITE: 0.03, SDK_GAVE_UP: 0.03}
SECRET_RATES = {"unavailable": 0.01, SLOW: 0.02}
RATE_LIMITED = "X timeline: 429"
REFUSED = "X timeline: 401 for a token it issued"
SERVER_DOWN = "X timeline: 5xx after its retries"
TIMELINE_RATES = {RATE_LIMITED: 0.04, REFUSED: 0.01, SERVER_DOWN: 0.01}
DEADLINE_NEAR = "deadline near (< a rotation's worst case)"
DEADLINE_TIGHT = "deadline tight (just > a rotation's worst case)"
DEADLINE_RATES = {DEADLINE_NEAR: 0.03, DEADLINE_TIGHT: 0.03}
LABELS = {
    NEVER_SENT: "token POST: never sent (connect error)",
    SERVER_ERROR: "token POST: 5xx, X did not rotate",
    TIMEOUT_BEFORE: "token POST: read timeout, X did not rotate",
    SLOW: "token POST: slow answer",
    LOST_AFTER: "token POST: X rotated, answer lost",
}
# The one fault no client survives: X spent the refresh token and nobody ever saw the new one.
UNSURVIVABLE = LABELS[LOST_AFTER]


class LambdaKilled(BaseException):
    """The invocation reached its timeout: Lambda stops it wherever it is."""


def pick(rng: random.Random, rates: Mapping[str, float]) -> str | None:
    """One roll of the dice: a fault kind, or None (the step goes well)."""
    roll = rng.random()
    for kind, rate in rates.items():
        if roll < rate:
            return kind
        roll -= rate
    return None


@dataclass
class Tally:
    runs: int = 0
    rotations: int = 0
    reached_x: int = 0  # runs that sent X at least one token POST
    handed_back: int = 0
    killed: int = 0
    rate_limited: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    survived: Counter[str] = field(default_factory=Counter)
    tokens_lost: int = 0
    forced_reconnects: int = 0
    unsurvivable: list[int] = field(default_factory=list)
    # Runs from X's lost answer to the account showing needs_reconnect (0: the same run).
    detection_lag: list[int] = field(default_factory=list)
    reconnects: int = 0
    escaped: int = 0
    problems: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0


@dataclass
class Before:
    posts: int
    calls: int
    metrics: dict[str, float]


class TimedTokenEndpoint:
    """The fake X's token endpoint as the keeper meets it over the network: every POST rolls its
    fault and takes its time (before X processes it, and while the answer travels back)."""

    def __init__(self, year: Year) -> None:
        self._year = year
        self._x = year.x

    def credentials(self) -> ClientCredentials:
        fault = pick(self._year.rng, SECRET_RATES)
        self._year.tick(0.02)
        if fault is not None:
            self._year.fault(f"secret read: {fault}")
            self._year.tick(self._year.rng.uniform(1.0, ROTATION.write_seconds))
            if fault == "unavailable":
                raise SecretsUnavailableError("GetSecretValue", "ThrottlingException")
        return self._x.credentials()

    def refresh(self, refresh_token: str) -> TokenSet:
        year, rng = self._year, self._year.rng
        fault = pick(rng, POST_RATES)
        before, after = rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.7)
        if fault == NEVER_SENT:
            before, after = rng.uniform(0.0, TOKEN_TIMEOUT[0]), 0.0
        elif fault in (TIMEOUT_BEFORE, LOST_AFTER):
            after = TOKEN_TIMEOUT[1]
        elif fault == SLOW:
            after = rng.uniform(1.0, TOKEN_TIMEOUT[1])
        if fault is not None and fault != LOST_AFTER:
            year.fault(LABELS[fault])
        self._x.faults = [fault] if fault in (NEVER_SENT, SERVER_ERROR, TIMEOUT_BEFORE, LOST_AFTER) else []
        issued = self._x.issued
        year.tick(before)
        try:
            return self._x.refresh(refresh_token)
        except TransportError:
            if fault == LOST_AFTER and self._x.issued > issued:
                year.fault(UNSURVIVABLE)
                year.lost_answer()
            raise
        finally:
            # The answer's way back: a kill here lands after X rotated.
            year.tick(after)

    def revoke(self, token: str, token_type_hint: str) -> None:
        self._x.revoke(token, token_type_hint)


class Year:
    def __init__(
        self,
        seed: int,
        *,
        keeper: type[TokenKeeper] = TokenKeeper,
        timing: RotationTiming = ROTATION,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.keeper_class = keeper
        self.timing = timing
        self.clock = FakeClock()
        self.start = self.clock() + HOUR  # connected an hour before the first run
        self.store = FakeStore(hook=self._store_call, after_write=self._store_answer)
        self.cipher = FakeCipher()
        self.x = FakeTokenEndpoint(clock=self.clock, access_lifetime=ACCESS_LIFETIME)
        self.oauth = TimedTokenEndpoint(self)
        self.timelines = FakeTimelines(posts=POSTS)
        self.exporter = FakeExporter()
        self.telemetry = Recorder()
        self.tally = Tally()
        self.end = math.inf  # the running invocation's deadline on the clock
        self.run_number = 0
        self.killed = False  # whether Lambda stopped this run at its deadline
        self.log: list[str] = []  # this run's faults, in order
        self.doomed_since: int | None = None  # the run whose answer X lost after rotating
        self._reconnect()

    # --- simulated time and faults ---------------------------------------------------------------
    def tick(self, seconds: float) -> None:
        self.clock.sleep(seconds)
        if self.clock() > self.end:
            raise LambdaKilled(f"run {self.run_number}")

    def fault(self, kind: str) -> None:
        self.log.append(kind)
        self.tally.injected[kind] += 1

    def lost_answer(self) -> None:
        if self.doomed_since is None:
            self.doomed_since = self.run_number

    def _store_call(self, operation: str) -> None:
        fault = pick(self.rng, STORE_RATES)
        self.tick(0.005)
        if fault is None:
            return
        self.fault(f"{operation}: {fault}")
        if fault == "throttled":
            self.tick(ROTATION.write_seconds)  # every SDK attempt spent
            raise throttled(operation)
        self.tick(self.rng.uniform(1.0, ROTATION.write_seconds))

    def _store_answer(self, operation: str) -> None:
        if operation not in ("acquire_lease", "complete_rotation"):
            return
        fault = pick(self.rng, ANSWER_RATES)
        if fault is None:
            return
        self.fault(f"{operation}: {fault}")
        if fault == MET_OWN_WRITE:
            # What store.py raises when the SDK's retry fails its condition against our own write.
            raise TokenConflictError("condition failed", current=self.store.accounts.get(USER))
        self.tick(ROTATION.write_seconds)
        raise StoreUnavailableError("UpdateItem", "RequestTimeout")

    def sleep(self, seconds: float) -> None:
        self.tick(seconds)

    # --- the account ------------------------------------------------------------------------------
    def _reconnect(self) -> None:
        """What /connect leaves behind: tokens fresh from X, version+1, active, lease dropped."""
        fresh = self.x.mint()
        key = self.cipher.key(USER)
        sealed = self.cipher.seal(USER, key, PlainTokens(fresh.access_token, str(fresh.refresh_token)))
        self.store.connect(USER, sealed, access_expires_at=fresh.expires_at, username="ada_metrics")
        self.tally.reconnects += 1

    def stored_refresh(self) -> str:
        account = self.store.accounts[USER]
        return self.cipher.open(USER, self.cipher.key(USER), account.sealed).refresh_token

    # --- the year ---------------------------------------------------------------------------------
    def play(self, runs: int = RUNS) -> Tally:
        started = time.perf_counter()
        for n in range(1, runs + 1):
            self.run_once(n)
        self.tally.wall_seconds = time.perf_counter() - started
        return self.tally

    def run_once(self, n: int) -> None:
        self.run_number, self.log = n, []
        scheduled = self.start + (n - 1) * HOUR
        self.clock.now = max(self.clock.now, scheduled)
        squeeze, seconds = self._time_left()
        timeline_fault = pick(self.rng, TIMELINE_RATES)
        self.timelines.faults = [self._timeline_error(timeline_fault)] if timeline_fault else []
        job = FetchJob(
            USER,
            snapshot=from_epoch(scheduled),
            start_time=from_epoch(scheduled) - timedelta(days=29),
            end_time=from_epoch(scheduled) - timedelta(seconds=30),
        )
        before = Before(self.x.posts, len(self.store.calls), dict(self.telemetry.metrics))
        self.end, self.killed = self.clock() + seconds, False
        summary = self._invoke(job, self.clock.deadline(seconds))
        self.end = math.inf
        if timeline_fault and not self.timelines.faults:
            self.fault(timeline_fault)
        self._check(squeeze, before, summary)

    def _time_left(self) -> tuple[str | None, float]:
        """Whether this invocation starts short of time (and how), and the seconds it has."""
        squeeze = pick(self.rng, DEADLINE_RATES)
        if squeeze is None:
            return None, LAMBDA_SECONDS
        self.fault(squeeze)
        if squeeze == DEADLINE_NEAR:
            return squeeze, self.rng.uniform(0.5, ROTATION.start_seconds)
        return squeeze, self.rng.uniform(ROTATION.start_seconds + 0.01, ROTATION.start_seconds + 5.0)

    def _timeline_error(self, kind: str) -> XApiError:
        if kind == RATE_LIMITED:
            return RateLimitedError(self.clock() + self.rng.uniform(60, 900))
        if kind == REFUSED:
            # X expired or revoked the access token early: the run refreshes once and tries again.
            return UnauthorizedError(401, "Unauthorized", "Unauthorized")
        return XServerError(503, "Service Unavailable")

    def _invoke(self, job: FetchJob, deadline: Deadline) -> Summary | None:
        keeper = self.keeper_class(
            self.store,
            self.cipher,
            self.oauth,
            self.telemetry,
            clock=self.clock,
            sleep=self.sleep,
            rand=self.rng.random,
            timing=self.timing,
        )
        service = ExportAccount(
            self.store, keeper, self.timelines, self.exporter, self.telemetry, clock=self.clock
        )
        try:
            return service.run(job, deadline)
        except LambdaKilled:
            self.killed = True
            self.tally.killed += 1
            return None
        except Exception as exc:  # the invariant under test: run() answers, it never raises
            self.tally.escaped += 1
            self._problem(f"ExportAccount.run raised {exc!r}")
            return None

    # --- the invariants, after every run ----------------------------------------------------------
    def _check(self, squeeze: str | None, before: Before, summary: Summary | None) -> None:
        tally = self.tally
        tally.runs += 1
        problems_before = len(tally.problems)
        self._count(before, summary)
        if self.killed and squeeze is None:
            self._problem("a run with the full Lambda timeout was killed")
        near = squeeze == DEADLINE_NEAR
        if near and self.x.posts != before.posts:
            self._problem("a deadline-near run called X's token endpoint")
        if near and "acquire_lease" in self.store.calls[before.calls :]:
            self._problem("a deadline-near run took the lease")
        if summary is not None and summary.status == "exported" and not summary.refreshed:
            self._problem("an export ran without rotating, though every run finds its token due")
        self._check_tokens()
        if len(tally.problems) == problems_before:
            tally.survived.update(kind for kind in self.log if kind != UNSURVIVABLE)

    def _count(self, before: Before, summary: Summary | None) -> None:
        def delta(name: str) -> float:
            return self.telemetry.metrics.get(name, 0) - before.metrics.get(name, 0)

        self.tally.rotations += int(delta("RefreshSucceeded"))
        self.tally.reached_x += int(self.x.posts > before.posts)
        self.tally.handed_back += int(delta("RotationDeferred") > 0)
        self.tally.rate_limited += int(summary is not None and summary.retry_after is not None)
        self.tally.statuses[summary.status if summary is not None else "killed by Lambda"] += 1

    def _check_tokens(self) -> None:
        account = self.store.accounts[USER]
        if self.doomed_since is not None:
            # X's lost answer spent the stored token: the keeper must flag it (same run, or the
            # next one that reaches X); the user reconnects.
            if account.status == NEEDS_RECONNECT:
                self.tally.unsurvivable.append(self.doomed_since)
                self.tally.detection_lag.append(self.run_number - self.doomed_since)
                self.doomed_since = None
                self._reconnect()
            return
        if account.status == NEEDS_RECONNECT:
            self.tally.forced_reconnects += 1
            self._problem("needs_reconnect although X never lost an answer")
            self._reconnect()
        elif self.stored_refresh() != self.x.live_refresh:
            self.tally.tokens_lost += 1
            self.tally.forced_reconnects += 1
            self._problem(
                f"token lost: stored {self.stored_refresh()!r}, X's live one {self.x.live_refresh!r}"
            )
            self._reconnect()

    def _problem(self, what: str) -> None:
        self.tally.problems.append(f"seed {self.seed} run {self.run_number}: {what}; faults: {self.log}")


def publish(figures: Figures, tally: Tally, seed: int) -> None:
    for kind, count in tally.injected.items():
        figures.injected(f"year: {kind}", count)
        figures.survived(f"year: {kind}", tally.survived[kind])
    figures.tokens_checked += tally.runs
    figures.tokens_lost += tally.tokens_lost
    statuses = ", ".join(f"{status} {count}" for status, count in sorted(tally.statuses.items()))
    figures.outcomes.extend(
        [
            f"simulated year (seed {seed}): {tally.runs} hourly runs in {tally.wall_seconds:.2f} s wall; "
            f"{tally.rotations} rotations ({tally.reached_x} runs reached X's token endpoint); "
            f"{sum(tally.injected.values())} faults injected",
            f"  runs: {statuses}; handed back for lack of time {tally.handed_back}, "
            f"rate limited {tally.rate_limited}",
            f"  tokens lost {tally.tokens_lost}, forced reconnects {tally.forced_reconnects} "
            f"(besides {len(tally.unsurvivable)} beyond any client), exceptions escaped {tally.escaped}",
        ]
    )
    if tally.unsurvivable:
        same_run = tally.detection_lag.count(0)
        figures.unavoidable.append(
            f"simulated year: X rotated and its answer was lost {len(tally.unsurvivable)} times "
            f"(runs {', '.join(map(str, tally.unsurvivable))}); needs_reconnect flagged in the same run "
            f"{same_run} times, by a later run {len(tally.detection_lag) - same_run} times "
            f"(at most {max(tally.detection_lag)} runs later); the user reconnected each time"
        )


def test_a_year_of_hourly_rotations_under_faults_loses_no_token(figures: Figures) -> None:
    year = Year(SEED)
    tally = year.play()
    publish(figures, tally, SEED)

    assert not tally.problems, "\n".join(tally.problems[:20])
    assert tally.tokens_lost == 0 and tally.forced_reconnects == 0 and tally.escaped == 0
    # Every token X issued was stored by a rotation, lost with X's answer, or handed out by /connect.
    assert year.x.issued == tally.rotations + tally.injected[UNSURVIVABLE] + tally.reconnects
    # The year really was exercised: most runs rotated, and every kind of fault happened.
    assert tally.runs == RUNS and tally.rotations > 0.85 * RUNS
    assert tally.handed_back > 0 and tally.rate_limited > 0 and tally.unsurvivable
    for kind in (*LABELS.values(), *DEADLINE_RATES, *TIMELINE_RATES):
        assert tally.injected[kind] > 0, kind
    for operation in ("acquire_lease", "complete_rotation"):
        for shape in (MET_OWN_WRITE, SDK_GAVE_UP):
            assert tally.injected[f"{operation}: {shape}"] > 0
    assert tally.wall_seconds < 30


class _WriteOnce(TokenKeeper):
    """The keeper without its write retry: one attempt at storing the rotated tokens."""

    def _persist(self, account: Account, sealed: SealedTokens, fresh: TokenSet, deadline: Deadline) -> int:
        return self._write(account, sealed, fresh)


@pytest.mark.parametrize(
    ("removed", "keeper", "timing"),
    [
        ("the rotation write's retry", _WriteOnce, ROTATION),
        ("the check for time left before a rotation", TokenKeeper, replace(ROTATION, start_seconds=0.0)),
    ],
)
def test_the_same_year_without_a_safeguard_loses_tokens(
    figures: Figures, removed: str, keeper: type[TokenKeeper], timing: RotationTiming
) -> None:
    """The simulation can fail: take one protection away and the same year loses tokens."""
    tally = Year(DEFAULT_SEED, keeper=keeper, timing=timing).play()
    figures.outcomes.append(
        f"simulated year without {removed}: tokens lost {tally.tokens_lost}, "
        f"forced reconnects {tally.forced_reconnects} (the simulation catches it)"
    )
    assert tally.tokens_lost > 0
