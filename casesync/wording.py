"""Small rules for messages, in one place: plurals, a hint joined to its message, and
GitHub's workflow-command form (annotations on a pull request's diff)."""

from __future__ import annotations

IRREGULAR_PLURALS = {"study": "studies", "series": "series", "more case": "more cases"}


def plural(count: int, word: str) -> str:
    """``1 file``, ``2 files``, ``0 studies``, ``3 series``."""
    return f"{count} {word if count == 1 else IRREGULAR_PLURALS.get(word, word + 's')}"


def with_hint(message: str, hint: str | None) -> str:
    """``message (hint)``; a hint that has its own parentheses or sentences, or a message that
    ends in parentheses, gets a semicolon instead, so nothing reads ``).)`` or ``) (``."""
    if not hint:
        return message
    hint = hint.strip()
    if "(" in hint or ". " in hint or hint.endswith(".") or message.endswith(")"):
        return f"{message}; {hint.rstrip('.')}"
    return f"{message} ({hint})"


def github_command(
    kind: str,
    message: str,
    *,
    file: str | None = None,
    line: int | None = None,
    col: int | None = None,
    title: str | None = None,
    case: str | None = None,
) -> str:
    """One GitHub workflow command (``::error file=...,line=...::message``), escaped as GitHub
    requires: ``%``, CR and LF in the message; also ``:`` and ``,`` in the properties."""
    if case:
        message = f"{case}: {message}"
    props = {"file": file, "line": line, "col": col, "title": title}
    shown = ",".join(
        f"{name}={_escape_property(str(value))}" for name, value in props.items() if value
    )
    return f"::{kind}{' ' + shown if shown else ''}::{_escape_data(message)}\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
