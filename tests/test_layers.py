"""Imports only go down the layers: the package tree in the README is the architecture.

cli -> sync -> project -> phi -> files; a few modules every layer may use; the API client only
for sync and cli (planning is offline); the emulator only for cli (demo, emulator command).
Every ``casesync`` import is read from the source (ast), lazy ones inside functions too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import casesync

PACKAGE = Path(casesync.__file__).parent
# top to bottom: a layer may import its own and the ones below it
LAYERS = ("cli", "preview", "sync", "project", "phi", "files")
SHARED = (
    "casesync",  # __init__: the version
    "casesync.api.models",
    "casesync.api.vocab",
    "casesync.errors",
    "casesync.settings",
    "casesync.fsutil",
    "casesync.problems",
    "casesync.markdown",
    "casesync.wording",  # plurals, hints, GitHub's annotation form
    "casesync.api.logins",  # the credentials file: settings looks at the stored logins
)
API_USERS = ("cli", "sync", "api")
ONLINE = ("casesync.api.",)  # what offline modules never import (besides SHARED)
OFFLINE = ("casesync.project", "casesync.sync.plan")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(source: str, importer: str) -> Iterator[tuple[int, str]]:
    """(line, module) for every casesync module ``source`` imports, however it is spelled."""
    package = importer if is_module(importer + ".__init__") else importer.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from its package upwards
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            for alias in node.names:
                name = f"{base}.{alias.name}"
                yield node.lineno, name if is_module(name) else base


def layer(module: str) -> str:
    """The sub-package a module belongs to, or the module itself at the top."""
    parts = module.split(".")
    return (
        parts[1]
        if len(parts) > 2 or (len(parts) == 2 and is_module(module + ".__init__"))
        else module
    )


def wrong_way(importer: str, target: str) -> str | None:
    """Why ``importer`` may not import ``target``; None when it may."""
    if target.split(".")[0] != "casesync":
        return None
    mine, theirs = layer(importer), layer(target)
    if mine == "emulator" and theirs != "emulator":
        return emulator_rule(target)
    if mine == theirs and not (importer.startswith(OFFLINE) and target.startswith(ONLINE)):
        return None
    if target in SHARED:
        return None
    if importer == "casesync.__main__":
        return None if theirs == "cli" else "__main__ only starts the CLI"
    if theirs == "emulator":
        return None if mine == "cli" else "only the CLI (demo, emulator command) runs the emulator"
    if theirs == "api":
        if importer.startswith(OFFLINE):
            return "planning and validation are offline: no API client"
        return None if mine in API_USERS else f"only {', '.join(API_USERS)} talk to the server"
    if mine == "api":
        return "api is below every layer; it imports only api and the shared modules"
    if mine in LAYERS and theirs in LAYERS:
        if LAYERS.index(theirs) >= LAYERS.index(mine):
            return None
        return f"{mine} is below {theirs}: imports go down only"
    return f"{importer} is a shared module: it imports only other shared modules"


def emulator_rule(target: str) -> str | None:
    """The emulator checks the client: it shares no API knowledge with it (not even vocab)."""
    if layer(target) == "phi" or (target in SHARED and target != "casesync.api.vocab"):
        return None
    return "the emulator is built from docs/protocol.md, not from the client"


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        for line, target in imports(path.read_text(encoding="utf-8"), importer):
            why = wrong_way(importer, target)
            if why:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {target} ({why})")
    return found


def test_imports_only_go_down() -> None:
    assert violations() == []


def test_the_checker_reads_every_spelling_of_an_import() -> None:
    source = (
        "import casesync.sync.plan\n"
        "from casesync.api import client\n"
        "from casesync.api.client import RadiopaediaClient\n"
        "def later():\n"
        "    from . import schema\n"
        "    from ..sync import journal\n"
    )
    found = list(imports(source, "casesync.project.validate"))
    assert found == [
        (1, "casesync.sync.plan"),
        (2, "casesync.api.client"),
        (3, "casesync.api.client"),
        (5, "casesync.project.schema"),
        (6, "casesync.sync.journal"),
    ]


def test_the_checker_refuses_each_wrong_way() -> None:
    wrong = [
        ("casesync.sync.executor", "casesync.cli.progress"),  # up
        ("casesync.files.hashing", "casesync.project.manifest"),  # up
        ("casesync.sync.plan", "casesync.api.client"),  # planning is offline
        ("casesync.project.manifest", "casesync.api.wire"),
        ("casesync.phi.gate", "casesync.api.client"),
        ("casesync.api.credentials", "casesync.sync.lockfile"),
        ("casesync.sync.apply", "casesync.emulator.server"),
        ("casesync.emulator.api", "casesync.api.vocab"),  # its vocabulary is its own
        ("casesync.emulator.api", "casesync.api.client"),
        ("casesync.emulator.state", "casesync.sync.lockfile"),
        ("casesync.errors", "casesync.sync.journal"),
        ("casesync.preview.build", "casesync.cli.render"),
    ]
    for importer, target in wrong:
        assert wrong_way(importer, target), (importer, target)
    right = [
        ("casesync.cli.app", "casesync.sync.apply"),
        ("casesync.cli.demo", "casesync.emulator.server"),
        ("casesync.sync.executor", "casesync.api.models"),
        ("casesync.sync.apply", "casesync.api.client"),
        ("casesync.sync.plan", "casesync.project.manifest"),
        ("casesync.project.validate", "casesync.phi.gate"),
        ("casesync.phi.anonymise", "casesync.files.formats"),
        ("casesync.api.credentials", "casesync.fsutil"),
        ("casesync.emulator.anonymiser_check", "casesync.phi.policy"),
        ("casesync.preview.build", "casesync.sync.workflow"),
        ("casesync.__main__", "casesync.cli.app"),
        ("casesync.settings", "casesync.errors"),
        ("casesync.project.validate", "json"),
    ]
    for importer, target in right:
        assert wrong_way(importer, target) is None, (importer, target)
