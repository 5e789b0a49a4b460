"""Whether X's reach covered a run's window: judged from counts, never from a gap in the posts."""

from __future__ import annotations

from datetime import UTC, datetime

from xmetrics.services.completeness import judge

START = datetime(2026, 11, 1, 12, tzinfo=UTC)
TODAY = "2026-11-30"


def _judge(counts: dict[str, int | None], *, returned: int = 100, returned_today: int = 0, reach: int = 3200):
    return judge(
        start=START,
        today=TODAY,
        counts=counts,
        reach=reach,
        returned=returned,
        returned_today=returned_today,
        oldest=datetime(2026, 11, 20, tzinfo=UTC),
    )


def test_an_account_within_reach_is_complete_however_long_it_was_quiet() -> None:
    seen = _judge({TODAY: 120}, returned=3)
    assert seen.complete and "120 posts in all" in seen.reason
    assert seen.oldest_reached == "2026-11-20T00:00:00Z"


def test_a_run_that_got_x_s_whole_reach_is_truncated() -> None:
    seen = _judge({TODAY: 100}, returned=3200)
    assert not seen.complete and "whole reach of 3200" in seen.reason


def test_an_unknown_count_is_not_called_complete() -> None:
    assert not _judge({}).complete
    assert not _judge({TODAY: None}).complete
    assert not _judge({"2026-11-29": 50}).complete  # yesterday's count says nothing of today's


def test_a_big_account_needs_a_count_from_before_the_window() -> None:
    # No count older than the window's first day: not shown to be within reach.
    seen = _judge({TODAY: 50_000, "2026-11-01": 47_000})
    assert not seen.complete and "no count" in seen.reason
    # A count from the day before the window started bounds the posts since.
    seen = _judge({TODAY: 50_000, "2026-10-31": 47_000})
    assert seen.complete and "at most 3000 posts since 2026-10-31" in seen.reason
    assert not _judge({TODAY: 50_000, "2026-10-31": 46_850}).complete  # 3,150: inside the margin
    # More than the reach since then: the oldest posts may be out of reach.
    seen = _judge({TODAY: 50_000, "2026-10-31": 46_000})
    assert not seen.complete and "about 4000 posts since 2026-10-31" in seen.reason


def test_posts_of_today_and_a_margin_for_unseen_ones_count_toward_the_reach() -> None:
    # 64 places (2 %) are kept for posts the run cannot see: reposts left out, posts since the count
    assert _judge({TODAY: 3136}).complete
    assert not _judge({TODAY: 3136}, returned_today=1).complete
    assert not _judge({TODAY: 3195}).complete


def test_excluding_replies_shrinks_the_reach_to_800() -> None:
    assert not _judge({TODAY: 900}, reach=800).complete
    assert _judge({TODAY: 900}).complete
