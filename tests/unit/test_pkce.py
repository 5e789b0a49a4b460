import base64
import hashlib

import pytest

from xmetrics.oauth import pkce


def test_verifier_is_43_to_128_unreserved_characters() -> None:
    # Given / When: many fresh verifiers
    verifiers = {pkce.new_verifier() for _ in range(200)}
    # Then: all distinct and inside RFC 7636's alphabet and length
    assert len(verifiers) == 200
    assert all(pkce.is_valid_verifier(v) and 43 <= len(v) <= 128 for v in verifiers)


def test_challenge_is_rfc7636_appendix_b_value() -> None:
    # Given: the verifier from RFC 7636 Appendix B
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    # When / Then: the S256 challenge is the RFC's
    assert pkce.challenge_s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_challenge_matches_sha256_base64url_without_padding() -> None:
    verifier = pkce.new_verifier()
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert pkce.challenge_s256(verifier) == expected


@pytest.mark.parametrize("bad", ["short", "x" * 129, "has space" + "a" * 40, "ü" * 50])
def test_challenge_refuses_invalid_verifier(bad: str) -> None:
    with pytest.raises(ValueError):
        pkce.challenge_s256(bad)


def test_state_has_at_least_128_bits_and_matches_its_own_pattern() -> None:
    states = {pkce.new_state() for _ in range(200)}
    assert len(states) == 200
    # 43 base64url characters carry 256 bits
    assert all(pkce.STATE_RE.fullmatch(s) for s in states)


def test_cookie_hash_does_not_contain_the_cookie() -> None:
    secret = pkce.new_state()
    digest = pkce.cookie_hash(secret)
    assert secret not in digest and len(digest) == 64
