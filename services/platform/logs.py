"""Structured JSON logs, each line carrying the request id and GraphQL operation of the request that wrote it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
operation_var: ContextVar[str] = ContextVar("operation", default="-")
# The personal values of the request running here (as its input types declare them), by request id.
_hidden: ContextVar[tuple[str, frozenset[str]]] = ContextVar("hidden", default=("", frozenset()))
HIDDEN = "[REDACTED]"


def hide(values: Iterable[str]) -> None:
    """Leave these values out of every log line the current request writes from now on, whoever writes it."""
    request_id, known = _hidden.get()
    if request_id != request_id_var.get():
        known = frozenset()
    _hidden.set((request_id_var.get(), known | {v for v in values if len(v) >= 2}))


def _hidden_now() -> frozenset[str]:
    request_id, values = _hidden.get()
    return values if request_id == request_id_var.get() else frozenset()


def _scrub(text: str, values: frozenset[str]) -> str:
    for value in sorted(values, key=len, reverse=True):  # longest first: a name inside an address goes with it
        text = text.replace(value, HIDDEN)
    return text


_make_record = logging.getLogRecordFactory()


def _record_without_personal_data(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Every log record, from our code or any library's: the request's personal values are taken out of its
    message, exception and stack text when it is made, before any handler (or test capture) sees it."""
    record = _make_record(*args, **kwargs)
    values = _hidden_now()
    if not values:
        return record
    message = record.getMessage()
    record.msg, record.args = _scrub(message, values), None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        scrubbed = _scrub(record.exc_text, values)
        if scrubbed != record.exc_text:  # the exception itself carries them: only its scrubbed text is kept
            record.exc_text, record.exc_info = scrubbed, None
    if record.stack_info:
        record.stack_info = _scrub(record.stack_info, values)
    return record


logging.setLogRecordFactory(_record_without_personal_data)
# aiosqlite's DEBUG lines print every statement's parameters, from its own thread where no request is known: they
# stay off whatever LOG_LEVEL says (SQLAlchemy, which hides parameters, keeps its own loggers at WARNING the same way).
logging.getLogger("aiosqlite").setLevel(logging.INFO)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
            "operation": operation_var.get(),
        }
        for key in ("duration_ms", "outcome", "viewer", "status"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info or record.exc_text:  # exc_text: made when the record was, personal values taken out
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return orjson.dumps(entry, default=str).decode()


def configure(json_lines: bool = True, level: int | str = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
