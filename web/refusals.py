"""Requests refused before GraphQL runs, answered in JSON with a code, in the media type the client accepts."""

from __future__ import annotations

import mimeparse
import orjson
from starlette.responses import Response

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


def response_media_type(accept: str | None) -> str:
    """The media type of the answer, by the client's Accept (GraphQL over HTTP): application/graphql-response+json
    when the client prefers it, else application/json, which is also the answer to no Accept, `*/*`, and an Accept
    naming neither or not parsing (the spec lets a server disregard such a header rather than refuse with 406)."""
    try:
        # In order of increasing preference on a tie, so that `*/*` and `application/*` get application/json.
        chosen: str = mimeparse.best_match([GRAPHQL_RESPONSE, JSON], accept or "*/*")
    except mimeparse.MimeTypeParseException:
        return JSON
    return chosen or JSON


def refusal(
    status: int, code: str, message: str, media_type: str = JSON, headers: dict[str, str] | None = None
) -> Response:
    """A request refused before it runs: a GraphQL response with one coded error and no `data`."""
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(orjson.dumps(body), status_code=status, media_type=media_type, headers=headers)


class HttpRefusal(Exception):
    """Raised while handling a GraphQL request that is refused with an HTTP status (the view answers it)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self, media_type: str) -> Response:
        return refusal(self.status, self.code, self.message, media_type, self.headers)
