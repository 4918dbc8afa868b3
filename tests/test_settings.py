"""Settings: API URLs that would leak credentials or break paths are refused with a clear
error; timeouts come from flags, then the environment, then the defaults."""

from __future__ import annotations

import pytest

from casesync.errors import ConfigError, ExitCode
from casesync.settings import (
    Timeouts,
    check_api_url,
    display_url,
    resolve_api_url,
    resolve_timeouts,
    transport_allowed,
)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://user:PASSWORD@radiopaedia.org", "user name or password"),
        ("https://PASSWORD@radiopaedia.org", "user name or password"),
        ("https://radiopaedia.org?a=b", "query string or fragment"),
        ("https://radiopaedia.org/#top", "query string or fragment"),
        ("https://radiopaedia.org?", "query string or fragment"),
        ("http://[::1", "cannot be parsed"),
        ("http://localhost:port", "cannot be parsed"),
        ("https://user:PASSWORD@host:port", "cannot be parsed"),
        ("radiopaedia.org", "not an http(s) URL"),
        ("http://radiopaedia.org", "plain http"),
    ],
)
def test_unusable_api_urls_are_refused_without_showing_secrets(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_api_url(url)
    assert says in str(caught.value)
    assert "PASSWORD" not in str(caught.value)
    assert caught.value.exit_code == ExitCode.ERROR


@pytest.mark.parametrize(
    "url",
    ["https://radiopaedia.org", "http://127.0.0.1:8787/", "http://[::1]:80", "http://localhost"],
)
def test_plain_api_urls_are_accepted(url: str) -> None:
    assert check_api_url(url) == url.rstrip("/")


def test_display_url_drops_user_info_only() -> None:
    assert display_url("https://u:p@host/a?b=c") == "https://host/a?b=c"
    assert display_url("https://host/a") == "https://host/a"
    assert display_url("https://u:p/ss@host/a") == "https://host/a"


def test_file_bytes_travel_only_over_https_or_to_loopback() -> None:
    assert transport_allowed("https://bucket.s3.amazonaws.com/k?sig=1")
    assert transport_allowed("http://127.0.0.1:9000/k")
    assert not transport_allowed("http://bucket.s3.amazonaws.com/k")
    assert not transport_allowed("http://[::1")


def test_timeouts_flag_then_environment_then_default() -> None:
    env = {"CASESYNC_READ_TIMEOUT": "5", "CASESYNC_STALL_TIMEOUT": "7.5"}
    chosen = resolve_timeouts({"read": 2.0, "connect": None}, env)
    assert chosen == Timeouts(connect=10.0, read=2.0, stall=7.5, deadline=300.0)
    assert resolve_timeouts(None, {}) == Timeouts()


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf", "1e400"])
def test_unusable_timeouts_are_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="CASESYNC_CONNECT_TIMEOUT"):
        resolve_timeouts(None, {"CASESYNC_CONNECT_TIMEOUT": value})
