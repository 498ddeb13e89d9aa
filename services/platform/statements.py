"""Statements built once and run many times with new values.

SQLAlchemy caches a statement's compiled SQL, but a statement object built afresh for each request is still built
and keyed before the cache is asked: for a page with a LATERAL join or several entities that is a quarter to a
millisecond of CPU, more than running it costs us. A hot read path builds its statement once per shape (and per
viewer scope: services/access/scope.py `scope_key`) with bound parameters for the values, and runs that object.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

S = TypeVar("S")
MAX_BUILT = 1024  # shapes x viewer scopes; past it the cache starts again (a scope is a store, not a person)

_built: dict[Hashable, object] = {}


def built_once(key: Hashable, build: Callable[[], S]) -> S:
    """The statement `build` made the first time `key` was asked for (the key names the builder and every choice it
    made)."""
    found = _built.get(key)
    if found is None:
        if len(_built) >= MAX_BUILT:
            _built.clear()
        found = _built[key] = build()
    return found  # type: ignore[return-value]
