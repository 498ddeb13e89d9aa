"""HTTP caching for queries sent with GET (a trusted document's id and its variables in the URL): an `ETag` on every
successful answer, `304 Not Modified` when the client (or a CDN) already holds it, and a `Cache-Control` that lets a
shared cache serve public reads (no token) for a second and refresh them in the background; signed-in answers are
private to the client and always revalidated."""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response

PUBLIC = "public, max-age={max_age}, stale-while-revalidate={swr}"
PRIVATE = "private, no-cache"


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    given = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in given or etag in given


def cached_get(request: Request, response: Response, *, max_age_s: int, stale_while_revalidate_s: int) -> Response:
    """`response` with its validators when `request` is a GET answered in full (200, no errors); a 304 in its place
    when the client's `If-None-Match` names it. Anything else (POST, refusals, errors) passes unchanged."""
    body = bytes(response.body)
    if request.method != "GET" or response.status_code != 200 or b'"errors"' in body:
        return response
    etag = etag_of(body)
    signed_in = "authorization" in request.headers
    headers = {
        "etag": etag,
        "cache-control": PRIVATE if signed_in else PUBLIC.format(max_age=max_age_s, swr=stale_while_revalidate_s),
        "vary": "Accept, Authorization",
    }
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return response
