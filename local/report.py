"""`make report`: the exports as one self-contained HTML page of charts, per account.

    python -m local.report                          # the exports `make demo` left in .demo/exports
    python -m local.report --dir PATH               # another local copy, laid out like the bucket
    python -m local.report --bucket B --prefix P    # a deployed bucket, with your AWS credentials

The numbers come from DuckDB running the Athena named queries of template.yaml (local/queries.py)
over JSON-lines files laid out like the bucket's keys, so the page and Athena answer alike. A bucket
is first copied to a temporary directory with boto3 (only the days of partitions the queries read);
DuckDB reads it with its built-in JSON reader, so no DuckDB extension is ever downloaded.

The charts are matplotlib figures written as inline SVG (matplotlib's Figure draws without pyplot
or a GUI backend). matplotlib is well kept and draws offline with no browser-side code at all;
inline SVG keeps the page one file that shows the same anywhere, with nothing fetched at view time
(the page's Content-Security-Policy forbids it). A JavaScript chart library (Vega-Lite) would need
its scripts inlined and a browser to draw what a test wants to check; SVG is the finished
drawing. Each series is a group with an id (`…-series-<name>`), so a test can count what a chart
drew.
"""

from __future__ import annotations

import argparse
import html
import io
import math
import re
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import matplotlib
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from local import queries
from local.template import ROOT

DEFAULT_DIR = ROOT / ".demo" / "exports"
DEFAULT_OUT = ROOT / ".demo" / "report.html"
DATASETS = ("tweets", "accounts", "runs")
QUARTILES = (0, 25, 50, 75, 100)
READ_KINDS = ("posts", "media", "users")
TOP_POSTS = 10
# A post's page at X: a link, followed only when clicked (the page itself loads nothing).
X_POST = "https://x.com/i/web/status/"
# Text as SVG <text> in the page's own font (not glyph outlines): a fraction of the size, and
# selectable. A fixed hash salt makes the same exports give the same file.
matplotlib.rcParams.update(
    {
        "svg.fonttype": "none",
        "svg.hashsalt": "x-metrics-report",
        "font.family": "sans-serif",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "axes.axisbelow": True,
        "grid.color": "#e6e9ec",
        "axes.edgecolor": "#8b98a5",
    }
)
COLORS = {
    "impressions": "#1d9bf0",
    "engagements": "#f91880",
    "followers": "#00ba7c",
    "rate": "#1d9bf0",
    "funnel": "#7856ff",
    "posts": "#1d9bf0",
    "media": "#7856ff",
    "users": "#00ba7c",
}
# Run statuses, in the order their bars stack; any status not listed here stacks after them.
STATUS_COLORS = {
    "exported": "#00ba7c",
    "failed": "#f4212e",
    "needs_reconnect": "#ff7a00",
    "budget_exhausted": "#ffd400",
    "usage_capped": "#b07cff",
    "not_found": "#8b98a5",
}
OTHER_STATUS_COLOR = "#536471"


# --- what the page shows, per account ----------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    day: date
    impressions: int
    engagements: int


@dataclass(frozen=True)
class TopPost:
    tweet_id: str
    created_at: str
    post_type: str
    text: str
    impressions: int
    engagements: int
    rate: float  # engagements / impressions


@dataclass(frozen=True)
class Funnel:
    videos: int
    plays: tuple[int, ...]  # playback_0 .. playback_100, summed over the account's videos


@dataclass(frozen=True)
class Followers:
    at: datetime
    count: int


@dataclass(frozen=True)
class RunRow:
    at: datetime
    status: str
    # What the run read from X, by kind; None when the run's line says nothing (it never got there).
    posts: int | None
    media: int | None
    users: int | None


@dataclass
class Account:
    user_id: str
    username: str
    days: list[Day] = field(default_factory=list)
    top: list[TopPost] = field(default_factory=list)
    funnel: Funnel | None = None
    followers: list[Followers] = field(default_factory=list)
    runs: list[RunRow] = field(default_factory=list)


# --- charts: matplotlib figures as inline SVG ---------------------------------------------------------


def _figure(height: float = 2.6) -> Figure:
    return Figure(figsize=(7.2, height), layout="constrained")


def _thousands(ax: Axes) -> None:
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _dates(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _bars(
    ax: Axes,
    boxes: Iterable[tuple[float, float, float, float]],
    *,
    series: str,
    label: str,
    color: str,
) -> None:
    """One series of bars (x0, y0, x1, y1) as a single collection: one SVG group, one id."""
    polygon = PolyCollection(
        [[(x0, y0), (x0, y1), (x1, y1), (x1, y0)] for x0, y0, x1, y1 in boxes],
        facecolors=color,
        edgecolors="none",
        label=label,
    )
    polygon.set_gid(f"series-{series}")
    ax.add_collection(polygon, autolim=True)
    ax.autoscale_view()


def svg(fig: Figure, chart_id: str, label: str) -> str:
    """The figure as an <svg> element for an HTML page, every id in it prefixed with `chart_id`.

    matplotlib numbers its ids per figure (line2d_1, text_1, …): prefixed, the page's figures never
    share one, and a `#…` reference resolves within its own chart.
    """
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    text = out.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r'\bid="([^"]+)"', rf'id="{chart_id}-\1"', text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{chart_id}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{chart_id}-\1)", text)
    return text.replace("<svg ", f'<svg role="img" aria-label="{html.escape(label)}" ', 1)


def chart_days(days: Sequence[Day]) -> Figure:
    fig = _figure(3.4)
    top, bottom = fig.subplots(2, 1, sharex=True)
    when = mdates.date2num([d.day for d in days])
    for ax, name, values in (
        (top, "impressions", [d.impressions for d in days]),
        (bottom, "engagements", [d.engagements for d in days]),
    ):
        (line,) = ax.plot(when, values, marker="o", markersize=3, color=COLORS[name], label=name)
        line.set_gid(f"series-{name}")
        ax.set_ylabel(name)
        ax.set_ylim(bottom=0)
        _thousands(ax)
    _dates(bottom)
    return fig


def chart_followers(points: Sequence[Followers]) -> Figure:
    fig = _figure(2.4)
    ax = fig.subplots()
    (line,) = ax.plot(
        mdates.date2num([p.at for p in points]),
        [p.count for p in points],
        marker="o",
        markersize=3,
        color=COLORS["followers"],
    )
    line.set_gid("series-followers")
    ax.set_ylabel("followers")
    _thousands(ax)
    _dates(ax)
    return fig


def chart_top(posts: Sequence[TopPost]) -> Figure:
    fig = Figure(figsize=(5.4, 0.8 + 0.3 * len(posts)), layout="constrained")
    ax = fig.subplots()
    count = len(posts)
    # Rank 1 on top: the bars stand at y = count-1 … 0.
    _bars(
        ax,
        ((0.0, count - 1 - i - 0.35, p.rate, count - 1 - i + 0.35) for i, p in enumerate(posts)),
        series="engagement-rate",
        label="engagement rate",
        color=COLORS["rate"],
    )
    ax.set_yticks(range(count), [f"#{count - i}" for i in range(count)])
    ax.set_xlim(left=0)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.set_xlabel("engagements / impressions")
    ax.grid(axis="y", visible=False)
    return fig


def chart_funnel(funnel: Funnel) -> Figure:
    fig = _figure(2.4)
    ax = fig.subplots()
    _bars(
        ax,
        ((i - 0.35, 0.0, i + 0.35, plays) for i, plays in enumerate(funnel.plays)),
        series="plays",
        label="plays",
        color=COLORS["funnel"],
    )
    started = funnel.plays[0]
    for i, plays in enumerate(funnel.plays):
        share = f" ({plays / started:.0%})" if started else ""
        ax.annotate(
            f"{plays:,}{share}",
            (i, plays),
            ha="center",
            va="bottom",
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_xticks(range(len(QUARTILES)), [f"{q}%" for q in QUARTILES])
    ax.set_xlabel(f"watched at least (plays of {funnel.videos:,} videos)")
    ax.set_ylabel("plays")
    ax.set_ylim(0, max(max(funnel.plays), 1) * 1.15)
    ax.grid(axis="x", visible=False)
    _thousands(ax)
    return fig


def statuses(runs: Sequence[RunRow]) -> list[str]:
    """The statuses present, known ones in STATUS_COLORS' order, others after them by name."""
    present = {r.status for r in runs}
    known = [s for s in STATUS_COLORS if s in present]
    return known + sorted(present - set(known))


def chart_runs(runs: Sequence[RunRow]) -> Figure:
    fig = _figure(3.6)
    top, bottom = fig.subplots(2, 1, sharex=True)
    per_day: dict[date, dict[str, int]] = {}
    for r in runs:
        counts = per_day.setdefault(r.at.date(), {})
        counts[r.status] = counts.get(r.status, 0) + 1
    stacked = {day: 0 for day in per_day}
    for status in statuses(runs):
        boxes = []
        for day, counts in sorted(per_day.items()):
            n = counts.get(status, 0)
            if n:
                x = mdates.date2num(day)
                boxes.append((x + 0.1, stacked[day], x + 0.9, stacked[day] + n))
                stacked[day] += n
        _bars(
            top,
            boxes,
            series=f"status-{status}",
            label=status.replace("_", " "),
            color=STATUS_COLORS.get(status, OTHER_STATUS_COLOR),
        )
    top.set_ylabel("runs a day")
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    top.legend(loc="upper left", ncols=3, fontsize=8, frameon=False, bbox_to_anchor=(0, 1.25))
    top.grid(axis="x", visible=False)
    for kind in READ_KINDS:
        read = [getattr(r, kind) for r in runs]
        (line,) = bottom.plot(
            mdates.date2num([r.at for r in runs]),
            [math.nan if n is None else n for n in read],  # a gap, not a made-up 0
            drawstyle="steps-post",
            color=COLORS[kind],
            label=kind,
        )
        line.set_gid(f"series-reads-{kind}")
    bottom.set_ylabel("read per run")
    bottom.set_ylim(bottom=0)
    bottom.legend(loc="upper left", ncols=3, fontsize=8, frameon=False)
    _thousands(bottom)
    _dates(bottom)
    return fig


# --- the numbers: the named queries of template.yaml, on DuckDB -------------------------------------


def _count(value: Any) -> int:
    """A SUM over no rows is NULL: nothing was counted."""
    return int(value) if value is not None else 0


def _optional(value: Any) -> int | None:
    return None if value is None else int(value)


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def list_accounts(con: Any) -> list[tuple[str, str]]:
    """(user_id, newest username) of every account in any dataset, ordered by username. A runs line
    names no username: an account seen only there goes by its id."""
    rows = con.execute(
        """
        SELECT user_id, arg_max(username, snapshot_at) AS newest_name
        FROM (
          SELECT user_id, username, snapshot_at FROM tweets
          UNION ALL SELECT user_id, username, snapshot_at FROM accounts
          UNION ALL SELECT user_id, NULL, snapshot_at FROM runs
        )
        GROUP BY user_id
        ORDER BY lower(coalesce(newest_name, user_id)), user_id
        """
    ).fetchall()
    return [(str(user_id), str(username or user_id)) for user_id, username in rows]


def gather(con: Any, user_id: str, username: str) -> Account:
    """One account's numbers, each from the named query that defines it (see template.yaml)."""
    account = Account(user_id, username)
    account.days = [
        Day(date.fromisoformat(r["dt"]), _count(r["impressions"]), _count(r["engagements"]))
        for r in queries.run(con, "daily_impressions", user_id=user_id)
    ]
    account.top = [
        TopPost(
            str(r["tweet_id"]),
            str(r["created_at"]),
            str(r["post_type"] or ""),
            str(r["text"] or ""),
            _count(r["impressions"]),
            _count(r["engagements"]),
            float(r["engagement_rate"]),
        )
        for r in queries.run(con, "top_posts_7d", user_id=user_id)
    ]
    (funnel,) = queries.run(con, "video_retention_funnel", user_id=user_id)
    if funnel["videos"]:
        plays = tuple(_count(funnel[f"playback_{q}"]) for q in QUARTILES)
        account.funnel = Funnel(int(funnel["videos"]), plays)
    account.followers = [
        Followers(_moment(r["snapshot_at"]), int(r["followers"]))
        for r in queries.run(con, "follower_growth", user_id=user_id)
        if r["followers"] is not None  # a count X did not send is absent, not 0
    ]
    history = queries.run(con, "run_history", user_id=user_id)
    account.runs = sorted(
        (
            RunRow(
                _moment(r["snapshot_at"]),
                str(r["status"]),
                _optional(r["posts_read"]),
                _optional(r["media_read"]),
                _optional(r["users_read"]),
            )
            for r in history
        ),
        key=lambda run: run.at,
    )
    return account


# --- the page -------------------------------------------------------------------------------------

# Nothing may be fetched at view time: the page says so to the browser, which then refuses (and
# reports) any load, so a test in a real browser sees a violation as a console error.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 0; background: #f7f9f9; color: #0f1419; }
header, section { max-width: 1160px; margin: 0 auto; padding: 16px 24px; }
header p { color: #536471; margin: 4px 0; }
h1 { font-size: 22px; margin: 8px 0; }
h2 { font-size: 19px; margin: 8px 0 12px; border-bottom: 1px solid #cfd9de; padding-bottom: 6px; }
h2 small { color: #536471; font-weight: normal; font-size: 13px; }
h3 { font-size: 15px; margin: 0 0 4px; }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 12px; }
.kpi { background: #fff; border: 1px solid #e1e8ed; border-radius: 10px; padding: 8px 14px;
       min-width: 150px; }
.kpi b { display: block; font-size: 20px; }
.kpi span { color: #536471; font-size: 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(520px, 100%), 1fr)); gap: 14px; }
figure { background: #fff; border: 1px solid #e1e8ed; border-radius: 12px; margin: 0;
         padding: 12px 14px; }
figure.wide { grid-column: 1 / -1; }
.split { display: grid; grid-template-columns: minmax(280px, 2fr) minmax(360px, 3fr); gap: 14px;
         align-items: start; }
figcaption p, .note { color: #536471; font-size: 13px; margin: 0 0 6px; }
.note { font-style: italic; }
svg { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 8px; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #eff3f4; vertical-align: top; }
td a { color: inherit; text-decoration: none; }
td a:hover { text-decoration: underline; }
td.n, th.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
@media (max-width: 760px) { .split { grid-template-columns: 1fr; } }
footer { max-width: 1160px; margin: 0 auto; padding: 8px 24px 24px; color: #536471; font-size: 12px; }
"""

ANSWERS = {
    "daily": (
        "Impressions and engagements per day",
        "How much attention did the posts get each day? What the account's own posts (reposts left "
        "out) gained that UTC day (each post's newest snapshot of the day minus the day before's). "
        "The first day of the exports, and a post's first day seen after a gap, is a baseline: what "
        "was gained before it is unknown. Posts the older read tiers read once a day or week bring "
        "their gain on the day they are read.",
    ),
    "top": (
        f"Top {TOP_POSTS} posts of the last 7 days",
        "Which recent posts engaged best for the reach they had? Posts created in the last 7 days "
        "(UTC) with 100 impressions or more, by engagement rate (non-public engagements over "
        "non-public impressions) on their newest snapshot.",
    ),
    "funnel": (
        "Video retention funnel",
        "Where do viewers drop off? Plays of the account's videos posted in the last 31 days that "
        "reached 0, 25, 50, 75 and 100 % of the video, on each video's newest snapshot with all "
        "five counts; the share is of plays started.",
    ),
    "followers": (
        "Follower growth",
        "Is the audience growing? Followers at each daily account snapshot of the last 90 days.",
    ),
    "runs": (
        "Run history",
        "Is the export healthy, and what does it read? The account's runs per day by status "
        "(exported, failed, needs reconnect, …), and what each run read from X: posts, media, "
        "users (X bills these reads).",
    ),
}
EMPTY = {
    "daily": "No post snapshots of the last 31 days in these exports.",
    "top": "No posts of the last 7 days with 100 impressions or more in these exports.",
    "funnel": "No videos among the posts of the last 31 days in these exports.",
    "followers": "No account snapshots of the last 90 days in these exports.",
    "runs": "No run history in these exports: no runs/ lines of the last 31 days (exports made "
    "before the fetch wrote them have none).",
}


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _chart(user_id: str, name: str, fig: Figure | None, table: str = "") -> str:
    """A chart in its <figure>, or the note saying why there is none; a table goes beside it."""
    title, answer = ANSWERS[name]
    chart_id = f"u{user_id}-{name}"
    wide = ' class="wide"' if table else ""
    caption = f"<figcaption><h3>{_esc(title)}</h3><p>{_esc(answer)}</p></figcaption>"
    if fig is None:
        body = f'<p class="note">{_esc(EMPTY[name])}</p>'
        return f'<figure id="{chart_id}" data-chart="{name}" data-empty="true">{caption}{body}</figure>'
    drawing = svg(fig, chart_id, title)
    body = f'<div class="split"><div>{drawing}</div>{table}</div>' if table else drawing
    return f'<figure id="{chart_id}" data-chart="{name}"{wide}>{caption}{body}</figure>'


def _top_table(posts: Sequence[TopPost]) -> str:
    rows = "".join(
        f"<tr><td class=n>#{rank}</td><td class=n>{_moment(p.created_at):%b %d %H:%M}</td>"
        f"<td>{_esc(p.post_type)}</td>"
        f'<td><a href="{X_POST}{_esc(p.tweet_id)}">{_esc(_short(p.text))}</a></td>'
        f"<td class=n>{p.impressions:,}</td><td class=n>{p.engagements:,}</td>"
        f"<td class=n>{p.rate:.1%}</td></tr>"
        for rank, p in enumerate(posts, start=1)
    )
    head = (
        "<tr><th class=n>rank</th><th>posted (UTC)</th><th>type</th><th>text</th>"
        "<th class=n>impressions</th><th class=n>engagements</th><th class=n>rate</th></tr>"
    )
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _short(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _kpis(account: Account, today: date) -> str:
    week = [d for d in account.days if d.day > today - timedelta(days=7)]
    cards = []
    if account.followers:
        last, first = account.followers[-1].count, account.followers[0].count
        cards.append((f"{last:,}", f"followers ({last - first:+,} since {account.followers[0].at:%b %d})"))
    cards.append((f"{sum(d.impressions for d in week):,}", "impressions gained, last 7 days"))
    cards.append((f"{sum(d.engagements for d in week):,}", "engagements gained, last 7 days"))
    if account.runs:
        exported = sum(r.status == "exported" for r in account.runs)
        cards.append((f"{exported} / {len(account.runs)}", "runs exported, last 31 days"))
    return (
        '<div class="kpis">'
        + "".join(
            f'<div class="kpi"><b>{_esc(value)}</b><span>{_esc(label)}</span></div>' for value, label in cards
        )
        + "</div>"
    )


def account_section(account: Account, today: date) -> str:
    uid = account.user_id
    charts = [
        _chart(uid, "daily", chart_days(account.days) if account.days else None),
        _chart(uid, "followers", chart_followers(account.followers) if account.followers else None),
        _chart(
            uid,
            "top",
            chart_top(account.top) if account.top else None,
            _top_table(account.top) if account.top else "",
        ),
        _chart(uid, "funnel", chart_funnel(account.funnel) if account.funnel else None),
        _chart(uid, "runs", chart_runs(account.runs) if account.runs else None),
    ]
    return (
        f'<section class="account" id="account-{_esc(uid)}" data-user-id="{_esc(uid)}">'
        f"<h2>@{_esc(account.username)} <small>id {_esc(uid)}</small></h2>"
        f'{_kpis(account, today)}<div class="grid">{"".join(charts)}</div></section>'
    )


def page(accounts: Sequence[Account], source: str, today: date, generated: datetime) -> str:
    if accounts:
        body = "".join(account_section(a, today) for a in accounts)
    else:
        body = '<section><p class="note">No exports found: nothing to chart.</p></section>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>X metrics report</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>X metrics report</h1>
<p>Exports: {_esc(source)} &middot; {len(accounts)} account(s) &middot; windows end {today:%Y-%m-%d} (UTC),
as the Athena named queries' do &middot; generated {generated:%Y-%m-%d %H:%M} UTC</p>
</header>
{body}
<footer>Numbers from template.yaml's Athena named queries run on DuckDB (local/queries.py);
charts drawn by matplotlib as inline SVG. Nothing on this page loads from anywhere else.</footer>
</body>
</html>
"""


# --- where the exports are ------------------------------------------------------------------------

# How far back each dataset is copied from a bucket: a day more than the longest window a named
# query of template.yaml reads it over (31 days of posts and runs, 90 of account snapshots).
DOWNLOAD_DAYS = {"tweets": 32, "accounts": 91, "runs": 32}


def download(bucket: str, prefix: str, into: Path, today: date, s3: Any = None) -> int:
    """Copy the bucket's recent exports to `into`/<key> (the partitions the queries read); returns
    how many objects. Keys sort by their dt=, so each dataset is one listing from its first day."""
    if s3 is None:
        s3 = boto3.client("s3")  # the user's credentials and region, found as the AWS CLI finds them
    copied = 0
    for dataset in DATASETS:
        first = today - timedelta(days=DOWNLOAD_DAYS[dataset])
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/{dataset}/", StartAfter=f"{prefix}/{dataset}/dt={first:%Y-%m-%d}"
        )
        for listed in pages:
            for item in listed.get("Contents", []):
                if not item["Key"].endswith(".jsonl"):
                    continue
                target = into / item["Key"]
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(target))
                copied += 1
    return copied


def build(root: Path, prefix: str, source: str, out: Path) -> Path:
    """The report of the exports under `root`/`prefix`, written to `out`."""
    generated = datetime.now(UTC)
    con = queries.connect(root, prefix=prefix)
    # The queries' windows end on DuckDB's current_date (UTC): the page states the same day.
    ((today,),) = con.execute("SELECT current_date").fetchall()
    report = [gather(con, user_id, username) for user_id, username in list_accounts(con)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page(report, source, today, generated), encoding="utf-8")
    return out


def _shown(path: Path) -> str:
    """A path as the page names it: relative to the project when inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.report", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--dir", type=Path, help=f"a local copy of the exports (default {DEFAULT_DIR})")
    where.add_argument("--bucket", help="read a deployed export bucket with your AWS credentials")
    parser.add_argument(
        "--prefix", default=queries.export_prefix(), help="the export prefix (default %(default)s)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the HTML file (default %(default)s)")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    if args.bucket:
        with tempfile.TemporaryDirectory(prefix="x-metrics-report-") as tmp:
            copied = download(args.bucket, args.prefix, Path(tmp), datetime.now(UTC).date())
            build(Path(tmp), args.prefix, f"s3://{args.bucket}/{args.prefix}/ ({copied} objects)", out)
    else:
        root: Path = args.dir or DEFAULT_DIR
        if not (root / args.prefix).is_dir():
            hint = " (run `make demo` first)" if args.dir is None else ""
            print(f"no exports under {root / args.prefix}{hint}", file=sys.stderr)
            return 1
        build(root, args.prefix, _shown(root / args.prefix), out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
