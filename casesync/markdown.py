"""Case text (discussion, presentation, findings) written in Markdown, made into safe HTML.

Authors may write these fields in Markdown instead of raw HTML inside YAML. Markdown is
rendered with markdown-it-py (CommonMark) and the result is sanitised with nh3 to the small
HTML subset a Radiopaedia case shows, so raw HTML inside the Markdown is cleaned, never passed
through. Text written as HTML is sent as written (as before), but must not carry active
content: ``active_content`` names what the validator refuses.
"""

from __future__ import annotations

from functools import cache
from html.parser import HTMLParser
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # markdown-it and nh3 are imported when a Markdown field is rendered
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

MARKDOWN = "markdown"
HTML = "html"
FORMATS = (HTML, MARKDOWN)

# What a Radiopaedia case shows: paragraphs, emphasis, lists, links, sub/superscript, breaks.
ALLOWED_TAGS = frozenset({"p", "br", "em", "strong", "i", "b", "ul", "ol", "li", "a", "sub", "sup"})
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer"

# Elements that run code, load content or take input; never sent, whatever the format.
ACTIVE_TAGS = frozenset(
    {
        "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "form",
        "input", "button", "textarea", "select", "link", "meta", "base", "svg", "math",
        "template", "noscript",
    }
)  # fmt: skip
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href", "data"})
ACTIVE_SCHEMES = ("javascript:", "vbscript:", "data:")


@cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    # CommonMark with raw HTML on: nh3 then keeps the allowed tags (so <sub>/<sup> work) and
    # drops the rest, script and style with their content.
    parser = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
    # Headings and code have no place on a case page: a heading becomes a bold paragraph, a
    # code block a paragraph with its line breaks kept.
    parser.add_render_rule("heading_open", lambda *_: "<p><strong>")
    parser.add_render_rule("heading_close", lambda *_: "</strong></p>\n")
    parser.add_render_rule("fence", _code_block)
    parser.add_render_rule("code_block", _code_block)
    return parser


def _code_block(self: object, tokens: list[Token], idx: int, *_: object) -> str:
    from markdown_it.common.utils import escapeHtml

    lines = escapeHtml(tokens[idx].content.rstrip("\n")).split("\n")
    return "<p>" + "<br>\n".join(lines) + "</p>\n"


def sanitise(html: str) -> str:
    """``html`` reduced to the allowed subset: other tags unwrapped (script and style
    dropped with their content), event attributes removed, links http/https/mailto only."""
    import nh3

    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(LINK_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )


def render_markdown(text: str) -> str:
    """Markdown to the safe HTML subset (what is sent to Radiopaedia)."""
    return sanitise(_parser().render(text)).strip()


def render_text_field(text: str, fmt: str) -> str:
    """A text field as the HTML a page may show: Markdown rendered and sanitised; HTML
    sanitised too (the preview must never run what a manifest carries)."""
    return render_markdown(text) if fmt == MARKDOWN else sanitise(text)


def active_content(html: str) -> str | None:
    """What in ``html`` could run code (a script element, an event attribute, a
    ``javascript:`` link), described without quoting the text; None when there is nothing."""
    finder = _ActiveContentFinder()
    finder.feed(html)
    finder.close()
    return finder.found


class _ActiveContentFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.found:
            return
        if tag in ACTIVE_TAGS:
            self.found = f"a <{tag}> element"
            return
        for name, value in attrs:
            if name.startswith("on"):
                self.found = f"an event attribute ({name}) on <{tag}>"
                return
            squeezed = "".join(ch for ch in value or "" if ch > " ").lower()
            if name in URL_ATTRIBUTES and squeezed.startswith(ACTIVE_SCHEMES):
                self.found = f"a {squeezed.split(':')[0]}: URL in <{tag} {name}>"
                return

    handle_startendtag = handle_starttag
