"""Statements built once and run many times with new values.

SQLAlchemy caches a statement's compiled SQL, but a statement object built afresh for each request is still built
and keyed before the cache is asked: for a page with a LATERAL join or several entities that is a quarter to a
millisecond of CPU, more than running it costs us. A hot read path builds its statement once per shape (and per
viewer scope: services/access/scope.py `scope_key`) with bound parameters for the values, and runs that object.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

S = TypeVar("S")
# Shapes x viewer scopes (a store's staff are one scope): the least recently used goes first past this many, so a
# chain of thousands of stores keeps its busy stores' statements.
MAX_BUILT = 4096

_built: OrderedDict[Hashable, object] = OrderedDict()


def built_once(key: Hashable, build: Callable[[], S]) -> S:
    """The statement `build` made the first time `key` was asked for (the key names the builder and every choice it
    made)."""
    found = _built.get(key)
    if found is None:
        found = _built[key] = build()
        if len(_built) > MAX_BUILT:
            _built.popitem(last=False)
    else:
        _built.move_to_end(key)
    return found  # type: ignore[return-value]
