"""Manifest HTML made safe to show in the preview page.

``display_html`` is the one function the pages call. It keeps the small subset of tags
Radiopaedia shows (paragraphs, emphasis, lists, links, sub/superscript, line breaks), drops every
attribute except a safe ``href``, drops ``script``/``style`` with their content, and escapes
everything else as text. When ``casesync/markdown.py`` (nh3 sanitising, another branch) lands,
make ``display_html`` call its sanitiser instead.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

ALLOWED_TAGS = frozenset(
    {"p", "br", "em", "strong", "b", "i", "u", "sub", "sup", "ul", "ol", "li", "a", "blockquote"}
)
VOID_TAGS = frozenset({"br"})
DROP_WITH_CONTENT = frozenset({"script", "style", "iframe", "object", "template", "noscript"})
SAFE_SCHEMES = ("http://", "https://", "mailto:")


def display_html(fragment: str | None) -> str:
    """Sanitised HTML for ``fragment`` (empty for None)."""
    if not fragment:
        return ""
    parser = _Sanitiser()
    parser.feed(fragment)
    parser.close()
    return parser.result()


class _Sanitiser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._out: list[str] = []
        self._open: list[str] = []
        self._dropping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROP_WITH_CONTENT:
            self._dropping += 1
            return
        if self._dropping or tag not in ALLOWED_TAGS:
            return
        if tag == "a":
            href = dict(attrs).get("href") or ""
            safe = href.strip().lower().startswith(SAFE_SCHEMES)
            self._out.append(f'<a href="{html.escape(href.strip())}">' if safe else "<a>")
        else:
            self._out.append(f"<{tag}>")
        if tag not in VOID_TAGS:
            self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID_TAGS and not self._dropping:
            self._out.append(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROP_WITH_CONTENT:
            self._dropping = max(0, self._dropping - 1)
            return
        if self._dropping or tag not in self._open:
            return
        while self._open:
            current = self._open.pop()
            self._out.append(f"</{current}>")
            if current == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self._dropping:
            self._out.append(html.escape(data, quote=False))

    def result(self) -> str:
        return "".join(self._out) + "".join(f"</{tag}>" for tag in reversed(self._open))
