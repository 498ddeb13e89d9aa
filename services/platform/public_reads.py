"""What the public reads (a store's menu, nearby stores, a store's page) show, remembered by each instance and
forgotten the moment a committed write changes it.

Every remembered answer carries tags naming what it was made of (`store:<id>`, `catalog`, `campaigns`, ...). A write
names the tags it touches in a `public.changed` event, published after its commit like every event (through Redis
to every instance): the instances' generations of those tags move on, and every answer made under an older
generation is dropped. Writes name their tags without anyone remembering to: a session hook reads what each flush
wrote (the tables in TABLE_TAGS) and what a bulk statement touched; stock moves name their store only when an
item's availability band moves (services/inventory/stock.py).

An answer started before a change and finished after it is not remembered (its generations no longer match), so
the staleness a member can see is the broadcast's delay, and `ttl_s` bounds it should an announcement be lost.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import event, inspect
from sqlalchemy.orm import ORMExecuteState, Session

from services.platform.events import Event, pending

PUBLIC_CHANGED = "public.changed"
# Every remembered answer carries it; a write whose rows are not known (a bulk statement) touches it.
ALL = "all"

V = TypeVar("V")


def store_tag(store_id: int) -> str:
    return f"store:{store_id}"


def member_tag(member_id: int) -> str:
    """Members share 1,024 tags: a level change drops the pages of a few thousandth of the members, and the
    generations an instance keeps stay bounded however many members there are."""
    return f"member:{member_id % 1024}"


def _store_row(row: Any) -> list[str]:
    return [store_tag(row.id), "stores"]


def _owned_by_store(row: Any) -> list[str]:
    return [store_tag(row.store_id)]


def _bought_by(row: Any) -> list[str]:
    return [member_tag(row.member_id)]


def _member_level(row: Any) -> list[str]:
    # A member's row changes with every order (points, spend); only their level changes what a page prices.
    state = inspect(row)
    if state.deleted or state.was_deleted or state.attrs.level_id.history.has_changes():
        return [member_tag(row.id)]
    return []


def _fixed(*tags: str) -> Callable[[Any], list[str]]:
    return lambda _row: list(tags)


# Table -> the tags a written row of it touches. A public read depends on these and on stock bands only.
TABLE_TAGS: dict[str, Callable[[Any], list[str]]] = {
    "stores": _store_row,
    "store_listings": _owned_by_store,
    "store_pages": _owned_by_store,
    "products": _fixed("catalog"),
    "skus": _fixed("catalog"),
    "categories": _fixed("catalog"),
    "campaigns": _fixed("campaigns"),
    "campaign_items": _fixed("prices"),
    "member_levels": _fixed("prices"),
    "level_prices": _fixed("prices"),
    "page_templates": _fixed("pages"),
    "campaign_buyers": _bought_by,
    "members": _member_level,
}


# Table -> the tags a bulk statement on it touches (its rows are not known). A bulk update of members (points,
# spend) changes nothing public; the one that sets a level names its member itself (services/members/accounts.py).
BULK_TAGS: dict[str, list[str]] = {
    "stores": [ALL],
    "store_listings": [ALL],
    "store_pages": [ALL],
    "products": ["catalog"],
    "skus": ["catalog"],
    "categories": ["catalog"],
    "campaigns": ["campaigns"],
    "campaign_items": ["prices"],
    "campaign_buyers": ["prices"],
    "member_levels": ["prices"],
    "level_prices": ["prices"],
    "page_templates": ["pages"],
}


def changed(info: dict[Any, Any], tags: Iterable[str]) -> None:
    """Add `tags` to the session's one pending `public.changed` event (published only if the session commits)."""
    new = set(tags)
    if not new:
        return
    events = pending(info)
    for i, queued in enumerate(events):
        if queued.topic == PUBLIC_CHANGED:
            events[i] = Event(PUBLIC_CHANGED, {"tags": sorted(set(queued.payload["tags"]) | new)})
            return
    events.append(Event(PUBLIC_CHANGED, {"tags": sorted(new)}))


def _flushed(session: Session, _context: Any) -> None:
    tags: set[str] = set()
    for rows, modified_only in ((session.new, False), (session.dirty, True), (session.deleted, False)):
        for row in rows:
            rule = TABLE_TAGS.get(getattr(row, "__tablename__", ""))
            if rule is not None and (not modified_only or session.is_modified(row)):
                tags.update(rule(row))
    changed(session.info, tags)


def _executed(state: ORMExecuteState) -> None:
    """A bulk INSERT, UPDATE or DELETE names no rows: it touches every answer made of its table."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    changed(state.session.info, BULK_TAGS.get(getattr(table, "name", ""), []))


def watch_writes() -> None:
    """Install the session hooks (once per process): every ORM session names what its writes change."""
    if not event.contains(Session, "after_flush", _flushed):
        event.listen(Session, "after_flush", _flushed)
        event.listen(Session, "do_orm_execute", _executed)


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    expires: float
    made_under: tuple[tuple[str, int], ...]
    value: V


class PublicReads(Generic[V]):
    """Answers by key, each made of tagged things, valid while no tag of theirs has moved on and for `ttl_s` at
    most (or until `until`, a clock time the answer itself changes: a campaign starting or ending)."""

    def __init__(self, ttl_s: float = 60.0, max_entries: int = 20_000, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._generations: dict[str, int] = {}
        self._entries: OrderedDict[Any, _Entry[V]] = OrderedDict()
        self._making: dict[Any, asyncio.Future[V]] = {}

    @property
    def on(self) -> bool:
        return self.ttl_s > 0

    def made_under(self, tags: Iterable[str]) -> tuple[tuple[str, int], ...]:
        return tuple((t, self._generations.get(t, 0)) for t in sorted({ALL, *tags}))

    def current(self, made_under: tuple[tuple[str, int], ...]) -> bool:
        return all(self._generations.get(t, 0) == g for t, g in made_under)

    def get(self, key: Any) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock() or not self.current(entry.made_under):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.value

    async def get_or_make(
        self, key: Any, tags: Iterable[str], make: Callable[[], Awaitable[tuple[V, bool, float | None]]]
    ) -> V:
        """The remembered answer for `key`, or the one `make()` returns as (value, keep, until) and remembers when
        `keep` and no tag moved while it was made. Requests for one key arriving together make it once."""
        found = self.get(key)
        if found is not None:
            return found
        making = self._making.get(key)
        if making is not None:
            return await asyncio.shield(making)
        made_under = self.made_under(tags)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._making[key] = future
        try:
            value, keep, until = await make()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters, if any, re-raise it
            raise
        finally:
            if self._making.get(key) is future:
                del self._making[key]
        future.set_result(value)
        if keep and self.on and self.current(made_under):
            expires = self._clock() + self.ttl_s
            if until is not None:
                expires = min(expires, until)
            self._entries[key] = _Entry(expires, made_under, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def invalidate(self, tags: Iterable[str]) -> None:
        for tag in tags:
            self._generations[tag] = self._generations.get(tag, 0) + 1

    def clear(self) -> None:
        self.invalidate([ALL])
        self._entries.clear()

    def apply(self, event: Event) -> None:
        if event.topic == PUBLIC_CHANGED:
            self.invalidate(event.payload.get("tags", []))
