"""Trusted documents: the mini-program's operations, known by hash (schema/trusted/*.graphql).

In production a member or anonymous caller sends `{"documentId": "sha256:<hex>", "variables": ...}` and only
these documents run; staff consoles may still send text. `python -m schema.trusted` prints the manifest the
mini-program is built with (checked in as trusted-documents.json and kept current by `make schema`).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

from graphql import OperationDefinitionNode, parse, print_ast

SOURCES = sorted((Path(__file__).parent / "trusted").glob("*.graphql"))


@cache
def documents() -> dict[str, tuple[str, str, str]]:
    """Hash -> (operation name, operation type, document text)."""
    found: dict[str, tuple[str, str, str]] = {}
    for source in SOURCES:
        for definition in parse(source.read_text()).definitions:
            if isinstance(definition, OperationDefinitionNode) and definition.name is not None:
                body = print_ast(definition)
                digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
                found[digest] = (definition.name.value, definition.operation.value, body)
    return found


def manifest() -> str:
    ordered = sorted(documents().items(), key=lambda kv: kv[1][0])
    operations = [{"id": h, "name": n, "type": t, "body": b} for h, (n, t, b) in ordered]
    return json.dumps({"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations},
                      ensure_ascii=False, indent=2) + "\n"  # fmt: skip


if __name__ == "__main__":
    print(manifest(), end="")
