"""Trusted documents: each front end's operations, known by hash (schema/trusted/<front end>.graphql).

In production an anonymous caller runs only documents from a manifest (any front end's, so every front end can
sign in), a member runs only the mini-program's, and staff may also send query text. A request names a document
with `{"documentId": "sha256:<hex>", "variables": ...}` (or Apollo's `extensions.persistedQuery.sha256Hash`).
`admit` is the one place this rule lives; HTTP and the websocket both call it. `python -m schema.export
--trusted` prints the manifest the front ends are built with (trusted-documents.json, kept current by
`make schema`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from graphql import OperationDefinitionNode, parse, print_ast

from resolvers.context import Viewer

SOURCES = sorted((Path(__file__).parents[1] / "trusted").glob("*.graphql"))
MINI_PROGRAM = "mini_program"


@dataclass(frozen=True, slots=True)
class Document:
    name: str
    operation: str
    body: str
    front_end: str


class Refused(Exception):
    """A request the trusted-document rule turns away: `code` is the error's extensions.code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@cache
def documents() -> dict[str, Document]:
    """Hash -> the document, for every front end's manifest."""
    found: dict[str, Document] = {}
    for source in SOURCES:
        for definition in parse(source.read_text()).definitions:
            if isinstance(definition, OperationDefinitionNode) and definition.name is not None:
                body = print_ast(definition)
                digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
                found[digest] = Document(definition.name.value, definition.operation.value, body, source.stem)
    return found


def _document_id(data: dict[str, Any]) -> str | None:
    given = data.get("documentId")
    if given is None:
        extensions = data.get("extensions")
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        given = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    if given is None:
        return None
    if not isinstance(given, str):
        raise Refused("TRUSTED_DOCUMENT_NOT_FOUND", "A document id is a string.")
    return given if given.startswith("sha256:") else f"sha256:{given}"


def document_of(data: dict[str, Any]) -> tuple[str, Document] | None:
    """The trusted document a request names (its id and the document), or None (query text, an unknown id)."""
    try:
        document_id = _document_id(data)
    except Refused:
        return None
    document = documents().get(document_id) if document_id is not None else None
    return (document_id, document) if document_id is not None and document is not None else None


def admit(data: dict[str, Any], viewer: Viewer | None, *, production: bool) -> dict[str, Any]:
    """The request `data` ({query, variables, operationName, documentId, extensions}) with a named document's
    text put in as `query`; raises `Refused` when this viewer may not run what it asks for."""
    document_id = _document_id(data)
    if document_id is not None:
        document = documents().get(document_id)
        if document is None:
            raise Refused("TRUSTED_DOCUMENT_NOT_FOUND", "No trusted document with this id.")
        if production and viewer is not None and viewer.is_member and document.front_end != MINI_PROGRAM:
            raise Refused("TRUSTED_DOCUMENT_NOT_FOUND", "No trusted document with this id.")
        return {**data, "query": document.body}
    if production and data.get("query") is not None and not (viewer is not None and viewer.is_staff):
        raise Refused("TRUSTED_DOCUMENT_REQUIRED", "Send a trusted document id, not query text.")
    return data


def manifest() -> str:
    ordered = sorted(documents().items(), key=lambda kv: (kv[1].front_end, kv[1].name))
    operations = [
        {"id": h, "name": d.name, "type": d.operation, "frontEnd": d.front_end, "body": d.body} for h, d in ordered
    ]
    return (
        json.dumps(
            {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations},
            ensure_ascii=False,
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    print(manifest(), end="")
