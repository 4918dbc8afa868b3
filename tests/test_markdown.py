"""Markdown to the HTML subset a case shows, and HTML that must never reach Radiopaedia."""

import pytest

from casesync.markdown import active_content, render_markdown, render_text_field, sanitise


@pytest.mark.parametrize(
    ("markdown", "html"),
    [
        ("plain text", "<p>plain text</p>"),
        (
            "*em* _em_ **strong** __strong__",
            "<p><em>em</em> <em>em</em> <strong>strong</strong> <strong>strong</strong></p>",
        ),
        ("- a\n- b", "<ul>\n<li>a</li>\n<li>b</li>\n</ul>"),
        ("3. c\n4. d", '<ol start="3">\n<li>c</li>\n<li>d</li>\n</ol>'),
        ("T<sub>2</sub> and 10<sup>9</sup>/L", "<p>T<sub>2</sub> and 10<sup>9</sup>/L</p>"),
        ("one  \ntwo\\\nthree", "<p>one<br>\ntwo<br>\nthree</p>"),
        (
            "[site](https://radiopaedia.org/articles/x)",
            '<p><a href="https://radiopaedia.org/articles/x" rel="noopener noreferrer">site</a></p>',
        ),
        (
            "[mail](mailto:a@example.org)",
            '<p><a href="mailto:a@example.org" rel="noopener noreferrer">mail</a></p>',
        ),
        ("# Heading", "<p><strong>Heading</strong></p>"),
        ("```\nx < y\nz\n```", "<p>x &lt; y<br>\nz</p>"),
        ("a & b < c > d", "<p>a &amp; b &lt; c &gt; d</p>"),
        ("first\n\nsecond", "<p>first</p>\n<p>second</p>"),
    ],
)
def test_markdown_renders_to_the_allowed_subset(markdown: str, html: str) -> None:
    assert render_markdown(markdown) == html


@pytest.mark.parametrize(
    ("markdown", "html"),
    [
        ("<script>alert(1)</script>text", "text"),
        ("before\n\n<script>\nalert(1)\n</script>\n\nafter", "<p>before</p>\n\n<p>after</p>"),
        ("<style>p {display:none}</style>x", "x"),
        ("[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>"),
        ('<a href="javascript:alert(1)">x</a>', '<p><a rel="noopener noreferrer">x</a></p>'),
        ('<a href="java&#x09;script:alert(1)">x</a>', '<p><a rel="noopener noreferrer">x</a></p>'),
        ('<a href="data:text/html,hi">x</a>', '<p><a rel="noopener noreferrer">x</a></p>'),
        ('<img src="x" onerror="alert(1)">', ""),
        ('<p onclick="alert(1)" style="x">hi</p>', "<p>hi</p>"),
        ('<b onmouseover="alert(1)">hi</b>', "<p><b>hi</b></p>"),
        (
            "<div><p>nested <em>in <strong>div</strong></em></p></div>",
            "<p>nested <em>in <strong>div</strong></em></p>",
        ),
        ("<iframe src='https://evil.example'></iframe>after", "after"),
        (
            '<a href="https://x.org" target="_blank" rel="opener">x</a>',
            '<p><a href="https://x.org" rel="noopener noreferrer">x</a></p>',
        ),
        ("<!-- hidden -->shown", "shown"),
        ("<svg><script>alert(1)</script></svg>ok", "<p>ok</p>"),
    ],
)
def test_raw_html_in_markdown_is_sanitised_never_passed_through(markdown: str, html: str) -> None:
    assert render_markdown(markdown) == html


def test_a_long_document_renders_every_paragraph() -> None:
    paragraphs = [
        f"Paragraph {n} with *emphasis* and a [link](https://x.org/{n})." for n in range(3000)
    ]
    html = render_markdown("\n\n".join(paragraphs))
    assert html.count("<p>") == 3000
    assert html.count("<em>emphasis</em>") == 3000
    assert '<a href="https://x.org/2999" rel="noopener noreferrer">link</a>' in html


def test_deeply_nested_markup_is_flattened_not_crashed() -> None:
    html = render_markdown("<div>" * 2000 + "deep" + "</div>" * 2000)
    assert "deep" in html and "<div" not in html


def test_render_text_field_sanitises_html_too() -> None:
    assert render_text_field("<p onclick='x()'>a</p><script>b</script>", "html") == "<p>a</p>"
    assert render_text_field("*a*", "markdown") == "<p><em>a</em></p>"
    assert sanitise("<h2>t</h2><table><tr><td>c</td></tr></table>") == "tc"


@pytest.mark.parametrize(
    ("html", "found"),
    [
        ("<p>fine <b>bold</b> <a href='https://x.org'>x</a></p>", None),
        ("x<script>alert(1)</script>", "a <script> element"),
        ("<SCRIPT SRC=//evil></SCRIPT>", "a <script> element"),
        ("<p onClick='x()'>a</p>", "an event attribute (onclick) on <p>"),
        ("<img src=x onerror=alert(1)>", "an event attribute (onerror) on <img>"),
        ("<a href=' JaVa\tScRiPt:alert(1)'>a</a>", "a javascript: URL in <a href>"),
        ("<a href='java&#x09;script:alert(1)'>a</a>", "a javascript: URL in <a href>"),
        ("<iframe src='https://x.org'></iframe>", "a <iframe> element"),
        ("<br/><svg/onload=alert(1)>", "a <svg> element"),
        ("<p>3 < 4 and 5 > 2</p>", None),
    ],
)
def test_active_content_in_html_is_found(html: str, found: str | None) -> None:
    assert active_content(html) == found
