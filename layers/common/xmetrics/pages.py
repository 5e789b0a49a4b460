"""The small HTML pages the HTTP functions answer with. Everything echoed is escaped."""

from __future__ import annotations

from html import escape

# The callback URL carries the code: no referrer may leak it, no cache may keep the page,
# and no script runs on a page that echoes what X (or an attacker) put in the query.
SECURITY_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1f2328}"
    "h1{font-size:1.4rem}.ok{color:#1a7f37}.err{color:#cf222e}code{background:#f6f8fa;padding:0 .2rem}"
)


def page(title: str, paragraphs: list[str], *, ok: bool, action: tuple[str, str] | None = None) -> str:
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    if action:
        body += f'<p><a href="{escape(action[1], quote=True)}">{escape(action[0])}</a></p>'
    css = "ok" if ok else "err"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><h1 class="{css}">{escape(title)}</h1>{body}</body></html>'
    )
