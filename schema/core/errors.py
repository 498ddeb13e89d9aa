"""How errors reach the client: coded access errors as they are, anything unexpected masked and logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from sqlalchemy.exc import DBAPIError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import StreamExecutionResult

from resolvers import AccessDenied, DomainError, Unauthenticated
from resolvers.auth import RateLimited

log = logging.getLogger("chain.graphql")


def _request_id(extension: SchemaExtension) -> str:
    ctx = extension.execution_context.context
    return str(getattr(ctx, "request_id", "-"))


# PostgreSQL says these when a transaction lost a race or waited too long: serialization failure, deadlock, lock
# not available (lock_timeout), query cancelled (statement_timeout), and the server ending the connection.
TRANSIENT_SQLSTATES = frozenset(
    {"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "08000", "08003", "08006"}
)


# What a client is told when the database failed in passing: the same request may simply be sent again.
RETRYABLE: dict[str, object] = {"code": "TEMPORARILY_UNAVAILABLE", "retryable": True}


def transient(error: BaseException) -> bool:
    """A failure worth retrying unchanged: the database dropped the connection or gave up on a lock or a statement."""
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        state = getattr(error.orig, "sqlstate", None) or getattr(
            getattr(error.orig, "__cause__", None), "sqlstate", None
        )
        return state in TRANSIENT_SQLSTATES or "database is locked" in str(error.orig)
    return isinstance(error, (ConnectionError, TimeoutError))


def _data_error(error: BaseException) -> bool:
    """PostgreSQL's class 22 (data exception): a value out of range, too long, or not valid text."""
    if not isinstance(error, DBAPIError):
        return False
    state = getattr(error.orig, "sqlstate", None) or getattr(getattr(error.orig, "__cause__", None), "sqlstate", None)
    return isinstance(state, str) and state.startswith("22")


class ErrorPresenter(SchemaExtension):
    """Give every error an extensions.code; mask bugs to a generic error carrying the request id."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [self.present(e) for e in result.errors]

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """Subscriptions: each result on its way to the client gets the same treatment."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [self.present(e) for e in errors]  # type: ignore[union-attr]
        yield None

    def present(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if original is None or isinstance(original, GraphQLError):
            code = (error.extensions or {}).get("code") or (
                "TOO_MANY_TOKENS"
                if "tokens. Parsing aborted" in error.message
                else "GRAPHQL_PARSE_FAILED"
                if error.message.startswith("Syntax Error")
                else "GRAPHQL_VALIDATION_FAILED"
            )
            return self._with(error, error.message, {**(error.extensions or {}), "code": code})
        if isinstance(original, AccessDenied):
            extensions: dict[str, object] = {"code": original.code}
            if isinstance(original, Unauthenticated) and original.reason:
                extensions["reason"] = original.reason
            if isinstance(original, RateLimited):
                extensions["retryAfter"] = original.retry_after
            return self._with(error, original.message, extensions)
        if isinstance(original, DomainError):
            # A rule broken by a query's arguments (a bad cursor, a page too large).
            return self._with(
                error,
                original.message,
                {"code": "BAD_USER_INPUT", "reason": original.code.value, "field": original.field},
            )
        request_id = _request_id(self)
        if _data_error(original):  # a value the database cannot store: the caller's input, not our bug
            return self._with(
                error, "A value in the request is not valid.", {"code": "BAD_USER_INPUT", "requestId": request_id}
            )
        if transient(original):
            log.warning("transient database failure (request %s): %s", request_id, type(original).__name__)
            retry = {**RETRYABLE, "requestId": request_id}
            return self._with(error, "The service is briefly unavailable; nothing was changed. Try again.", retry)
        log.error("unexpected error (request %s)", request_id, exc_info=original)
        return self._with(error, "Internal server error.", {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id})

    @staticmethod
    def _with(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
        return GraphQLError(
            message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=extensions,
        )
