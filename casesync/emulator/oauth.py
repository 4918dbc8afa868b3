"""OAuth 2.0 the way Radiopaedia's Doorkeeper does it: codes, tokens, rotation, bearer checks.

The demo application is pre-registered and the demo user approves every request, so a login
needs no browser: the code is shown in a tiny page (out-of-band) or sent to the redirect URI.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from casesync.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, OOB_REDIRECT_URI
from casesync.emulator.state import STATE, State, Token, User

FORM = "application/x-www-form-urlencoded"


def token_body(token: Token) -> dict[str, Any]:
    return {
        "access_token": token.access_token,
        "token_type": "Bearer",
        "expires_in": token.expires_in,
        "refresh_token": token.refresh_token,
        "created_at": token.created_at,
    }


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def _redirect_allowed(uri: str) -> bool:
    """Radiopaedia accepts only HTTPS redirect URIs or the out-of-band URI."""
    return uri == OOB_REDIRECT_URI or urlsplit(uri).scheme == "https"


async def authorize(request: web.Request) -> web.StreamResponse:
    """GET /oauth/authorize: the demo user approves at once."""
    state = request.app[STATE]
    query = request.query
    if query.get("client_id") != DEMO_CLIENT_ID:
        return _oauth_error(401, "invalid_client", "Client authentication failed: unknown client.")
    if query.get("response_type") != "code":
        return _oauth_error(400, "unsupported_response_type", "Only response_type=code.")
    redirect_uri = query.get("redirect_uri", "")
    if not _redirect_allowed(redirect_uri):
        return _oauth_error(400, "invalid_redirect_uri", "The redirect uri is not https or oob.")
    grant = state.new_grant(state.demo_user.id, redirect_uri)
    if redirect_uri != OOB_REDIRECT_URI:
        params = {"code": grant.code}
        if "state" in query:
            params["state"] = query["state"]
        separator = "&" if "?" in redirect_uri else "?"
        raise web.HTTPFound(f"{redirect_uri}{separator}{urlencode(params)}")
    page = (
        "<!doctype html><title>Authorization code</title>"
        "<h1>Authorization code</h1><p>Copy this code and paste it into casesync:</p>"
        f'<code id="authorization_code">{html.escape(grant.code)}</code>'
    )
    return web.Response(text=page, content_type="text/html")


async def token(request: web.Request) -> web.Response:
    """POST /oauth/token: exchange a code, or rotate a refresh token."""
    state = request.app[STATE]
    if request.content_type != FORM:
        return _oauth_error(400, "invalid_request", f"The request body must be {FORM}.")
    form = await request.post()
    fields = {key: str(value) for key, value in form.items()}
    if fields.get("client_id") != DEMO_CLIENT_ID or (
        fields.get("client_secret") != DEMO_CLIENT_SECRET
    ):
        return _oauth_error(401, "invalid_client", "Client authentication failed.")
    grant_type = fields.get("grant_type")
    if grant_type == "authorization_code":
        return _exchange_code(state, fields)
    if grant_type == "refresh_token":
        return _rotate(state, fields)
    return _oauth_error(
        400, "unsupported_grant_type", "The authorization grant type is not supported."
    )


async def revoke(request: web.Request) -> web.Response:
    """POST /oauth/revoke (row 12, RFC 7009): the pair of an access or refresh token dies.

    An unknown token answers 200 too, as the RFC asks (the caller cannot learn which exist).
    """
    state = request.app[STATE]
    form = await request.post()
    fields = {key: str(value) for key, value in form.items()}
    if fields.get("client_id") != DEMO_CLIENT_ID or (
        fields.get("client_secret") != DEMO_CLIENT_SECRET
    ):
        return _oauth_error(401, "invalid_client", "Client authentication failed.")
    presented = fields.get("token", "")
    access = presented if presented in state.tokens else state.refresh_index.get(presented)
    token = state.tokens.get(access) if access is not None else None
    if token is not None:
        state.revoke(token)
    return web.json_response({})


def _exchange_code(state: State, fields: dict[str, str]) -> web.Response:
    grant = state.grants.pop(fields.get("code", ""), None)
    state.dirty = True
    if grant is None or grant.expires_at <= state.now():
        return _invalid_grant()
    if fields.get("redirect_uri") != grant.redirect_uri:
        return _invalid_grant()
    return web.json_response(token_body(state.issue_token(grant.user_id)))


def _rotate(state: State, fields: dict[str, str]) -> web.Response:
    access = state.refresh_index.get(fields.get("refresh_token", ""))
    old = state.tokens.get(access) if access is not None else None
    if old is None:
        return _invalid_grant()
    state.revoke(old)
    return web.json_response(token_body(state.issue_token(old.user_id)))


def _invalid_grant() -> web.Response:
    return _oauth_error(
        400,
        "invalid_grant",
        "The provided authorization grant is invalid, expired, revoked, does not match the "
        "redirection URI used in the authorization request, or was issued to another client.",
    )


def require_user(request: web.Request) -> User:
    """The user behind ``Authorization: Bearer``; 401 (as JSON) when missing, unknown or expired."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    reason = "The access token is missing"
    if scheme.lower() == "bearer" and credentials.strip():
        user, reason = request.app[STATE].user_for_access_token(credentials.strip())
        if user is not None:
            return user
    raise web.HTTPUnauthorized(
        text=f'{{"error": "{reason}"}}',
        content_type="application/json",
        headers={
            "WWW-Authenticate": (
                f'Bearer realm="Doorkeeper", error="invalid_token", error_description="{reason}"'
            )
        },
    )
