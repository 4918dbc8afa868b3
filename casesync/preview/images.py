"""Every slice of a series as files under ``<out>/img``, written once and named by content.

A rendered DICOM slice is named by a digest of (renderer version, the file's sha256, the window
preset), so a second run finds every image already there and writes nothing; other formats are
copied as they are, named by their sha256. A decoding failure is remembered in a ``.note`` file
next to the placeholder, so the note is shown again on later runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from casesync.files import formats
from casesync.preview import pixels
from casesync.preview.output import exists_regular, write_if_changed
from casesync.project.manifest import ImageFile, SeriesSpec

RENDERER_VERSION = "1"
IMG_DIR = "img"
COPY_EXTENSIONS = {
    formats.PNG: ".png",
    formats.JPEG: ".jpg",
    formats.GIF: ".gif",
    formats.BMP: ".bmp",
    formats.MP4: ".mp4",
}


@dataclass(frozen=True)
class SliceView:
    """One slice as the pages show it; ``images`` maps a preset name to a file under img/."""

    path: str
    images: dict[str, str]
    sop_class: str | None = None  # None for non-DICOM files
    burned_in: str | None = None
    note: str | None = None


@dataclass
class ImageStore:
    folder: Path
    written: int = 0
    reused: int = 0
    _seen: dict[tuple[str, str], SliceView] = field(default_factory=dict)

    def series(
        self, root: Path, spec: SeriesSpec, windows: tuple[pixels.Window, ...]
    ) -> list[SliceView]:
        """Views of every slice in slice order, rendering only what is not on disk yet."""
        return [self._slice(root, file, spec.image_format, windows) for file in spec.files]

    def _slice(
        self, root: Path, file: ImageFile, image_format: str, windows: tuple[pixels.Window, ...]
    ) -> SliceView:
        memo = (file.sha256, ",".join(w.params for w in windows))
        if memo in self._seen:  # the same file twice in one preview: render it once
            return SliceView(file.path, *_tail(self._seen[memo]))
        if image_format == formats.DICOM:
            view = self._dicom(root / file.path, file, windows)
        else:
            view = self._copy(root / file.path, file, COPY_EXTENSIONS.get(image_format, ""))
        self._seen[memo] = view
        return view

    def _dicom(self, path: Path, file: ImageFile, windows: tuple[pixels.Window, ...]) -> SliceView:
        names = {w.name: _rendered_name(file.sha256, w) for w in windows}
        note_path = self.folder / (_rendered_name(file.sha256, pixels.FILE_WINDOW) + ".note")
        if all(exists_regular(self.folder / name) for name in names.values()):
            self.reused += len(names)
            info = pixels.read_info(path)
            note = note_path.read_text(encoding="utf-8") if exists_regular(note_path) else None
        else:
            rendered = pixels.render_dicom(path, windows)
            for window_name, name in names.items():
                self._put(name, rendered.pngs[window_name])
            if rendered.note:
                self._put(note_path.name, rendered.note.encode())
            info, note = rendered.info, rendered.note
        return SliceView(file.path, names, info.sop_class, info.burned_in, note)

    def _copy(self, path: Path, file: ImageFile, extension: str) -> SliceView:
        name = file.sha256 + extension
        if exists_regular(self.folder / name):
            self.reused += 1
        else:
            self._put(name, path.read_bytes())
        return SliceView(file.path, {pixels.FILE_WINDOW.name: name})

    def _put(self, name: str, data: bytes) -> None:
        if write_if_changed(self.folder / name, data):
            self.written += 1
        else:
            self.reused += 1


def _rendered_name(sha256: str, window: pixels.Window) -> str:
    key = f"{RENDERER_VERSION}|{sha256}|{window.params}"
    return hashlib.sha256(key.encode()).hexdigest()[:32] + ".png"


def _tail(view: SliceView) -> tuple[dict[str, str], str | None, str | None, str | None]:
    return view.images, view.sop_class, view.burned_in, view.note
