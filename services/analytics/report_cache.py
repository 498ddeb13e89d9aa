"""Reports HQ keeps open all day, computed once per scope and period and kept until the facts they read change.

An answer is shared by every viewer of the same scope (the stores the report covers for them, and what decides
whether they see cost), never by identity: twenty HQ users share one entry, a store's manager has their own. The
access checks run on every request before the cache is asked (resolvers/analytics.py), so a shared answer is never
handed to someone who may not see it.

What makes an entry wrong is announced: the fold announces the stores and days it changed (`facts.folded`, published
after its commit) and the entries that read any of them are dropped; a change of the chain settings (whether stores
see margin) drops every entry. An answer that was being computed while an announcement arrived is not kept, and a
request arriving after it does not wait for that answer. The TTL bounds what a lost announcement can cost.

A cached answer keeps the freshness it was read with: complete up to `as_of`, never later than its figures are; one
that counted pending events is dropped by the next fold, whatever it folds, so its count does not linger.
Concurrent misses for one key compute once; the others wait for that answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar, cast

from services.access.scope import Viewer
from services.analytics.facts import FACTS_FOLDED
from services.analytics.margin import margin_inputs
from services.org.settings import SETTINGS_CHANGED
from services.platform.events import Event
from services.platform.public_reads import ALL, PUBLIC_CHANGED

T = TypeVar("T")


def scope(viewer: Viewer, stores: Iterable[int] | None) -> Hashable:
    """Who may share an answer: the stores it covers for the viewer (None: every store) and the inputs of the margin
    rule; two viewers with the same scope get the same figures from every report."""
    return (None if stores is None else tuple(sorted(set(stores))), margin_inputs(viewer))


@dataclass(frozen=True)
class Reads:
    """The facts an answer was read from: its stores (None: every store) and its days, first..last inclusive; and
    whether it counted events still pending (its freshness then changes with any fold, whatever it folds)."""

    stores: frozenset[int] | None
    first: date
    last: date
    pending: bool = False

    def touched_by(self, stores: set[int], days: set[date]) -> bool:
        if self.pending:
            return True
        in_days = any(self.first <= day <= self.last for day in days)
        return in_days and (self.stores is None or not self.stores.isdisjoint(stores))


@dataclass
class _Entry:
    expires: float
    reads: Reads
    value: Any


class ReportCache:
    def __init__(self, ttl_s: float = 60.0, max_entries: int = 1000, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        # Answers being computed: the generation they started in, and the task every asker of the key awaits.
        self._computing: dict[Hashable, tuple[int, asyncio.Task[Any]]] = {}
        self._generation = 0  # bumped by every drop: answers started before it are neither kept nor joined

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]], reads: Callable[[T], Reads]) -> T:
        """The answer remembered for `key`, or the one `compute()` gives (computed once for concurrent askers), kept
        until an announcement touches what `reads(answer)` says it read."""
        if self.ttl_s <= 0:
            return await compute()
        entry = self._entries.get(key)
        if entry is not None and entry.expires > self._clock():
            self._entries.move_to_end(key)
            return cast(T, entry.value)
        running = self._computing.get(key)
        if running is None or running[0] != self._generation:
            task = asyncio.ensure_future(self._compute(key, compute, reads, self._generation))
            task.add_done_callback(_retrieved)  # a failure whose askers all went away is not logged as lost
            running = self._computing[key] = (self._generation, task)
        # Shielded: an asker that goes away (a closed connection) does not cancel the answer the others wait for.
        return cast(T, await asyncio.shield(running[1]))

    async def _compute(
        self, key: Hashable, compute: Callable[[], Awaitable[T]], reads: Callable[[T], Reads], generation: int
    ) -> T:
        try:
            value = await compute()
        finally:
            if self._computing.get(key, (None,))[0] == generation:
                del self._computing[key]
        if generation == self._generation:  # no announcement overtook it
            self._entries[key] = _Entry(self._clock() + self.ttl_s, reads(value), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)

    def drop(self, stores: Iterable[int], days: Iterable[date]) -> None:
        """Forget the answers that read any of these stores' facts on any of these days."""
        self._generation += 1
        touched_stores, touched_days = set(stores), set(days)
        for key in [k for k, e in self._entries.items() if e.reads.touched_by(touched_stores, touched_days)]:
            del self._entries[key]

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    def apply(self, event: Event) -> None:
        if event.topic == FACTS_FOLDED:
            self.drop(
                [int(s) for s in event.payload.get("stores", [])],
                [date.fromisoformat(d) for d in event.payload.get("days", [])],
            )
        elif event.topic == SETTINGS_CHANGED:
            self.clear()
        elif event.topic == PUBLIC_CHANGED and {"stores", ALL} & set(event.payload.get("tags", [])):
            self.clear()  # a store renamed or opened: the rankings name their stores as they read them


def _retrieved(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
