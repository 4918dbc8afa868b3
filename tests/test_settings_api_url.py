"""The one rule that picks the server, row by row (settings.choose_api_url)."""

from __future__ import annotations

import logging

import pytest

from casesync.errors import ConfigError
from casesync.settings import DEFAULT_API_URL, choose_api_url

FLAG = "http://127.0.0.1:1001"
ENV = "http://127.0.0.1:1002"
YAML = "http://127.0.0.1:1003"
LOGIN = "http://127.0.0.1:1004"
OTHER = "https://example.org"


@pytest.mark.parametrize(
    ("flag", "env", "project", "stored", "url", "source"),
    [
        (FLAG, ENV, YAML, [LOGIN], FLAG, "--api-url"),
        (None, ENV, YAML, [LOGIN], ENV, "CASESYNC_API_URL"),
        (None, None, YAML, [LOGIN], YAML, "api_url in casesync.yaml"),
        (None, None, None, [LOGIN], LOGIN, "the only stored login"),
        (None, None, None, [LOGIN, OTHER], DEFAULT_API_URL, "the default"),
        (None, None, None, [], DEFAULT_API_URL, "the default"),
        (None, "", None, [], DEFAULT_API_URL, "the default"),  # empty is unset
        (FLAG + "/", None, None, [], FLAG, "--api-url"),  # no final slash
    ],
)
def test_the_server_comes_from_the_first_place_that_names_one(
    flag: str | None,
    env: str | None,
    project: str | None,
    stored: list[str],
    url: str,
    source: str,
) -> None:
    environ = {} if env is None else {"CASESYNC_API_URL": env}
    choice = choose_api_url(flag, project, lambda: stored, environ)
    assert (choice.url, choice.source) == (url, source)


def test_the_stored_logins_are_read_only_when_nothing_else_decides() -> None:
    def never() -> list[str]:
        raise AssertionError("the credentials file was read")

    assert choose_api_url(None, YAML, never, {}).url == YAML


def test_without_a_credentials_file_the_default_is_used() -> None:
    env = {"CASESYNC_CREDENTIALS": "/nonexistent/credentials.json"}
    assert choose_api_url(None, None, env=env).source == "the default"


def test_a_stored_login_is_checked_like_any_url() -> None:
    with pytest.raises(ConfigError, match="plain http"):
        choose_api_url(None, None, lambda: ["http://example.org"], {})


def test_verbose_and_debug_log_the_choice_and_its_source(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="casesync"):
        choose_api_url(None, YAML, env={})
    assert f"server: {YAML} (from api_url in casesync.yaml)" in caplog.text
