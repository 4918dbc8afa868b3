"""Manifests loaded and checked against their schema, cached by content.

A no-op plan re-reads every ``case.yaml``; composing the YAML with positions and running the
JSON Schema cost more than the rest of the per-case work, and checking a schema means importing
jsonschema. So the outcome (the loaded document and the schema problems) is kept in
``.casesync/cache/manifests.sqlite`` under a digest of everything it depends on: the file's
bytes and name, the project defaults merged into it, the schema text and casesync's version.
Like every cache in that folder it is local, rebuilt when damaged, and may be deleted.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from casesync import __version__
from casesync.files.cachedb import open_cache
from casesync.fsutil import NotRegularFile, TooLarge, read_regular
from casesync.problems import Problem
from casesync.project.schema import schema_text
from casesync.project.yamlload import MAX_DOCUMENT_BYTES, LoadedYaml, load_yaml_file

Check = Callable[[LoadedYaml], list[Problem]]
CACHE_FORMAT = f"2 {__version__} {sys.version_info[:2]}"  # marshal's format follows Python


class DocumentCache:
    """file -> (digest, marshalled outcome); one row per manifest, replaced when it changes."""

    def __init__(self, path: Path) -> None:
        self.connection = open_cache(
            path,
            [
                (
                    "CREATE TABLE IF NOT EXISTS documents"
                    " (file TEXT PRIMARY KEY, digest TEXT, entry BLOB)",
                    (),
                )
            ],
        )
        rows = self.connection.execute("SELECT file, digest, entry FROM documents")
        self.rows: dict[str, tuple[str, bytes]] = {file: (d, e) for file, d, e in rows}
        self.fresh: list[tuple[str, str, bytes]] = []

    def get(self, file: str, digest: str) -> tuple[LoadedYaml, list[Problem]] | None:
        row = self.rows.get(file)
        if row is None or row[0] != digest:
            return None
        try:
            return _decode(marshal.loads(row[1]))
        except (EOFError, ValueError, TypeError):  # damaged: computed again and replaced
            return None

    def put(self, file: str, digest: str, loaded: LoadedYaml, found: list[Problem]) -> None:
        try:
            entry = marshal.dumps(_encode(loaded, found))
        except ValueError:  # a value marshal cannot hold: simply not cached
            return
        self.fresh.append((file, digest, entry))

    def close(self) -> None:
        if self.fresh:
            with self.connection:
                self.connection.executemany(
                    "INSERT OR REPLACE INTO documents VALUES (?, ?, ?)", self.fresh
                )
        self.connection.close()


def load_checked(
    path: Path,
    display: str,
    schema: str,
    defaults: dict[str, Any],
    check: Check,
    cache: DocumentCache | None,
) -> tuple[LoadedYaml, list[Problem]]:
    """``load_yaml_file``, ``defaults`` merged under a mapping, then ``check`` (the schema).

    Raises ``YamlError`` like ``load_yaml_file``; such documents are not cached.
    """
    digest = _digest(path, display, schema, defaults) if cache else None
    hit = cache.get(display, digest) if cache and digest else None
    if hit is not None:
        return hit
    loaded = load_yaml_file(path, display)
    if isinstance(loaded.data, dict):
        loaded.data = {**defaults, **loaded.data}
    found = check(loaded)
    if cache and digest:
        cache.put(display, digest, loaded, found)
    return loaded, found


def _digest(path: Path, display: str, schema: str, defaults: dict[str, Any]) -> str | None:
    try:  # bounded, regular files only: a FIFO or /dev/zero must not hang or flood the cache key
        raw = read_regular(path, MAX_DOCUMENT_BYTES, display)
    except (OSError, NotRegularFile, TooLarge):
        return None  # load_yaml_file reports it
    digest = hashlib.sha256(CACHE_FORMAT.encode())
    for part in (display, schema, json.dumps(defaults, sort_keys=True, default=repr)):
        digest.update(part.encode() + b"\0")
    digest.update(_schema_digest(schema))
    digest.update(raw)
    return digest.hexdigest()


@cache
def _schema_digest(schema: str) -> bytes:
    return hashlib.sha256(schema_text(schema).encode()).digest()


def _encode(loaded: LoadedYaml, found: list[Problem]) -> tuple[Any, ...]:
    def problems(items: list[Problem]) -> list[tuple[Any, ...]]:
        return [
            (p.file, p.line, p.col, p.message, p.hint, p.severity, p.order, p.code) for p in items
        ]

    return (
        loaded.file,
        loaded.data,
        loaded.values,
        loaded.keys,
        problems(loaded.problems),
        problems(found),
    )


def _decode(entry: tuple[Any, ...]) -> tuple[LoadedYaml, list[Problem]]:
    file, data, values, keys, yaml_problems, found = entry
    loaded = LoadedYaml(file, data, values, keys, [Problem(*p) for p in yaml_problems])
    return loaded, [Problem(*p) for p in found]
