"""The preview's HTML: Python string templates, inline CSS and JS, no external URL anywhere.

Every page carries a Content-Security-Policy that allows only its own inline script (by hash),
inline styles, and images from the preview folder: even if sanitising missed something, a
script in a manifest could not run and nothing could be fetched from elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from html import escape

from casesync.markdown import sanitise
from casesync.preview.images import IMG_DIR, SliceView
from casesync.preview.pixels import FILE_WINDOW, Window

CSS = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f4f4;color:#222}
main{max-width:1100px;margin:0 auto;padding:1rem 1.5rem;background:#fff;min-height:100vh}
h1{margin:.2rem 0}.meta{color:#555}.meta span+span:before{content:" \\00b7  "}
.banner{background:#333;color:#fff;padding:.4rem 1.5rem;font-size:.9rem}
.study{border-top:1px solid #ddd;margin-top:1rem;padding-top:.5rem}
.study-body{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}
.series{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start;max-width:100%}
.findings{flex:1;min-width:260px}.findings h3{margin:.2rem 0}
.stack{outline:none;width:min(480px,100%)}.stack:focus .viewer{box-shadow:0 0 0 3px #4a90d9}
.viewer{background:#000;aspect-ratio:1;display:flex;align-items:center;justify-content:center}
.viewer img,.viewer video{max-width:100%;max-height:100%;width:100%;height:100%;object-fit:contain}
.controls{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap;font-size:.85rem}
.controls input{flex:1}.presets button[aria-pressed=true]{background:#4a90d9;color:#fff}
.note{color:#a40;font-size:.85rem}
.review figure{display:flex;gap:1rem;border-top:1px solid #ddd;padding:.5rem 0;margin:0}
.review img{min-width:min(512px,100%);max-width:100%;image-rendering:auto;background:#000}
.review dl{display:grid;grid-template-columns:auto 1fr;gap:0 .8rem;margin:0;font-size:.9rem;
flex:1 1 240px;align-content:start}.review dd{margin:0;overflow-wrap:anywhere}
.review dt{color:#666}.flag-YES{color:#b00;font-weight:bold}
"""

JS = """
document.querySelectorAll('.stack').forEach(function (stack) {
  var data = JSON.parse(stack.querySelector('script.slices').textContent);
  var img = stack.querySelector('.slice');
  var range = stack.querySelector('input[type=range]');
  var pos = stack.querySelector('.pos');
  var count = data.file.length;
  function show(i) {
    i = Math.max(0, Math.min(count - 1, i));
    stack.dataset.index = i;
    img.src = data[stack.dataset.preset][i];
    range.value = i;
    pos.textContent = 'slice ' + (i + 1) + ' / ' + count;
  }
  function step(d) { show(Number(stack.dataset.index) + d); }
  stack.addEventListener('wheel', function (e) {
    if (e.deltaY === 0) { return; }
    e.preventDefault();
    step(e.deltaY > 0 ? 1 : -1);
  }, {passive: false});
  stack.addEventListener('keydown', function (e) {
    var moves = {ArrowDown: 1, ArrowRight: 1, PageDown: 10, ArrowUp: -1, ArrowLeft: -1,
                 PageUp: -10, Home: -count, End: count};
    if (e.target === range || !(e.key in moves)) { return; }
    e.preventDefault();
    step(moves[e.key]);
  });
  range.addEventListener('input', function () { show(Number(range.value)); });
  stack.querySelectorAll('button[data-preset]').forEach(function (button) {
    button.addEventListener('click', function () {
      stack.dataset.preset = button.dataset.preset;
      stack.querySelectorAll('button[data-preset]').forEach(function (b) {
        b.setAttribute('aria-pressed', String(b === button));
      });
      show(Number(stack.dataset.index));
    });
  });
});
"""

_SCRIPT_HASH = base64.b64encode(hashlib.sha256(JS.encode()).digest()).decode()
CSP = (
    "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{_SCRIPT_HASH}'"
)


@dataclass(frozen=True)
class SeriesView:
    label: str
    slices: list[SliceView]
    root_index: int
    windows: tuple[Window, ...]
    video: bool
    review_href: str


@dataclass(frozen=True)
class StudyView:
    modality: str
    caption: str | None
    findings: str | None
    series: list[SeriesView]


@dataclass(frozen=True)
class CaseView:
    key: str
    href: str
    title: str
    meta: list[str]
    presentation: str | None
    body: str | None
    studies: list[StudyView]


def _page(title: str, content: str, script: bool = False) -> str:
    js = f"<script>{JS}</script>" if script else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        '<div class="banner">casesync preview: local only, not on Radiopaedia</div>'
        f"<main>{content}</main>{js}</body></html>\n"
    )


def index_page(cases: list[CaseView]) -> str:
    items = "".join(
        f'<li><a href="{escape(c.href)}">{escape(c.title)}</a> <code>{escape(c.key)}</code></li>'
        for c in cases
    )
    return _page("casesync preview", f'<h1>Cases</h1><ul class="cases">{items}</ul>')


def case_page(case: CaseView) -> str:
    meta = "".join(f"<span>{escape(item)}</span>" for item in case.meta)
    parts = [
        '<p><a href="../index.html">All cases</a></p>',
        f'<h1 class="title">{escape(case.title)}</h1><p class="meta">{meta}</p>',
        _section("Presentation", "presentation", case.presentation),
    ]
    for number, study in enumerate(case.studies, start=1):
        parts.append(_study(number, study))
    parts.append(_section("Discussion", "discussion", case.body))
    return _page(case.title, "".join(parts), script=True)


def _section(heading: str, css_class: str, html_text: str | None) -> str:
    if not html_text:
        return ""
    return f'<section class="{css_class}"><h2>{heading}</h2>{sanitise(html_text)}</section>'


def _study(number: int, study: StudyView) -> str:
    caption = f": {escape(study.caption)}" if study.caption else ""
    stacks = "".join(_stack(series) for series in study.series)
    findings = sanitise(study.findings) if study.findings else ""
    return (
        f'<section class="study" id="study-{number}"><h2>{escape(study.modality)}{caption}</h2>'
        f'<div class="study-body"><div class="series">{stacks}</div>'
        f'<div class="findings"><h3>Findings</h3>{findings}</div></div></section>'
    )


def _stack(series: SeriesView) -> str:
    urls = {
        w.name: [f"../{IMG_DIR}/{s.images[w.name]}" for s in series.slices] for w in series.windows
    }
    data = json.dumps(urls).replace("</", "<\\/")
    index, count = series.root_index, len(series.slices)
    src = escape(urls[FILE_WINDOW.name][index])
    tag = (
        f'<video class="slice" controls src="{src}"></video>'
        if series.video
        else (f'<img class="slice" alt="slice" src="{src}">')
    )
    buttons = (
        "".join(
            f'<button type="button" data-preset="{w.name}" '
            f'aria-pressed="{str(w == FILE_WINDOW).lower()}">{escape(w.label)}</button>'
            for w in series.windows
        )
        if len(series.windows) > 1
        else ""
    )
    notes = sorted({s.note for s in series.slices if s.note})
    note = "".join(f'<p class="note">{escape(n)}</p>' for n in notes)
    return (
        f'<div class="stack" tabindex="0" data-index="{index}" data-count="{count}" '
        f'data-preset="{FILE_WINDOW.name}"><script type="application/json" class="slices">'
        f'{data}</script><div class="label">{escape(series.label)}</div>'
        f'<div class="viewer">{tag}</div><div class="controls">'
        f'<input type="range" min="0" max="{count - 1}" value="{index}" aria-label="slice">'
        f'<span class="pos">slice {index + 1} / {count}</span></div>'
        f'<div class="controls presets">{buttons}</div>{note}'
        f'<p><a class="review-link" href="{escape(series.review_href)}">Review every slice '
        "for burned-in text</a></p></div>"
    )


def review_page(case: CaseView, study: StudyView, series: SeriesView) -> str:
    figures = []
    for number, item in enumerate(series.slices, start=1):
        src = f"../{IMG_DIR}/{item.images[FILE_WINDOW.name]}"
        media = (
            f'<video controls src="{escape(src)}"></video>'
            if series.video
            else f'<img loading="lazy" alt="slice {number}" src="{escape(src)}">'
        )
        flag = item.burned_in or "n/a (not DICOM)"
        rows = [
            (
                "Slice",
                f"{number} / {len(series.slices)}"
                + (" (root image)" if number - 1 == series.root_index else ""),
            ),
            ("File", item.path),
            ("SOP class", item.sop_class or "n/a (not DICOM)"),
        ]
        cells = "".join(f"<dt>{k}</dt><dd>{escape(v)}</dd>" for k, v in rows)
        cells += (
            f'<dt>BurnedInAnnotation</dt><dd class="flag flag-{escape(flag)}">{escape(flag)}</dd>'
        )
        if item.note:
            cells += f'<dt>Note</dt><dd class="note">{escape(item.note)}</dd>'
        figures.append(f'<figure class="review-slice">{media}<dl>{cells}</dl></figure>')
    heading = f"{case.title}: {study.modality}, {series.label}"
    intro = (
        f'<p><a href="index.html">Back to the case</a></p><h1>Review: {escape(heading)}</h1>'
        "<p>Every slice at full size, in upload order. Look for names, dates or ids burned "
        "into the pixels. Only when there are none, set <code>burned_in_annotation: reviewed"
        "</code> on this series.</p>"
    )
    return _page(f"Review: {heading}", intro + f'<div class="review">{"".join(figures)}</div>')
