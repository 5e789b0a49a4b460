"""Every timeout and retry count a deadline depends on, and the rotation's numbers derived from them.

DESIGN.md's rotation protocol needs three numbers to agree: the lease outlasts the holder's worst
case, losers wait less than the lease, and a rotation starts only with more Lambda time left than
that worst case. They are computed here from the same timeouts and retry counts the X transport
and the AWS clients are built with, so raising a timeout moves the lease with it.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- X ---------------------------------------------------------------------------------------
# (connect, read): connecting is quick or hopeless; X's timeline can take a few seconds per page.
X_TIMEOUT = (3.05, 15.0)
# The token endpoint answers in well under a second when it is healthy.
TOKEN_TIMEOUT = (3.05, 10.0)
# Token POSTs that surely never reached X (connect errors) are retried this many times.
TOKEN_CONNECT_RETRIES = 2
# A POST that may have reached X (read timeout, 5xx, unreadable 200) is sent once more with the
# same refresh token: X either never saw it, or answers invalid_grant (step 5 of the protocol).
TOKEN_RESENDS = 1
# Pauses between token POSTs (full jitter, never longer than this).
TOKEN_BACKOFF_CAP = 1.0

# --- AWS (botocore standard retry mode) ---------------------------------------------------------
AWS_CONNECT_TIMEOUT = 3.0
AWS_READ_TIMEOUT = 10.0
AWS_MAX_ATTEMPTS = 8
# DynamoDB answers in milliseconds: short timeouts and few SDK attempts keep one call's worst case
# small enough for the lease; the rotation write is retried by the token keeper itself.
DYNAMODB_CONNECT_TIMEOUT = 2.0
DYNAMODB_READ_TIMEOUT = 5.0
DYNAMODB_MAX_ATTEMPTS = 3
# botocore's standard mode sleeps rand * min(20, 2 ** attempt) seconds between attempts, and up to
# 5 s more when the service sends x-amz-retry-after.
_SDK_BACKOFF_CAP = 20.0
_SDK_RETRY_AFTER_MAX = 5.0

# Kept back from the Lambda's remaining time for the export's S3 write and the account update
# after a 429 wait.
EXPORT_RESERVE_SECONDS = 30.0
# Kept back beyond a computed worst case: clock skew between Lambdas, GC pauses, the seal.
SAFETY_SECONDS = 10.0
# The day's account snapshot sits between the posts' PutObject and the account's update: one
# users/me attempt (never a retry) and one more PutObject must fit before that reserve.
ACCOUNT_SNAPSHOT_SECONDS = sum(X_TIMEOUT) + 5.0


def sdk_call_seconds(connect: float, read: float, attempts: int) -> float:
    """The longest one botocore call can take: every attempt times out, with the longest pauses."""
    pauses = sum(min(_SDK_BACKOFF_CAP, 2.0**attempt) + _SDK_RETRY_AFTER_MAX for attempt in range(1, attempts))
    return attempts * (connect + read) + pauses


def post_seconds(timeout: tuple[float, float]) -> float:
    """The longest one X request can take (the transport caps its total at connect + read)."""
    return timeout[0] + timeout[1]


@dataclass(frozen=True)
class RotationTiming:
    connect_retries: int  # token POSTs retried after a connect error (X never saw them)
    resends: int  # token POSTs sent again after an answer that may have been lost
    backoff_cap: float  # the longest pause between two token POSTs
    refresh_seconds: float  # the refresh grant with all its retries and pauses
    write_seconds: float  # one DynamoDB write with the SDK's retries
    holder_seconds: float  # lease write sent -> rotated tokens stored, worst case
    lease_seconds: float  # how long a lease lasts
    loser_wait_seconds: float  # how long a loser waits for the holder's new tokens
    start_seconds: float  # Lambda time that must remain before a rotation starts

    def check(self) -> None:
        if not self.holder_seconds < self.loser_wait_seconds < self.lease_seconds:
            raise AssertionError(f"rotation timing out of order: {self}")
        if self.start_seconds <= self.holder_seconds:
            raise AssertionError(f"a rotation could start without time to finish: {self}")


def rotation_timing(
    *,
    token_timeout: tuple[float, float] = TOKEN_TIMEOUT,
    connect_retries: int = TOKEN_CONNECT_RETRIES,
    resends: int = TOKEN_RESENDS,
    backoff_cap: float = TOKEN_BACKOFF_CAP,
    write_seconds: float | None = None,
) -> RotationTiming:
    posts = 1 + connect_retries + resends
    refresh = posts * post_seconds(token_timeout) + (posts - 1) * backoff_cap
    write = (
        sdk_call_seconds(DYNAMODB_CONNECT_TIMEOUT, DYNAMODB_READ_TIMEOUT, DYNAMODB_MAX_ATTEMPTS)
        if write_seconds is None
        else write_seconds
    )
    # The lease's clock starts before its own write is sent, then the grant, then the token write.
    holder = write + refresh + write
    lease = holder + 2 * SAFETY_SECONDS
    timing = RotationTiming(
        connect_retries=connect_retries,
        resends=resends,
        backoff_cap=backoff_cap,
        refresh_seconds=refresh,
        write_seconds=write,
        holder_seconds=holder,
        lease_seconds=lease,
        # Long enough to see a live holder finish, short enough never to take a live holder's lease.
        loser_wait_seconds=holder + SAFETY_SECONDS,
        start_seconds=holder + SAFETY_SECONDS,
    )
    timing.check()
    return timing


ROTATION = rotation_timing()
