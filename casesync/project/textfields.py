"""The case's text fields as they will be sent: inline or from a Markdown file, rendered.

``body``, ``presentation`` (case) and ``findings`` (study) may be written inline or in a file
next to the manifest (``body_file: discussion.md``), as HTML or Markdown. The format of a field
is its own ``<field>_format``, else Markdown for a file, else the case's ``text_format``, else
HTML. Markdown is rendered and sanitised (``casesync.markdown``); HTML is sent as written but
refused when it carries active content. What is returned is exactly what is sent, so the plan's
fingerprints see a change in the Markdown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from casesync.fsutil import NotRegularFile, TooLarge, read_regular
from casesync.markdown import FORMATS, HTML, MARKDOWN, active_content, render_markdown
from casesync.problems import Problem
from casesync.project.seriesfiles import confined_file
from casesync.project.yamlload import MAX_DOCUMENT_BYTES, JsonPath, LoadedYaml

TEXT_FIELDS = ("presentation", "body", "findings")


def case_text_format(data: dict[str, Any]) -> str:
    """The case-wide default format of inline text (``text_format``, else HTML)."""
    fmt = data.get("text_format")
    return fmt if fmt in FORMATS else HTML


def text_value(
    root: Path,
    loaded: LoadedYaml,
    path: JsonPath,
    field: str,
    default_format: str,
    problems: list[Problem],
) -> str | None:
    """The text of ``field`` in the mapping at ``path``, as it will be sent (None: absent or
    unusable, with its problem reported here or by the schema)."""
    node = loaded.data
    for part in path:
        node = node[part]
    file_entry = node.get(f"{field}_file")
    fmt = node.get(f"{field}_format") or (MARKDOWN if file_entry is not None else default_format)
    if fmt not in FORMATS:
        return None  # the schema names the allowed formats
    if file_entry is not None:
        where: JsonPath = (*path, f"{field}_file")
        text = _read_text_file(root, loaded, where, file_entry, problems)
    else:
        where = (*path, field)
        text = node.get(field)
    if not isinstance(text, str):
        return None
    if fmt == MARKDOWN:
        return render_markdown(text)
    found = active_content(text)
    if found:
        problems.append(
            loaded.problem(
                where,
                f"{field} carries {found}, which Radiopaedia must never receive",
                f"remove it, or write the text in Markdown ({field}_format: markdown), "
                "which is cleaned",
                code="active-content",
            )
        )
        return None
    return text


def _read_text_file(
    root: Path, loaded: LoadedYaml, where: JsonPath, entry: object, problems: list[Problem]
) -> str | None:
    if not isinstance(entry, str) or not entry:
        return None  # the schema reports the type
    case_dir = (root / loaded.file).parent
    relpath, errors = confined_file(root, case_dir, entry)
    for what, how in errors:
        problems.append(loaded.problem(where, what, how, code="text-file-path"))
    if relpath is None:
        return None
    try:
        raw = read_regular(root / relpath, MAX_DOCUMENT_BYTES, repr(entry))
    except OSError as exc:
        problems.append(
            loaded.problem(where, f"cannot read {entry!r}: {exc.strerror}", code="file-unreadable")
        )
        return None
    except (NotRegularFile, TooLarge) as exc:
        problems.append(
            loaded.problem(
                where, exc.message, "case text is prose; keep it short", code="file-too-large"
            )
        )
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(
            loaded.problem(
                where,
                f"{entry!r} is not UTF-8 text (byte {exc.start})",
                "save it as UTF-8",
                code="not-utf8",
            )
        )
        return None
