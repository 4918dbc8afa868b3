"""Manifest HTML shown in the preview keeps Radiopaedia's subset and nothing that can run."""

from __future__ import annotations

import pytest

from casesync.preview.sanitize import display_html


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        (None, ""),
        (
            "<p>Plain <em>and</em> <strong>bold</strong></p>",
            "<p>Plain <em>and</em> <strong>bold</strong></p>",
        ),
        ("<p>x</p><script>alert(1)</script>", "<p>x</p>"),
        ("<p onclick='steal()' class=c>x</p>", "<p>x</p>"),
        ('<a href="javascript:alert(1)">x</a>', "<a>x</a>"),
        ('<a href=" JavaScript:alert(1)">x</a>', "<a>x</a>"),
        (
            '<a href="https://radiopaedia.org/a?b=1&c=2">x</a>',
            '<a href="https://radiopaedia.org/a?b=1&amp;c=2">x</a>',
        ),
        ("<img src=x onerror=alert(1)>text", "text"),
        ("<div><p>nested <span>span</span></p></div>", "<p>nested span</p>"),
        ("<ul><li>one<li>two</ul>", "<ul><li>one<li>two</li></li></ul>"),
        ("H<sub>2</sub>O, x<sup>2</sup><br/>next", "H<sub>2</sub>O, x<sup>2</sup><br>next"),
        ("a < b & c", "a &lt; b &amp; c"),
        ("<p>unclosed <em>tags", "<p>unclosed <em>tags</em></p>"),
        ("<style>p{}</style><iframe src=x>inside</iframe>after", "after"),
        ("&lt;script&gt;", "&lt;script&gt;"),
    ],
)
def test_display_html(given: str | None, shown: str) -> None:
    assert display_html(given) == shown


def test_long_document_is_kept_whole() -> None:
    text = "<p>paragraph <em>emphasis</em></p>" * 5000
    assert display_html(text) == text
