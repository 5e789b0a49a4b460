import pytest

from xmetrics.config import AuthSettings, ConnectSettings, FetchSettings
from xmetrics.errors import ConfigError

BASE = {
    "TABLE_NAME": "tokens",
    "BUCKET_NAME": "my-exports",
    "CLIENT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
    "TOKEN_KEY_ID": "alias/tokens",
}


def test_defaults_follow_design() -> None:
    settings = FetchSettings.from_env(BASE)
    assert settings.export_prefix == "x-metrics"
    assert settings.x.token_url == "https://api.x.com/2/oauth2/token"
    assert settings.x.revoke_url == "https://api.x.com/2/oauth2/revoke"
    assert settings.x.authorize_url == "https://x.com/i/oauth2/authorize"
    assert settings.fetch_queue_url is None


def test_auth_settings_default_scopes_and_derived_redirect() -> None:
    settings = AuthSettings.from_env(BASE)
    assert settings.scopes == "tweet.read users.read offline.access"
    assert settings.redirect_uri is None
    assert settings.allowed_users == frozenset()


@pytest.mark.parametrize("name", ["TABLE_NAME", "BUCKET_NAME", "CLIENT_SECRET_ARN", "TOKEN_KEY_ID"])
def test_missing_required_variable_is_named(name: str) -> None:
    env = {k: v for k, v in BASE.items() if k != name}
    with pytest.raises(ConfigError, match=name):
        FetchSettings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X_TOKEN_URL", "ftp://example.com/token"),
        ("X_API_BASE_URL", "not a url"),
        ("BUCKET_NAME", "Bad_Bucket"),
        ("FETCH_QUEUE_URL", "queue"),
        ("EXPORT_PREFIX", "has space"),
    ],
)
def test_malformed_variable_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        FetchSettings.from_env({**BASE, name: value})


def test_scopes_without_offline_access_are_refused() -> None:
    with pytest.raises(ConfigError, match="SCOPES must include offline.access"):
        AuthSettings.from_env({**BASE, "SCOPES": "tweet.read users.read"})


def test_allowed_users_are_normalised() -> None:
    settings = AuthSettings.from_env({**BASE, "ALLOWED_X_USERS": "@Alice, bob 12345"})
    assert settings.allowed_users == frozenset({"alice", "bob", "12345"})


def test_allowed_users_refuses_garbage() -> None:
    with pytest.raises(ConfigError, match="ALLOWED_X_USERS"):
        AuthSettings.from_env({**BASE, "ALLOWED_X_USERS": "<script>"})


@pytest.mark.parametrize("value", ["*", "x-metrics/*", "x*"])
def test_export_prefix_refuses_the_iam_wildcard(value: str) -> None:
    # The prefix is part of FetchFunction's s3:PutObject resource ARN, where `*` is a wildcard.
    with pytest.raises(ConfigError, match="EXPORT_PREFIX"):
        FetchSettings.from_env({**BASE, "EXPORT_PREFIX": value})


CONNECT = {"TABLE_NAME": "tokens", "CLIENT_ID": "Y2xpZW50LWlk"}


def test_authorize_settings_read_the_client_id_and_no_secret() -> None:
    settings = ConnectSettings.from_env(CONNECT)
    assert settings.client_id == "Y2xpZW50LWlk"
    assert not hasattr(settings, "client_secret_arn")


@pytest.mark.parametrize("value", ["", "   ", "has space", "id\nx", "ïd"])
def test_authorize_settings_name_a_missing_or_malformed_client_id(value: str) -> None:
    with pytest.raises(ConfigError, match="CLIENT_ID"):
        ConnectSettings.from_env({**CONNECT, "CLIENT_ID": value})
    with pytest.raises(ConfigError, match="CLIENT_ID"):
        ConnectSettings.from_env({"TABLE_NAME": "tokens"})


def test_the_bill_knobs_default_to_the_tiers_no_budget_and_xs_prices() -> None:
    settings = FetchSettings.from_env(BASE)
    assert settings.tiers.spec == "48h:run,7d:1d,30d:7d"
    assert settings.daily_read_budget == 0
    assert (settings.prices.post, settings.prices.media, settings.prices.user) == (0.001, 0.005, 0.010)


def test_the_bill_knobs_are_read_from_the_environment() -> None:
    env = {**BASE, "REFRESH_TIERS": "all", "DAILY_READ_BUDGET": "50000", "X_PRICES": "media=0.001"}
    settings = FetchSettings.from_env(env)
    assert settings.tiers.spec == "all" and settings.daily_read_budget == 50_000
    assert (settings.prices.post, settings.prices.media, settings.prices.as_of) == (
        0.001,
        0.001,
        "configured",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REFRESH_TIERS", "48h:hourly"),
        ("REFRESH_TIERS", "7d:1d,48h:run"),
        ("DAILY_READ_BUDGET", "-5"),
        ("DAILY_READ_BUDGET", "1e6"),
        ("X_PRICES", "posts=0.001"),
        ("X_PRICES", "post=nan"),
        ("X_PRICES", "post=5"),
    ],
)
def test_a_malformed_bill_knob_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        FetchSettings.from_env({**BASE, name: value})


@pytest.mark.parametrize(
    ("value", "exclude"),
    [
        ("", "retweets"),
        ("none", ""),
        ("reposts", "retweets"),
        ("replies", "replies"),
        ("reposts,replies", "retweets,replies"),
    ],
)
def test_exclude_post_types_maps_to_x_s_exclude(value: str, exclude: str) -> None:
    assert FetchSettings.from_env({**BASE, "EXCLUDE_POST_TYPES": value}).exclude == exclude


def test_a_malformed_exclude_post_types_is_named() -> None:
    with pytest.raises(ConfigError, match="EXCLUDE_POST_TYPES"):
        FetchSettings.from_env({**BASE, "EXCLUDE_POST_TYPES": "retweets"})
