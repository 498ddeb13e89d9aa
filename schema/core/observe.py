"""Each GraphQL operation is timed, counted by name and outcome, and logged with its name and the request id.

The metric's `operation` label is bounded: a trusted document's operation name (every front end's operations are
known, schema/trusted/), else `other`; a caller choosing names or fields cannot make new series."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from functools import cache

from graphql import FieldNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from resolvers.context import operation_var
from schema.core import trusted

log = logging.getLogger("chain.graphql")


OTHER = "other"


@cache
def known_operations() -> frozenset[str]:
    return frozenset(document.name for document in trusted.documents().values())


class Observe(SchemaExtension):
    def _names(self) -> tuple[str, str, str]:
        """(metric label: a known operation name, else "other"; operation type; the client's operation name)."""
        ec = self.execution_context
        document = ec.graphql_document
        for definition in document.definitions if document else ():
            if isinstance(definition, OperationDefinitionNode):
                first = next(
                    (s.name.value for s in definition.selection_set.selections if isinstance(s, FieldNode)), "-"
                )
                named = definition.name.value if definition.name else ec.operation_name or first
                return named if named in known_operations() else OTHER, definition.operation.value, named[:64]
        return OTHER, "-", "-"

    def on_operation(self) -> Iterator[None]:
        start = time.perf_counter()
        token = operation_var.set("-")
        try:
            yield
        finally:
            label, kind, named = self._names()
            result = self.execution_context.result
            outcome = "error" if result is not None and getattr(result, "errors", None) else "ok"
            seconds = time.perf_counter() - start
            metrics = getattr(getattr(self.execution_context.context, "app", None), "metrics", None)
            if metrics is not None:
                metrics.observe_operation(label, kind, outcome, seconds)
            operation_var.set(named)
            log.info(
                "%s %s %s", kind, named, outcome, extra={"duration_ms": round(seconds * 1000, 1), "outcome": outcome}
            )
            operation_var.reset(token)

    def on_execute(self) -> Iterator[None]:
        operation_var.set(self._names()[2])  # everything logged while resolving carries the operation
        yield
