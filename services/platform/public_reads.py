"""What the public reads (a store's menu, nearby stores, a store's page) show, remembered by each instance and
forgotten the moment a committed write changes it.

Every remembered answer carries tags naming what it was made of (`store:<id>`, `catalog`, `campaigns`, ...). A write
names the tags it touches in a `public.changed` event, published after its commit like every event (through Redis
to every instance): the instances' generations of those tags move on, and every answer made under an older
generation is dropped. Writes name their tags without anyone remembering to: a session hook reads what each flush
wrote (the tables in TABLE_TAGS) and what a bulk statement touched; stock moves name their store only when an
item's availability band moves (services/inventory/stock.py).

A band move is not a reason to make an answer again: an answer that shows a store's stock says so (`ShowsStock`,
with how to write a band into it), and when SKUs of that store move band, each instance reads their bands afresh
(one statement, whichever instance committed them and in whatever order the announcements arrive) and writes them
into the answers it keeps. A store's menu under a steady stream of sales is made once, not once per sale.

An answer started before a change and finished after it is not remembered (its generations no longer match), so
the staleness a member can see is the broadcast's delay, and `ttl_s` bounds it should an announcement be lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from sqlalchemy import event, inspect
from sqlalchemy.orm import ORMExecuteState, Session

from services.platform.events import Event, pending

log = logging.getLogger("chain.public_reads")

PUBLIC_CHANGED = "public.changed"
# Every remembered answer carries it; a write whose rows are not known (a bulk statement) touches it.
ALL = "all"
# The chain settings changed: what the instance remembers of them is forgotten with the answers (SettingsMemo).
SETTINGS = "settings"

# Band moves are written into the answers kept (see above) up to this many (store, SKU) pairs in one change; past it
# (a chain-wide low-stock line, say) the stores' answers are made again.
MAX_BANDS_WRITTEN = 1000
# How long a request for a store waits for its moved bands to be read before its answers are made again instead.
SETTLE_S = 1.0

V = TypeVar("V")
# The bands of SKUs that moved, by store and listing: {store id: {listing id: band}} (read afresh by the app, see
# PublicReads; a listing is a SKU on a store's menu, and the answers show it by its listing id).
Bands = dict[int, dict[int, str]]
BandReader = Callable[[dict[int, set[int]]], Awaitable[Bands]]


def store_tag(store_id: int) -> str:
    return f"store:{store_id}"


def stock_tag(store_id: int) -> str:
    """What an answer showing a store's stock bands is made of besides the store (moved by its band moves only)."""
    return f"stock:{store_id}"


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


def names(event: Event, tag: str) -> bool:
    """Whether `event` is a public.changed announcement naming `tag`."""
    return event.topic == PUBLIC_CHANGED and tag in event.payload.get("tags", ())


def changed(info: dict[Any, Any], tags: Iterable[str], stock: Mapping[int, Iterable[int]] | None = None) -> None:
    """Add `tags`, and the SKUs whose availability band moved by store (`stock`), to the session's one pending
    `public.changed` event (published only if the session commits)."""
    new = set(tags)
    moved = {str(s): {int(k) for k in skus} for s, skus in (stock or {}).items()}
    moved = {s: skus for s, skus in moved.items() if skus}
    if not new and not moved:
        return
    events = pending(info)
    at = next((i for i, queued in enumerate(events) if queued.topic == PUBLIC_CHANGED), None)
    if at is not None:
        new |= set(events[at].payload["tags"])
        for s, skus in events[at].payload.get("stock", {}).items():
            moved.setdefault(s, set()).update(skus)
    if sum(len(skus) for skus in moved.values()) > MAX_BANDS_WRITTEN:
        new.update(stock_tag(int(s)) for s in moved)  # too many to write in: the stores' answers are made again
        moved = {}
    payload: dict[str, Any] = {"tags": sorted(new)}
    if moved:
        payload["stock"] = {s: sorted(skus) for s, skus in sorted(moved.items())}
    if at is None:
        events.append(Event(PUBLIC_CHANGED, payload))
    else:
        events[at] = Event(PUBLIC_CHANGED, payload)


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
class ShowsStock(Generic[V]):
    """An answer shows the bands of this store's stock, and `write` writes moved bands into it (the bands by
    listing: {listing id: band}), or returns None when it cannot (the answer is then made again)."""

    store_id: int
    write: Callable[[V, dict[int, str]], V | None]


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    expires: float
    made_under: tuple[tuple[str, int], ...]
    value: V
    stock: ShowsStock[V] | None


class PublicReads(Generic[V]):
    """Answers by key, each made of tagged things, valid while no tag of theirs has moved on and for `ttl_s` at
    most (or until `until`, a clock time the answer itself changes: a campaign starting or ending). `bands` reads
    the bands of moved SKUs afresh; without it, a band move drops the store's answers instead of being written in."""

    def __init__(
        self,
        ttl_s: float = 60.0,
        max_entries: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
        bands: BandReader | None = None,
    ):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.bands = bands
        self._clock = clock
        self._generations: dict[str, int] = {}
        self._entries: OrderedDict[Any, _Entry[V]] = OrderedDict()
        self._making: dict[Any, tuple[asyncio.Future[V], tuple[tuple[str, int], ...]]] = {}
        self._showing: dict[int, set[Any]] = {}  # store -> keys of kept answers that show its stock
        self._moved: dict[int, set[int]] = {}  # band moves waiting for their read
        self._moved_written: asyncio.Future[None] | None = None  # done when they are written (or dropped)
        self._reading: set[int] = set()  # the stores whose band moves are being read
        self._reading_written: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None

    @property
    def on(self) -> bool:
        return self.ttl_s > 0

    def made_under(self, tags: Iterable[str]) -> tuple[tuple[str, int], ...]:
        return tuple((t, self._generations.get(t, 0)) for t in sorted({ALL, *tags}))

    def current(self, made_under: tuple[tuple[str, int], ...]) -> bool:
        return all(self._generations.get(t, 0) == g for t, g in made_under)

    def _drop(self, key: Any, entry: _Entry[V]) -> None:
        if entry.stock is not None:
            self._showing.get(entry.stock.store_id, set()).discard(key)

    def get(self, key: Any) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock() or not self.current(entry.made_under):
            del self._entries[key]
            self._drop(key, entry)
            return None
        self._entries.move_to_end(key)
        return entry.value

    async def get_or_make(
        self,
        key: Any,
        tags: Iterable[str],
        make: Callable[[], Awaitable[tuple[V, bool, float | None]]],
        stock: ShowsStock[V] | None = None,
    ) -> V:
        """The remembered answer for `key`, or the one `make()` returns as (value, keep, until) and remembers when
        `keep` and no tag moved while it was made. Requests for one key arriving together make it once; one joins
        an answer being made only if nothing it is made of has changed since it began. `stock`: the answer shows a
        store's stock bands, which band moves write into it."""
        if stock is not None:
            await self.settled(stock.store_id)
        found = self.get(key)
        if found is not None:
            return found
        made_under = self.made_under([*tags, stock_tag(stock.store_id)] if stock is not None else tags)
        making = self._making.get(key)
        if making is not None and making[1] == made_under:  # begun since the last change it is made of
            return await asyncio.shield(making[0])
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._making[key] = (future, made_under)
        try:
            value, keep, until = await make()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters, if any, re-raise it
            raise
        finally:
            if key in self._making and self._making[key][0] is future:
                del self._making[key]
        future.set_result(value)
        if keep and self.on and self.current(made_under):
            expires = self._clock() + self.ttl_s
            if until is not None:
                expires = min(expires, until)
            self._entries[key] = _Entry(expires, made_under, value, stock)
            self._entries.move_to_end(key)
            if stock is not None:
                self._showing.setdefault(stock.store_id, set()).add(key)
            while len(self._entries) > self.max_entries:
                self._drop(*self._entries.popitem(last=False))
        return value

    def invalidate(self, tags: Iterable[str]) -> None:
        for tag in tags:
            self._generations[tag] = self._generations.get(tag, 0) + 1

    def clear(self) -> None:
        self.invalidate([ALL])
        self._entries.clear()
        self._showing.clear()

    def apply(self, event: Event) -> None:
        if event.topic == PUBLIC_CHANGED:
            self.invalidate(event.payload.get("tags", []))
            stock = event.payload.get("stock")
            if stock:
                self.stock_moved({int(s): {int(k) for k in skus} for s, skus in stock.items()})

    def stock_moved(self, moved: dict[int, set[int]]) -> None:
        """These SKUs moved band in these stores: their bands are read afresh and written into the answers kept (in
        the background, one read at a time, each read covering every move announced while the one before ran)."""
        if not self.on:
            return  # nothing is kept to write them into
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if self.bands is None or loop is None:
            self.invalidate(stock_tag(s) for s in moved)
            return
        # A store with no answer kept has nothing to write into (an instance running only jobs, say): an answer of
        # its being made now is not kept, and the next one reads the change.
        self.invalidate(stock_tag(s) for s in moved if not self._showing.get(s))
        moved = {s: skus for s, skus in moved.items() if self._showing.get(s)}
        if not moved:
            return
        for store_id, skus in moved.items():
            self._moved.setdefault(store_id, set()).update(skus)
        if sum(len(skus) for skus in self._moved.values()) > MAX_BANDS_WRITTEN:
            self._drop_moved()  # more than one read should carry: the stores' answers are made again
            return
        if self._moved_written is None:
            self._moved_written = loop.create_future()
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_moves(self.bands))

    async def settled(self, store_id: int) -> None:
        """Wait while band moves announced for this store are being read and written in (the read under way, then
        the one it waits for): the instance that made a change answers with it at once (a stocktake's own screen,
        then the menu), the others within the broadcast. Past SETTLE_S, the store's answers are made again."""
        deadline: float | None = None
        while True:
            if store_id in self._reading:
                written = self._reading_written
            elif store_id in self._moved:
                written = self._moved_written
            else:
                return
            now = time.monotonic()
            deadline = now + SETTLE_S if deadline is None else deadline
            if written is None or now >= deadline:
                break
            try:
                await asyncio.wait_for(asyncio.shield(written), deadline - now)
            except TimeoutError:
                break
        self.invalidate([stock_tag(store_id)])  # the read is late: this store's answers are made again

    async def close(self) -> None:
        """Stop writing bands in (the app is stopping): what waits is dropped."""
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)

    def _drop_moved(self) -> None:
        """Make again, when next asked, the answers of the stores whose band moves wait for a read."""
        self.invalidate(stock_tag(s) for s in self._moved)
        self._moved = {}
        if self._moved_written is not None and not self._moved_written.done():
            self._moved_written.set_result(None)
        self._moved_written = None

    async def _write_moves(self, read: BandReader) -> None:
        try:
            while self._moved:
                moved, self._moved = self._moved, {}
                self._reading, self._reading_written = set(moved), self._moved_written
                self._moved_written = None
                written: set[int] = set()
                try:
                    written = self._write_bands(await read(moved))
                except Exception:  # the database went away, say
                    log.exception("reading or writing moved stock bands failed; the stores' answers are made again")
                finally:
                    # A store not written (a failure, a cancel) has its answers made again when next asked.
                    self.invalidate(stock_tag(s) for s in moved if s not in written)
                    done, self._reading, self._reading_written = self._reading_written, set(), None
                    if done is not None and not done.done():
                        done.set_result(None)
        finally:
            if self._moved:  # stopped with moves waiting
                self._drop_moved()

    def _write_bands(self, found: Bands) -> set[int]:
        """Write the bands read into the store's answers; the stores written. Synchronous, so no request sees a
        store's answers between its generation moving and its bands written: every kept answer of the store that
        was current is written and moves on with the generation; one that cannot be written (`write` returns None)
        stays behind and is made again when next asked. Requests for the store wait while its bands are read
        (`settled`), so an answer being made now was begun before the read, may show a band older than it, and is
        not kept."""
        for store_id, bands in found.items():
            tag = stock_tag(store_id)
            was = self._generations.get(tag, 0)
            self._generations[tag] = now = was + 1
            keys = self._showing.get(store_id, set())
            for key in list(keys):
                entry = self._entries.get(key)
                if entry is None or entry.stock is None:
                    keys.discard(key)
                    continue
                if dict(entry.made_under).get(tag) != was:
                    continue  # dropped when next asked
                try:
                    value = entry.stock.write(entry.value, bands)
                except Exception:
                    log.exception("writing moved stock bands into a public answer failed; it is made again")
                    continue
                if value is None:
                    continue
                made_under = tuple((t, now if t == tag else g) for t, g in entry.made_under)
                self._entries[key] = replace(entry, value=value, made_under=made_under)
        return set(found)
