"""``casesync init``: a new project (or casesync added to an existing repo), and editor schemas.

Never overwrites a file the user already has. Every YAML file it writes starts with a
``yaml-language-server`` line pointing at the schema copies in ``.casesync-schemas/``, a folder
meant to be committed, so editors offer completion and help in every clone;
``refresh_editor_schemas`` keeps those copies current. The sample case is marked
``sample: true``: validate warns and apply refuses it, since the API cannot delete a case.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from casesync.fsutil import atomic_write, ensure_dir, read_regular, refuse_symlink
from casesync.project.schema import EDITOR_SCHEMAS_DIR, schema_header, schema_text
from casesync.settings import PROJECT_FILE, STATE_DIR

GITIGNORE_ENTRY = f"{STATE_DIR}/"
LEGACY_SCHEMAS_DIR = f"{STATE_DIR}/schemas"  # git-ignored; headers written before 0.2 use it

PROJECT_TEMPLATE = """\
version: 1
# api_url: https://radiopaedia.org   # --api-url and CASESYNC_API_URL override it
cases: ["cases/**/case.yaml"]
defaults:
  suitable_for_quiz: false
"""

CASE_TEMPLATE = """\
sample: true                   # casesync init's sample: apply refuses it; remove this line
                               # once the case is your own (or delete this folder)
# key: example-case            # stable identity; default: this folder's path
title: Example case (edit me)
system: Musculoskeletal
diagnostic_certainty: Probable
presentation: Describe the clinical presentation.
age: 40 years
body: <p>Discussion of the case.</p>   # HTML; or Markdown with the line below
# text_format: markdown        # presentation, body and findings in Markdown (or body_file: x.md)
studies:
  - modality: X-ray
    caption: Frontal radiograph
    findings: <p>Findings.</p>
    series:
      - images: images          # a folder, a file, or a list of files/globs
        perspective: Frontal
"""


def refresh_editor_schemas(root: Path, *, create: bool = False) -> None:
    """Bring the schema copies up to date with this casesync (after an upgrade). Only the
    folders that exist are refreshed (validate must not add files to a repository), unless
    ``create`` (init). A symlink on the way is refused, never written through."""
    for folder in (root / EDITOR_SCHEMAS_DIR, root / LEGACY_SCHEMAS_DIR):
        if not folder.is_dir() and not (create and folder.name == EDITOR_SCHEMAS_DIR):
            continue
        ensure_dir(root, folder)
        for name in ("case", "project", "lock"):
            target = folder / f"{name}.schema.json"
            text = schema_text(name)
            if not target.exists() or read_regular(target, None, follow=False) != text.encode():
                atomic_write(target, text)


def init_project(root: Path) -> list[str]:
    """Create what is missing of a project in ``root``; return what was written."""
    root.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    project_file = root / PROJECT_FILE
    if not project_file.exists():
        atomic_write(project_file, schema_header(project_file, root, "project") + PROJECT_TEMPLATE)
        written.append(PROJECT_FILE)
    case_dir = root / "cases" / "example-case"
    if not (root / "cases").exists():
        (case_dir / "images").mkdir(parents=True)
        case_file = case_dir / "case.yaml"
        atomic_write(case_file, schema_header(case_file, root, "case") + CASE_TEMPLATE)
        atomic_write(case_dir / "images" / "frontal.png", sample_png())
        written += ["cases/example-case/case.yaml", "cases/example-case/images/frontal.png"]
    if _add_gitignore_entry(root / ".gitignore"):
        written.append(".gitignore")
    if not (root / EDITOR_SCHEMAS_DIR).exists():
        written.append(f"{EDITOR_SCHEMAS_DIR}/")
    refresh_editor_schemas(root, create=True)
    return written


def _add_gitignore_entry(gitignore: Path) -> bool:
    refuse_symlink(gitignore)
    existing = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    if any(line.strip() in (GITIGNORE_ENTRY, STATE_DIR) for line in existing.splitlines()):
        return False
    separator = "" if not existing or existing.endswith("\n") else "\n"
    comment = "# casesync: local caches, journal and keys (never commit)\n"
    atomic_write(gitignore, existing + separator + comment + GITIGNORE_ENTRY + "\n")
    return True


def sample_png(width: int = 64, height: int = 64, seed: int | None = None) -> bytes:
    """A greyscale PNG with no metadata: a gradient, or pixels unique to ``seed`` (for tests
    and benchmarks that need many distinct files)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    if seed is None:
        row = bytes((x * 4) % 256 for x in range(width))
        rows = b"".join(b"\x00" + row for _ in range(height))
    else:
        pixels = seed.to_bytes(8, "big") * (width * height // 8 + 1)
        rows = b"".join(b"\x00" + pixels[y * width : (y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
