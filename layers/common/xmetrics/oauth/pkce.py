"""RFC 7636 PKCE (S256 only) and OAuth `state`: pure functions."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

# 64 random bytes -> 86 base64url characters: inside RFC 7636's 43..128 and 512 bits of entropy.
_VERIFIER_BYTES = 64
# 32 random bytes -> 256 bits, twice the 128 the design asks of `state`.
_STATE_BYTES = 32
_VERIFIER_RE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# Used with fullmatch: `$` would let a trailing newline through.
STATE_RE = re.compile(r"[A-Za-z0-9_-]{43}")


def new_verifier() -> str:
    return secrets.token_urlsafe(_VERIFIER_BYTES)


def new_state() -> str:
    return secrets.token_urlsafe(_STATE_BYTES)


def is_valid_verifier(verifier: str) -> bool:
    return bool(_VERIFIER_RE.fullmatch(verifier))


def challenge_s256(verifier: str) -> str:
    if not is_valid_verifier(verifier):
        raise ValueError("code_verifier must be 43-128 characters of [A-Za-z0-9-._~]")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def cookie_hash(cookie_value: str) -> str:
    """What the state item stores to bind itself to the browser, never the cookie itself."""
    return hashlib.sha256(cookie_value.encode("utf-8")).hexdigest()
