"""``GET /cases/{id}``: the website's case page, so the links apply prints lead somewhere.

The real site renders HTML for people; this page shows what the emulator holds for a case
(title, status, studies in position order, series with their slice counts). Body and findings
are the author's HTML and are shown as sent, like the site does.
"""

from __future__ import annotations

from html import escape

from aiohttp import web

from casesync.emulator.state import STATE
from casesync.emulator.vocabulary import SYSTEMS


async def case_page(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        case = state.cases[int(request.match_info["case_id"])]
    except (KeyError, ValueError):
        raise web.HTTPNotFound(text="no such case") from None
    if case.deleted:
        raise web.HTTPNotFound(text="this case was deleted by its author")
    system = SYSTEMS.get(case.system_id, str(case.system_id)) if case.system_id else "-"
    finished = "upload finished" if case.upload_finished else "uploading"
    parts = [
        f"<h1>{escape(str(case.title))}</h1>",
        f"<p>Case {case.id} &middot; {escape(case.status)} &middot; {escape(case.visibility)}"
        f" &middot; {finished} &middot; system: {escape(system)}</p>",
        f"<section>{case.body or ''}</section>",
    ]
    studies = sorted((state.studies[i] for i in case.study_ids), key=lambda s: s.position or 0)
    for study in studies:
        caption = f": {escape(str(study.caption))}" if study.caption else ""
        parts.append(
            f"<h2>Study {study.position} &middot; {escape(str(study.modality))}{caption}</h2>"
        )
        parts.append(f"<div>{study.findings or ''}</div><ul>")
        for job_id in study.job_ids:
            series = state.series[job_id]
            label = ", ".join(str(x) for x in (series.perspective, series.specifics) if x)
            parts.append(
                f"<li>{escape(label or 'series')}: {len(series.upload_ids)} images "
                f"({escape(series.image_format)}), root slice {series.root_index}</li>"
            )
        parts.append("</ul>")
    html = "<!doctype html><meta charset=utf-8><title>{}</title>{}".format(
        escape(str(case.title)), "\n".join(parts)
    )
    return web.Response(text=html, content_type="text/html")
