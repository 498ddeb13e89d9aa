"""The public reads' answers, remembered whole: the mini-program's trusted documents that show what anyone may see
(a store's menu, nearby stores, a store's page) are answered from memory when nothing they are made of has changed
since (services/platform/public_reads.py says how a change is known, on every instance, within the broadcast's
delay). Staff, query text, other documents and answers with errors always run.

A remembered answer is the bytes GraphQL answered: the same `ETag` follows (web/caching.py), so a CDN in front and
the client's `If-None-Match` get their 304s too. The documents that show a store's stock show it only as the
`availability` beside an item's `listingId`, neither filtered nor ordered by it: a band move is written into the
remembered answer there (`write_bands`) instead of making it again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from models import utcnow
from resolvers.state import AppState
from schema.core import trusted
from schema.core.common import decode_id, global_id
from services.access.scope import Viewer
from services.marketing.promotions import next_change
from services.platform.errors import DomainError
from services.platform.public_reads import ShowsStock, member_tag, store_tag

# What each public document is made of: its tags given its variables (ValueError/DomainError: not remembered).
CATALOG, CAMPAIGNS, PRICES, PAGES, STORES = "catalog", "campaigns", "prices", "pages", "stores"


def _store_id(variables: dict[str, Any]) -> int:
    return decode_id(variables["storeId"], "Store", "storeId")


def _store(variables: dict[str, Any]) -> str:
    return store_tag(_store_id(variables))


@dataclass(frozen=True, slots=True)
class PublicDocument:
    tags: Callable[[dict[str, Any]], list[str]]
    # Priced for the member asking (their level, their flash-sale allowance): remembered per member.
    per_member: bool = False
    # The store whose stock bands it shows (as `availability` beside `listingId`), or None.
    shows_stock_of: Callable[[dict[str, Any]], int] | None = None


PUBLIC_DOCUMENTS: dict[str, PublicDocument] = {
    "StoreMenu": PublicDocument(lambda v: [_store(v), CATALOG, CAMPAIGNS], shows_stock_of=_store_id),
    "NearbyStores": PublicDocument(lambda v: [STORES]),
    "StorePage": PublicDocument(
        lambda v: [_store(v), CATALOG, CAMPAIGNS, PRICES, PAGES], per_member=True, shows_stock_of=_store_id
    ),
}


@dataclass(frozen=True, slots=True)
class Answer:
    body: bytes
    status: int
    content_type: str


class _Unwritable(Exception):
    """An item shows an availability without the listing id that says which it is."""


def write_bands(answer: Answer, bands: dict[int, str]) -> Answer | None:
    """`answer` with these listings' availability ({listing id: band}) written in wherever an item shows one beside
    its `listingId`; the same answer when none of them is in it; None when an item's availability cannot be told
    apart (no listing id beside it): the answer is then made again."""
    ids = {str(global_id("StoreListing", listing)): band for listing, band in bands.items()}
    data = orjson.loads(answer.body)
    try:
        written = _write(data, ids)
    except _Unwritable:
        return None
    return replace(answer, body=orjson.dumps(data)) if written else answer


def _write(node: Any, ids: dict[str, str]) -> bool:
    if isinstance(node, list):
        return any([_write(n, ids) for n in node])  # a list, not a generator: every item is written
    if not isinstance(node, dict):
        return False
    written = False
    if "availability" in node:
        listing = node.get("listingId")
        if not isinstance(listing, str):
            raise _Unwritable
        band = ids.get(listing)
        if band is not None and node["availability"] != band:
            node["availability"] = band
            written = True
    for value in node.values():
        if isinstance(value, dict | list):
            written = _write(value, ids) or written
    return written


class CampaignClock:
    """When what is running next changes by the clock (a campaign starts or ends): remembered until then, or until
    a campaign is written."""

    def __init__(self, state: AppState, clock: Callable[[], float] = time.monotonic) -> None:
        self.state = state
        self._clock = clock
        self._known: tuple[Any, float | None] | None = None

    async def until(self) -> float | None:
        reads = self.state.public_reads
        made_under = reads.made_under([CAMPAIGNS])
        if self._known is not None and reads.current(self._known[0]):
            until = self._known[1]
            if until is None or until > self._clock():
                return until
        async with self.state.read_sessionmaker() as session:
            now = utcnow()
            moment = await next_change(session, now)
        until = None if moment is None else self._clock() + (moment - now).total_seconds()
        self._known = (made_under, until)
        return until


class PublicAnswers:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.clock = CampaignClock(state)

    def _plan(self, request: Request) -> tuple[Any, list[str], str, ShowsStock[Answer] | None] | None:
        """The key and tags of a request for a public document, or None when it must run."""
        if not self.state.public_reads.on:
            return None
        state = request.scope.get("state", {})
        data: dict[str, Any] | None = state.get("graphql_request")
        viewer: Viewer | None = state.get("viewer")
        if data is None or (viewer is not None and viewer.is_staff):
            return None
        named = trusted.document_of(data)
        if named is None:
            return None
        document_id, document = named
        public = PUBLIC_DOCUMENTS.get(document.name)
        if public is None or document.front_end != trusted.MINI_PROGRAM:
            return None
        if data.get("operationName") not in (None, document.name):
            return None
        variables = data.get("variables") or {}
        try:
            tags = public.tags(variables)
            stock = None if public.shows_stock_of is None else ShowsStock(public.shows_stock_of(variables), write_bands)
        except (KeyError, TypeError, ValueError, DomainError):
            return None  # GraphQL answers the bad variables
        member = viewer.member_id if viewer is not None and public.per_member else None
        if member is not None:
            tags.append(member_tag(member))
        media = request.headers.get("accept", "")
        key = (document_id, orjson.dumps(variables, option=orjson.OPT_SORT_KEYS), media, member)
        return key, tags, document.name, stock

    async def answer(self, request: Request, run: Callable[[], Awaitable[Response]]) -> Response:
        plan = self._plan(request)
        if plan is None:
            return await run()
        key, tags, name, stock = plan
        reads = self.state.public_reads
        if stock is not None:
            await reads.settled(stock.store_id)
        answer = reads.get(key)
        self.state.metrics.public_reads.labels(name, "made" if answer is None else "hit").inc()

        async def make() -> tuple[Answer, bool, float | None]:
            response = await run()
            body = bytes(response.body)
            keep = response.status_code == 200 and b'"errors"' not in body
            until = await self.clock.until() if keep else None
            content_type = response.headers.get("content-type", "application/json")
            return Answer(body, response.status_code, content_type), keep, until

        if answer is None:
            answer = await reads.get_or_make(key, tags, make, stock)
        return Response(answer.body, status_code=answer.status, headers={"content-type": answer.content_type})
