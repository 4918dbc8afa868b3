"""Safe YAML loading that remembers where every value came from.

Errors must point at ``file:line:col``, so documents are composed into nodes (safe tags only),
checked for duplicate keys, size and alias expansion, then turned into plain Python values with
a side table of positions keyed by the value's path (``("studies", 0, "modality")``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from casesync.fsutil import NotRegularFile, TooLarge, read_regular
from casesync.problems import Problem

MAX_DOCUMENT_BYTES = 1024 * 1024  # a case manifest is text; a megabyte is already absurd
MAX_NODES = 100_000  # bounds alias expansion ("billion laughs")
MAX_DEPTH = 64  # a manifest nests about 5 deep; far deeper would exhaust Python's stack

# libyaml's composer when present (several times faster), the pure-Python one otherwise.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
PLAIN_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
BOOL_TAG = "tag:yaml.org,2002:bool"
YAML12_BOOLEANS = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})

JsonPath = tuple[str | int, ...]


@dataclass
class LoadedYaml:
    """A document's plain value plus the 1-based (line, col) of every value and mapping key."""

    file: str
    data: Any
    values: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)  # non-fatal: duplicate keys

    def where(self, path: JsonPath) -> tuple[int, int]:
        """The closest known position of ``path``: itself, else its nearest ancestor."""
        for depth in range(len(path), -1, -1):
            found = self.values.get(path[:depth])
            if found:
                return found
        return (1, 1)

    def where_key(self, path: JsonPath) -> tuple[int, int]:
        """Where the key of ``path`` is written (for "unknown field" style errors)."""
        return self.keys.get(path) or self.where(path)

    def problem(
        self, path: JsonPath, message: str, hint: str | None = None, *, code: str
    ) -> Problem:
        line, col = self.where(path)
        return Problem(self.file, line, col, message, hint, code=code)


class YamlError(Exception):
    """The document cannot be loaded at all; carries its position."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def load_yaml_file(path: Path, display: str) -> LoadedYaml:
    """Load one YAML document from ``path``; ``display`` is the name used in messages."""
    try:
        raw = read_regular(path, MAX_DOCUMENT_BYTES, display)
    except OSError as exc:
        raise YamlError(
            Problem(display, 1, 1, f"cannot read file: {exc.strerror}", code="file-unreadable")
        ) from None
    except (NotRegularFile, TooLarge) as exc:
        raise YamlError(
            Problem(display, 1, 1, exc.message, exc.hint, code="file-too-large")
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(
            Problem(
                display,
                1,
                1,
                f"not UTF-8 text (byte {exc.start})",
                "save it as UTF-8",
                code="not-utf8",
            )
        ) from None
    return load_yaml_text(text, display)


def load_yaml_text(text: str, display: str) -> LoadedYaml:
    """Compose ``text`` with the safe loader and convert it, keeping positions."""
    try:
        node = yaml.compose(text, Loader=SAFE_LOADER)
    except yaml.MarkedYAMLError as exc:
        raise YamlError(syntax_problem(display, text, exc)) from None
    except yaml.YAMLError as exc:
        raise YamlError(Problem(display, 1, 1, f"YAML syntax: {exc}", code="yaml-syntax")) from None
    loaded = LoadedYaml(display, None)
    if node is None:
        return loaded
    converter = _Converter(loaded)
    loaded.data = converter.convert(node, ())
    return loaded


class _Converter:
    """Turns composed nodes into plain values, refusing duplicate keys and alias bombs."""

    def __init__(self, loaded: LoadedYaml) -> None:
        self.loaded = loaded
        self.count = 0
        self.constructor = yaml.SafeLoader("")

    def convert(self, node: yaml.Node, path: JsonPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlError(
                self._problem(
                    node,
                    f"document expands to over {MAX_NODES} values",
                    "remove aliases",
                    code="yaml-too-large",
                )
            )
        if len(path) > MAX_DEPTH:
            raise YamlError(
                self._problem(
                    node,
                    f"values nested over {MAX_DEPTH} levels deep",
                    "flatten it",
                    code="yaml-too-large",
                )
            )
        self.loaded.values[path] = _position(node)
        if isinstance(node, yaml.CollectionNode) and node.tag not in PLAIN_COLLECTION_TAGS:
            raise YamlError(
                self._problem(node, f"unsupported value: tag {node.tag!r}", code="yaml-tag")
            )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        if node.tag == BOOL_TAG and node.value not in YAML12_BOOLEANS:
            return node.value  # YAML 1.2: yes/no/on/off are strings (the schema says so)
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise YamlError(
                self._problem(node, f"unsupported value: {what}", code="yaml-value")
            ) from None
        # Dates stay text: manifests are JSON-shaped, and "age: 1990-01-01" must be seen as such.
        return value.isoformat() if isinstance(value, dt.date) else value

    def _mapping(self, node: yaml.MappingNode, path: JsonPath) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlError(
                    self._problem(
                        key_node, "merge keys (<<) are not supported", code="yaml-merge-key"
                    )
                )
            key = self.convert(key_node, (*path, "<key>"))
            if not isinstance(key, str):
                raise YamlError(
                    self._problem(
                        key_node,
                        f"mapping key of type {type(key).__name__}: keys are field names",
                        "write a field name; quote it ('1') if it really is text",
                        code="yaml-key",
                    )
                )
            key_path = (*path, key)
            if key in result:
                first = self.loaded.keys[key_path]
                self.loaded.problems.append(
                    self._problem(
                        key_node,
                        f"duplicate key {key!r} (first at line {first[0]})",
                        "remove one of them",
                        code="duplicate-key",
                    )
                )
                continue
            self.loaded.keys[key_path] = _position(key_node)
            result[key] = self.convert(value_node, key_path)
        self.loaded.values.pop((*path, "<key>"), None)
        return result

    def _problem(
        self, node: yaml.Node, message: str, hint: str | None = None, *, code: str
    ) -> Problem:
        line, col = _position(node)
        return Problem(self.loaded.file, line, col, message, hint, code=code)


def _position(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


# libyaml's and PyYAML's wording -> what is wrong, in words (first match wins)
_SYNTAX_EXPLAINED = (
    ("'-' indicator", "this line is not a list item ('- ...') but is indented like one"),
    ("expected <block end>", "this line is not indented like the lines around it"),
    ("did not find expected key", "this line is not indented like the keys above it"),
    (
        "mapping values are not allowed",
        "a second ': ' on one line, or a line indented more than the key above it; "
        "quote text that contains ': '",
    ),
    ("could not find expected ':'", "a line without 'key: value' (a missing ':'?)"),
    ("unexpected end of stream", "a quote opened here is never closed"),
    ("',' or ']'", "a '[' list opened here is never closed with ']'"),
    ("',' or '}'", "a '{' mapping opened here is never closed with '}'"),
    ("undefined alias", "'*' starts a reference to an anchor that does not exist; quote the text"),
    ("cannot start any token", "a character that cannot start a value: quote the text"),
)
_CONTEXT_FIRST = (
    "could not find expected ':'",
    "unexpected end of stream",
    "',' or ']'",
    "',' or '}'",
)


def syntax_problem(display: str, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    """A YAML syntax error in words, at the line to fix, with that line shown."""
    raw = str(exc.problem or "invalid YAML")
    explained = next((words for key, words in _SYNTAX_EXPLAINED if key in raw), raw)
    first = exc.context_mark if any(k in raw for k in _CONTEXT_FIRST) else exc.problem_mark
    mark = first or exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    lines = text.splitlines()
    shown = lines[line - 1] if 0 < line <= len(lines) else ""
    if "\t" in shown[: col or 1] and "cannot start any token" in raw:
        explained = "a tab character: YAML indents with spaces only"
    hint = f"line {line} is: {shown.strip()[:80]!r}" if shown.strip() else None
    return Problem(display, line, col, f"YAML syntax error: {explained}", hint, code="yaml-syntax")
