"""The presigned-URL side of uploads: direct_s3_uploads hands out URLs, ``PUT /s3/...`` takes bytes.

Like S3, the PUT trusts only the query-string signature: an Authorization header is a second
auth mechanism (400), a bad signature or an expired URL is 403. Bodies are streamed and hashed
as they arrive; bytes whose SHA-256 differs from the hash the URL was issued for are discarded.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from typing import Any

from aiohttp import web

from casesync.emulator.oauth import require_user
from casesync.emulator.state import STATE, State, Upload

CHUNK = 1 << 16
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _signature(state: State, key: str, expires: int, method: str = "PUT") -> str:
    message = f"{method}\n/s3/{key}\n{expires}".encode()
    return hmac.new(state.signing_key.encode(), message, hashlib.sha256).hexdigest()


def presigned_get_url(request: web.Request, sha256: str) -> str:
    """A GET URL for a stored original (row 11), valid for the URL lifetime from now."""
    state = request.app[STATE]
    key = f"originals/{sha256}"
    expires = int(state.now() + state.config.url_ttl)
    signature = _signature(state, key, expires, "GET")
    return f"{request.url.origin()}/s3/{key}?expires={expires}&signature={signature}"


def presigned_url(request: web.Request, upload: Upload) -> str:
    """An absolute URL on this emulator's own host, valid until ``upload.expires_at``."""
    state = request.app[STATE]
    key = f"uploads/{upload.id}/{upload.sha256}"
    expires = math.ceil(upload.expires_at or 0)  # never shorter than the URL's lifetime
    origin = request.url.origin()
    return f"{origin}/s3/{key}?expires={expires}&signature={_signature(state, key, expires)}"


async def direct_s3_uploads(request: web.Request) -> web.Response:
    """POST /direct_s3_uploads: one entry per hash, in order, each with a new upload id."""
    state = request.app[STATE]
    user = require_user(request)
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "body is not JSON"}, status=400)
    hashes = body.get("sha256") if isinstance(body, dict) else None
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        return web.json_response({"error": "sha256 must be a list of hex digests"}, status=400)
    normalised = [h.lower() for h in hashes]
    bad = [h for h in normalised if not SHA256_HEX.fullmatch(h)]
    if bad:
        return web.json_response({"error": f"not a SHA-256 hex digest: {bad[0][:80]}"}, status=400)
    now = state.now()
    entries: list[dict[str, Any]] = []
    for sha in normalised:
        stored = sha in state.blobs
        upload = Upload(
            id=state.next_id("upload"),
            user_id=user.id,
            sha256=sha,
            status="already_uploaded" if stored else "url_issued",
            issued_at=now,
            expires_at=None if stored else now + state.config.url_ttl,
        )
        state.uploads[upload.id] = upload
        if stored:
            entries.append({"id": upload.id, "status": "already_uploaded"})
        else:
            entries.append({"id": upload.id, "url": presigned_url(request, upload)})
    state.dirty = True
    return web.json_response({"uploads": entries})


def _s3_error(status: int, code: str, message: str) -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


def _signature_problem(request: web.Request, method: str) -> web.Response | None:
    """What S3 answers to a request whose query-string signature it does not accept."""
    state = request.app[STATE]
    if "Authorization" in request.headers:
        return _s3_error(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the query-string signature or the "
            "Authorization header should be specified",
        )
    key = request.match_info["key"]
    expires_text = request.query.get("expires", "")
    signature = request.query.get("signature", "")
    if not expires_text.isdigit() or not hmac.compare_digest(
        signature, _signature(state, key, int(expires_text), method)
    ):
        return _s3_error(403, "SignatureDoesNotMatch", "The request signature does not match.")
    if int(expires_text) < state.now():
        return _s3_error(403, "AccessDenied", "Request has expired")
    return None


async def get_object(request: web.Request) -> web.StreamResponse:
    """GET /s3/originals/{sha256}: an original file, for a signed URL from row 11."""
    problem = _signature_problem(request, "GET")
    if problem is not None:
        return problem
    kind, _, sha = request.match_info["key"].partition("/")
    data = await request.app[STATE].blobs.get(sha) if kind == "originals" else None
    if data is None:
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
    return web.Response(body=data, content_type="application/octet-stream")


async def put_object(request: web.Request) -> web.Response:
    """PUT /s3/{key}: check the signature, stream and hash the body, store it if it matches."""
    state = request.app[STATE]
    problem = _signature_problem(request, "PUT")
    if problem is not None:
        return problem
    _, upload_id, sha = request.match_info["key"].split("/")
    upload = state.uploads[int(upload_id)]  # the signature proves we issued this key
    digest = hashlib.sha256()
    body = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK):
        digest.update(chunk)
        body += chunk
    if digest.hexdigest() != sha:
        return _s3_error(400, "BadDigest", "The SHA-256 of the body does not match the upload.")
    if sha not in state.blobs:
        await state.blobs.put(sha, bytes(body))
    upload.puts += 1
    upload.content_type = request.headers.get("Content-Type")
    state.dirty = True
    return web.Response(status=200, headers={"ETag": f'"{sha[:32]}"'})
