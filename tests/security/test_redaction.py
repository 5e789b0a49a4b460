"""The log filter redacts every secret-named value in the shapes logs really carry: key=value,
Python reprs, JSON (escaped inside JSON too), and URL-encoded query strings."""

from __future__ import annotations

import logging

import pytest

from xmetrics import observability
from xmetrics.observability import REDACTED, RedactingFilter, redact

NAMES = observability._NAMES.split("|")
SECRET = "s3cr3tV4lue-_~.x"
FORMS = {
    "key=value": "{name}={secret}",
    "python repr": "{{'{name}': '{secret}'}}",
    "json": '{{"{name}": "{secret}"}}',
    "json, no spaces": '{{"{name}":"{secret}"}}',
    "escaped json": '{{\\"{name}\\": \\"{secret}\\"}}',
    "double-quoted": '{name}="{secret}"',
    "single-quoted": "{name}='{secret}'",
    "colon, double-quoted": '{name}: "{secret}"',
    "colon, spaces, single-quoted": "{name} : '{secret}'",
    "equals, spaces, quoted": "{name} = '{secret}'",
    "url-encoded =": "{name}%3D{secret}",
    "url-encoded = (lower case)": "{name}%3d{secret}",
    "url-encoded :": "{name}%3A{secret}",
    "url-encoded after an encoded &": "redirect%3Fx%3D1%26{name}%3D{secret}%26y%3D2",
    "url-encoded twice": "x%2526{name}%253D{secret}",
    "url-encoded json": "%7B%22{name}%22%3A%22{secret}%22%7D",
}


def test_the_names_cover_every_credential_the_flows_handle() -> None:
    assert {"code", "code_verifier", "access_token", "refresh_token", "client_secret", "xmx_state"} <= set(
        NAMES
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("form", FORMS.values(), ids=list(FORMS))
def test_every_secret_name_is_redacted_in_every_form(name: str, form: str) -> None:
    for spelled in (name, name.upper()):
        text = form.format(name=spelled, secret=SECRET)
        redacted = redact(text)
        assert SECRET not in redacted, redacted
        assert REDACTED in redacted and spelled in redacted  # says what was there


def test_quotes_and_neighbours_survive_redaction() -> None:
    assert redact('{"code": "abc", "state": "xyz"}') == f'{{"code": "{REDACTED}", "state": "xyz"}}'
    assert redact("{'code': 'abc'}") == f"{{'code': '{REDACTED}'}}"
    assert redact("a%26code%3Dabc%26b%3D1") == f"a%26code%3D{REDACTED}%26b%3D1"


@pytest.mark.parametrize(
    "text",
    [
        "status_code=400",
        "token_type=bearer",
        '{"grant_type": "refresh_token", "token_type_hint": "refresh_token"}',
        "user_id=1700000000000000001",
        "the code path is fine",
        "barcode=123",
    ],
)
def test_names_that_only_contain_a_secret_name_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_a_value_quoted_but_never_closed_is_still_redacted() -> None:
    assert SECRET not in redact(f'refresh_token="{SECRET}')


@pytest.mark.parametrize("key", ["code", "Refresh_Token", " xmx_state", "client_secret"])
def test_dict_values_under_secret_keys_are_redacted(key: str) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, {key: SECRET, "user_id": "1"}, None, None)
    RedactingFilter().filter(record)
    assert record.msg == {key: REDACTED, "user_id": "1"}
