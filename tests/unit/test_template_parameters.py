"""template.yaml's parameters refuse at deploy what the functions would refuse at every run."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local.template import load
from xmetrics.config import FetchSettings
from xmetrics.errors import ConfigError

BASE = {
    "TABLE_NAME": "tokens",
    "BUCKET_NAME": "my-exports",
    "CLIENT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
    "TOKEN_KEY_ID": "alias/tokens",
}


def _parameter(name: str) -> dict[str, Any]:
    parameter: dict[str, Any] = load()["Parameters"][name]
    return parameter


def _allowed(parameter: dict[str, Any], value: str) -> bool:
    """CloudFormation's AllowedPattern check: the pattern matches the whole value."""
    return re.fullmatch(parameter["AllowedPattern"], value) is not None


def _fetch_accepts(days: str) -> bool:
    try:
        FetchSettings.from_env({**BASE, "PUBLIC_HISTORY_DAYS": days})
    except ConfigError:
        return False
    return True


def test_public_history_days_is_a_string_whose_default_is_off() -> None:
    parameter = _parameter("PublicHistoryDays")
    # A Number's MinValue/MaxValue cannot leave out 1-30: a String's pattern can.
    assert parameter["Type"] == "String" and "MinValue" not in parameter and "MaxValue" not in parameter
    assert parameter["Default"] == "0" and _allowed(parameter, parameter["Default"])
    assert "31" in parameter["ConstraintDescription"] and "3650" in parameter["ConstraintDescription"]
    fetch = load()["Resources"]["FetchFunction"]["Properties"]["Environment"]["Variables"]
    assert fetch["PUBLIC_HISTORY_DAYS"] == {"Ref": "PublicHistoryDays"}


@pytest.mark.parametrize("value", ["0", "31", "32", "99", "100", "365", "999", "1000", "3649", "3650"])
def test_public_history_days_admits_off_and_31_to_3650(value: str) -> None:
    assert _allowed(_parameter("PublicHistoryDays"), value)


@pytest.mark.parametrize(
    "value",
    ["1", "7", "30", "3651", "4000", "9999", "10000", "031", "00", "-1", "+31", "31.0", " 31", "31 ", ""],
)
def test_public_history_days_refuses_1_to_30_past_3650_and_numbers_not_plainly_written(value: str) -> None:
    assert not _allowed(_parameter("PublicHistoryDays"), value)


def test_public_history_days_pattern_is_exactly_the_fetch_functions_rule() -> None:
    parameter = _parameter("PublicHistoryDays")
    for days in range(0, 4000):
        assert _allowed(parameter, str(days)) == _fetch_accepts(str(days)), days
