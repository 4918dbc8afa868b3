"""Wire-format knowledge: the originals answer (protocol row 11, inferred), and which 401s are
about the token."""

from __future__ import annotations

from typing import Any

import pytest

from casesync.api.wire import WireError, originals_path, parse_originals, token_refused


def test_originals_are_read_per_study_and_series_in_order() -> None:
    answer = {
        "original_file_urls_by_study": {
            "51": [{"series_id": 9, "files": ["https://s3/a?sig", "https://s3/b?sig"]}],
            "50": [{"series_id": None, "files": ["https://s3/c?sig"]}],
        }
    }
    found = parse_originals(answer)
    assert [(s.study_id, s.series_id, s.urls) for s in found] == [
        (51, 9, ("https://s3/a?sig", "https://s3/b?sig")),
        (50, None, ("https://s3/c?sig",)),
    ]
    assert originals_path(51) == "/api/v1/cases/51/originals"
    assert "sig" not in repr(found[0])  # a signature never reaches a log line


@pytest.mark.parametrize(
    "answer",
    [
        [],
        {"originals": {}},
        {"original_file_urls_by_study": []},
        {"original_file_urls_by_study": {"x": []}},
        {"original_file_urls_by_study": {"1": {"series_id": 1}}},
        {"original_file_urls_by_study": {"1": [{"series_id": 1}]}},
        {"original_file_urls_by_study": {"1": [{"series_id": 1, "files": [""]}]}},
        {"original_file_urls_by_study": {"1": [{"series_id": "one", "files": ["u"]}]}},
    ],
)
def test_any_other_shape_is_refused(answer: Any) -> None:
    with pytest.raises(WireError):
        parse_originals(answer)


@pytest.mark.parametrize(
    ("path", "headers", "body", "about_the_token"),
    [
        ("/api/v1/cases", {}, "", True),  # every API 401 is about the token
        ("/api/v1/cases/1/studies", {}, '{"error": "expired"}', True),
        ("/image_preparation/1/studies/2/series", {}, "", False),  # not your case
        ("/image_preparation/1/studies/2/series", {}, "  \n", False),
        (
            "/image_preparation/1/studies/2/series",
            {},
            '{"error": "The access token expired"}',
            True,
        ),
        ("/image_preparation/1/studies/2/series", {"WWW-Authenticate": "Bearer"}, "", True),
    ],
)
def test_a_401_is_about_the_token_unless_image_preparation_answers_it_empty(
    path: str, headers: dict[str, str], body: str, about_the_token: bool
) -> None:
    assert token_refused(path, headers, body) is about_the_token
