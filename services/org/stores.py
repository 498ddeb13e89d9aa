"""Stores: HQ creates, edits, opens and closes them; visitors find the nearest."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from models import Store, StoreKind, StoreStatus, utcnow
from services.access.scope import Viewer, acted_in
from services.platform.errors import DomainError, ErrorCode
from services.platform.pagination import AnySelect, Page, keyset_page, offset_page
from services.platform.validation import number_in, optional_text, text

_CODE = re.compile(r"^[A-Z0-9][A-Z0-9\-]{1,31}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
EARTH_KM = 6371.0088
MAX_RADIUS_KM = 50.0

# Which status changes HQ may make.
TRANSITIONS: dict[StoreStatus, set[StoreStatus]] = {
    StoreStatus.PREPARING: {StoreStatus.OPEN, StoreStatus.CLOSED},
    StoreStatus.OPEN: {StoreStatus.CLOSED},
    StoreStatus.CLOSED: {StoreStatus.OPEN},
}


def visible_condition(viewer: Viewer) -> ColumnElement[bool]:
    """Stores still being prepared are seen only by HQ and by their own staff; warehouses only by staff (a store asks
    one for replenishment): to members and visitors a warehouse does not exist."""
    if viewer.is_hq:
        return true()
    public = Store.status != StoreStatus.PREPARING
    if viewer.is_staff and viewer.store_id is not None:
        return or_(public, Store.id == viewer.store_id)
    if viewer.is_staff:
        return public
    return public & (Store.kind == StoreKind.STORE)


def require_selling(store: Store, field: str = "storeId") -> None:
    """A warehouse holds stock and sells nothing: no order, no POS sale, no quote there."""
    if store.kind is not StoreKind.STORE:
        raise DomainError(ErrorCode.WAREHOUSE_CANNOT_SELL, "A warehouse does not sell.", field)


@dataclass(frozen=True)
class StoreFields:
    code: str | None = None
    name: str | None = None
    city: str | None = None
    address: str | None = None
    phone: str | None = None
    lat: float | None = None
    lng: float | None = None
    timezone: str | None = None
    hours: list[dict[str, Any]] | None = None
    kind: StoreKind | None = None  # on creation only: STORE unless said


def _check_hours(hours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cleaned = []
    for i, h in enumerate(hours):
        weekday, opens, closes = h.get("weekday"), str(h.get("opens")), str(h.get("closes"))
        if not isinstance(weekday, int) or not 0 <= weekday <= 6 or not _HHMM.match(opens) or not _HHMM.match(closes):
            raise DomainError(ErrorCode.INVALID_INPUT, f"Opening hours entry {i + 1} is not valid.", "hours")
        cleaned.append({"weekday": weekday, "opens": opens, "closes": closes})
    return sorted(cleaned, key=lambda h: (h["weekday"], h["opens"]))


def _apply(store: Store, fields: StoreFields) -> None:
    if fields.name is not None:
        store.name = text(fields.name, "name", max_len=128)
    if fields.city is not None:
        store.city = text(fields.city, "city", max_len=64)
    if fields.address is not None:
        store.address = text(fields.address, "address", max_len=255)
    if fields.phone is not None:
        store.phone = optional_text(fields.phone, "phone", max_len=32)
    if fields.lat is not None:
        store.lat = number_in(fields.lat, "lat", low=-90, high=90)
    if fields.lng is not None:
        store.lng = number_in(fields.lng, "lng", low=-180, high=180)
    if fields.timezone is not None:
        try:
            ZoneInfo(fields.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise DomainError(ErrorCode.INVALID_INPUT, "Unknown time zone.", "timezone") from exc
        store.timezone = fields.timezone
    if fields.hours is not None:
        store.hours = _check_hours(fields.hours)


async def create_store(session: AsyncSession, *, fields: StoreFields) -> Store:
    """A new store starts PREPARING: invisible to the public until HQ opens it."""
    code = text(fields.code or "", "code", max_len=32).upper()
    if not _CODE.match(code):
        raise DomainError(ErrorCode.INVALID_INPUT, "Store codes are 2-32 letters, digits or dashes.", "code")
    for required in ("name", "city", "address", "lat", "lng"):
        if getattr(fields, required) is None:
            raise DomainError(ErrorCode.INVALID_INPUT, f"{required} is required.", required)
    if await session.scalar(select(Store.id).where(Store.code == code)) is not None:
        raise DomainError(ErrorCode.DUPLICATE, f"A store with code {code} exists.", "code")
    store = Store(
        code=code, status=StoreStatus.PREPARING, hours=[], timezone="Asia/Shanghai", kind=fields.kind or StoreKind.STORE
    )
    _apply(store, fields)
    session.add(store)
    await session.flush()
    acted_in(store.id)
    return store


async def get_for_update(session: AsyncSession, store_id: int) -> Store:
    store = await session.get(Store, store_id, with_for_update=True)
    if store is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "id")
    return store


async def update_store(session: AsyncSession, *, store_id: int, fields: StoreFields) -> Store:
    acted_in(store_id)
    store = await get_for_update(session, store_id)
    _apply(store, fields)
    store.updated_at = utcnow()
    await session.flush()
    return store


async def set_status(session: AsyncSession, *, store_id: int, status: StoreStatus) -> Store:
    acted_in(store_id)
    store = await get_for_update(session, store_id)
    if status not in TRANSITIONS[store.status]:
        raise DomainError(
            ErrorCode.INVALID_TRANSITION, f"A {store.status.value} store cannot become {status.value}.", "status"
        )
    store.status = status
    store.updated_at = utcnow()
    await session.flush()
    return store


@dataclass(frozen=True)
class StoreFilter:
    kind: StoreKind | None = None
    city: str | None = None
    status: StoreStatus | None = None
    search: str | None = None


def _filtered(viewer: Viewer, flt: StoreFilter) -> AnySelect:
    stmt = select(Store).where(visible_condition(viewer))
    if flt.kind:
        stmt = stmt.where(Store.kind == flt.kind)
    if flt.city:
        stmt = stmt.where(Store.city == flt.city)
    if flt.status:
        stmt = stmt.where(Store.status == flt.status)
    if flt.search:
        term = f"%{text(flt.search, 'search', max_len=64).lower()}%"
        stmt = stmt.where(or_(func.lower(Store.name).like(term), func.lower(Store.code).like(term)))
    return stmt


async def list_stores(
    session: AsyncSession, viewer: Viewer, flt: StoreFilter, *, first: int | None, after: str | None
) -> Page[Store]:
    return await keyset_page(session, _filtered(viewer, flt), Store.id, first=first, after=after)


def distance_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(math.sqrt(a))


async def nearby_stores(
    session: AsyncSession,
    *,
    lat: float,
    lng: float,
    radius_km: float,
    first: int | None,
    after: str | None,
) -> Page[tuple[Store, float]]:
    """Open stores within `radius_km`, nearest first.

    A bounding box on the (lat, lng) index narrows the rows in SQL on any database; the exact
    great-circle distance then orders the few candidates.
    """
    number_in(lat, "lat", low=-90, high=90)
    number_in(lng, "lng", low=-180, high=180)
    number_in(radius_km, "radiusKm", low=0.1, high=MAX_RADIUS_KM)
    dlat = math.degrees(radius_km / EARTH_KM)
    dlng = math.degrees(radius_km / (EARTH_KM * max(math.cos(math.radians(lat)), 1e-6)))
    rows = (
        await session.scalars(
            select(Store).where(
                Store.status == StoreStatus.OPEN,
                Store.kind == StoreKind.STORE,
                Store.lat.between(lat - dlat, lat + dlat),
                Store.lng.between(lng - dlng, lng + dlng),
            )
        )
    ).all()
    ranked = sorted(((s, distance_km(lat, lng, s.lat, s.lng)) for s in rows), key=lambda pair: (pair[1], pair[0].id))
    return offset_page([p for p in ranked if p[1] <= radius_km], first=first, after=after)


def is_open_at(store: Store, when: datetime) -> bool:
    """Whether the store is OPEN and `when`, in the store's own time zone, falls in its hours."""
    if store.status is not StoreStatus.OPEN:
        return False
    local = when.astimezone(ZoneInfo(store.timezone))
    hhmm = local.strftime("%H:%M")
    for h in store.hours:
        if h["weekday"] != local.weekday():
            continue
        if h["opens"] == h["closes"]:  # 00:00-00:00: open around the clock that day
            return True
        # Hours past midnight (22:00-02:00) are written as closes < opens.
        if h["opens"] < h["closes"]:
            if h["opens"] <= hhmm < h["closes"]:
                return True
        elif hhmm >= h["opens"]:
            return True
    previous = (local.weekday() - 1) % 7
    return any(h["weekday"] == previous and h["closes"] < h["opens"] and hhmm < h["closes"] for h in store.hours)


def next_opening(store: Store, after: datetime, *, days: int = 8) -> datetime | None:
    """The first moment at or after `after` when the store is open: `after` itself while it is open, else the next
    opening time in its own time zone; None for a store that is not OPEN or has no hours within `days`."""
    if store.status is not StoreStatus.OPEN:
        return None
    if is_open_at(store, after):
        return after
    zone = ZoneInfo(store.timezone)
    today = after.astimezone(zone).date()
    starts = []
    for offset in range(days):
        day = today + timedelta(days=offset)
        for h in store.hours:
            if h["weekday"] == day.weekday():
                hour, minute = (int(x) for x in h["opens"].split(":"))
                starts.append(datetime.combine(day, time(hour, minute), tzinfo=zone))
    later = [s for s in starts if s >= after and is_open_at(store, s)]
    return min(later, default=None)
