"""Twenty workers, one account, a token that is due: one refresh, no spent token reused, none lost."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import requests

from local import flows
from local.stack import LocalStack
from tests.integration.helpers import USER_ID, account_item, make_refresh_due, stored_tokens
from tests.reliability.conftest import Figures, budget, new_worker
from xmetrics.services.results import Summary
from xmetrics.services.window import make_job
from xmetrics.store import Store

WORKERS = 20
ROUNDS = 3


@dataclass
class RaceResult:
    summaries: list[Summary]
    refreshes: int
    refused_refreshes: int
    lease_waits: int
    version_before: int
    version_after: int
    stored_token_works: bool

    @property
    def clean(self) -> bool:
        return (
            self.refreshes == 1
            and self.refused_refreshes == 0
            and self.version_after == self.version_before + 1
            and all(s.status == "exported" for s in self.summaries)
            and self.stored_token_works
        )


def _token_requests(stack: LocalStack, status: int) -> int:
    assert stack.x is not None
    return sum(1 for e in stack.x.request_log if e.endpoint == "token" and e.status == status)


def race(stack: LocalStack) -> RaceResult:
    assert stack.x is not None
    make_refresh_due(stack)
    version_before = int(account_item(stack)["version"]["N"])
    refreshes_before = stack.x.refresh_count
    refused_before = _token_requests(stack, 400)
    workers = [new_worker(stack) for _ in range(WORKERS)]
    job = make_job(USER_ID, datetime.now(UTC).replace(microsecond=0))
    start = threading.Barrier(WORKERS)
    summaries: list[Summary] = []

    def work(index: int) -> None:
        start.wait()
        summaries.append(workers[index].service.run(job, budget()))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    me = requests.get(
        f"{stack.x.api_base_url}/2/users/me",
        headers={"Authorization": f"Bearer {stored_tokens(stack).access_token}"},
        timeout=10,
    )
    return RaceResult(
        summaries=summaries,
        refreshes=stack.x.refresh_count - refreshes_before,
        refused_refreshes=_token_requests(stack, 400) - refused_before,
        lease_waits=int(sum(w.telemetry.metrics.get("LeaseWaits", 0) for w in workers)),
        version_before=version_before,
        version_after=int(account_item(stack)["version"]["N"]),
        stored_token_works=me.status_code == 200
        and stored_tokens(stack).refresh_token == stack.x.live_refresh_token("ada_metrics", stack.client_id),
    )


def test_twenty_workers_refresh_a_due_token_exactly_once_per_rotation(
    stack: LocalStack, figures: Figures
) -> None:
    # Given: a connected account
    flows.connect(stack)
    results = []
    for _ in range(ROUNDS):
        # When: its token is due and 20 workers start on it at the same instant
        results.append(race(stack))
    # Then: every round, one refresh, no spent token presented, all 20 exported, the stored token works
    for result in results:
        figures.tokens_checked += 1
        figures.tokens_lost += not result.stored_token_works
        assert len(result.summaries) == WORKERS
        assert [s.status for s in result.summaries] == ["exported"] * WORKERS
        assert result.refreshes == 1 and result.refused_refreshes == 0
        assert result.version_after == result.version_before + 1
        assert result.stored_token_works
        assert sum(s.refreshed for s in result.summaries) == 1
    assert account_item(stack)["status"]["S"] == "active"
    figures.outcomes.append(
        f"rotation race: {ROUNDS} rounds x {WORKERS} workers -> refreshes {[r.refreshes for r in results]}, "
        f"invalid_grant {sum(r.refused_refreshes for r in results)}, "
        f"lease waits {[r.lease_waits for r in results]}, all {ROUNDS * WORKERS} runs exported"
    )


def test_without_the_lease_the_race_spends_tokens(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The safeguard check: with the lease and the conditional write gone, the race above breaks."""
    flows.connect(stack)

    def no_lease(self: Store, *args: object, **kwargs: object) -> None:
        return None

    def blind_write(self: Store, user_id: str, *, version: int, spent: bytes, **values: object) -> int:
        item = account_item(stack)
        return self.save_connection(user_id=user_id, username=item["username"]["S"], **values)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "acquire_lease", no_lease)
    monkeypatch.setattr(Store, "complete_rotation", blind_write)
    result = race(stack)
    assert not result.clean
    assert result.refreshes > 1 or result.refused_refreshes > 0
