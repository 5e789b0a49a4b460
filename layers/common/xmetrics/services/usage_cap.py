"""X's usage cap: once X says the app's monthly cap (or its credits) ran out, no run calls X's
timeline for an hour of scheduled time; then one run probes, and only it.

The marker is one item, read with the account in the run's first request, so an uncapped app pays
no extra DynamoDB operation for it. Hours are counted on the runs' scheduled times (the event's
`time`), like every other decision of a run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import Enum

from xmetrics.services.ports import AccountStore
from xmetrics.store import UsageCap
from xmetrics.timeutil import from_epoch, iso_z

PAUSE = timedelta(hours=1)
# How long a probe may keep the others waiting: a probing run that died lets them see the marker
# (closed until its hour is over) after this, so no job is handed back for ever.
PROBE_LEASE_SECONDS = 300.0
# A job that meets a probe comes back when the probe's lease ends (plus this), so it spends at
# most two of its queue receives (maxReceiveCount is 5) on one probe, whatever the probe does.
PROBE_WAIT_SLACK_SECONDS = 5.0


class Admission(Enum):
    OPEN = "open"  # no cap known
    CLOSED = "closed"  # capped: keep away from X
    PROBE = "probe"  # the hour is over, and this run is the one that asks X again
    WAIT = "wait"  # the hour is over and another run is asking X: try again in a minute


class UsageCapGate:
    def __init__(self, store: AccountStore, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    def admit(self, cap: UsageCap | None, snapshot: datetime) -> Admission:
        if cap is None:
            return Admission.OPEN
        if cap.probe_until is not None and self._clock() < cap.probe_until:
            return Admission.WAIT  # a probe is asking X right now: its answer decides
        if snapshot.timestamp() < cap.until:
            return Admission.CLOSED
        claimed = self._store.claim_usage_probe(
            seen_until=cap.until, until=_until(snapshot), probe_until=self._clock() + PROBE_LEASE_SECONDS
        )
        # Not claimed: another run probes (or X capped it again meanwhile, which the retry sees).
        return Admission.PROBE if claimed else Admission.WAIT

    def retry_at(self, cap: UsageCap | None) -> float:
        """When a job that met a probe should come back: once the probe surely has X's answer."""
        now = self._clock()
        probe_end = cap.probe_until if cap is not None and cap.probe_until else now + PROBE_LEASE_SECONDS
        return max(probe_end, now) + PROBE_WAIT_SLACK_SECONDS

    def capped(self, snapshot: datetime, detail: str) -> None:
        self._store.set_usage_cap(until=_until(snapshot), detail=detail, at_iso=iso_z(snapshot))

    def probed(self, snapshot: datetime) -> None:
        """The probing run got anything but the cap from X (or never reached X): let runs in."""
        self._store.clear_usage_cap(until=_until(snapshot))


def _until(snapshot: datetime) -> float:
    return (snapshot + PAUSE).timestamp()


def until_iso(cap: UsageCap) -> str:
    return iso_z(from_epoch(cap.until))
