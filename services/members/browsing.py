"""Browsing history (浏览记录): the products a member looked at in the mini-program.

The mini-program sends views in batches; each is kept at most once per member, product and minute by a unique key
(insert-or-ignore on both databases), so retries and concurrent batches never double a view. The member sees and
clears their own history; staff in scope see which categories a member looks at; recommendations weigh views
below purchases (services/analytics/recommendations.py). A daily job purges views older than 90 days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import CatalogStatus, Member, Product, ProductView, Store, utcnow
from services.access.scope import Viewer
from services.catalog.products import visible_products
from services.org import stores
from services.platform import jobs
from services.platform.db import insert_new
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.pagination import Page, keyset_page

KEEP_DAYS = 90
MAX_BATCH = 50
TOP_CATEGORIES = 5


def _own(viewer: Viewer) -> int:
    if not viewer.is_member or viewer.member_id is None:
        raise AccessDenied("Only a member has a browsing history.")
    return viewer.member_id


def minute_of(at: datetime) -> int:
    """The dedupe bucket: whole minutes since the epoch."""
    return int(at.timestamp()) // 60


async def record_views(
    session: AsyncSession,
    viewer: Viewer,
    *,
    product_ids: Sequence[int],
    store_id: int | None,
    now: datetime | None = None,
) -> int:
    """Record that the member looked at these products now; returns how many views were new (a product already
    recorded this minute, or no longer on offer, is skipped)."""
    member_id = _own(viewer)
    if not 1 <= len(product_ids) <= MAX_BATCH:
        raise DomainError(ErrorCode.INVALID_INPUT, f"Send 1 to {MAX_BATCH} products at a time.", "productIds")
    visible = select(Store.id).where(Store.id == store_id, stores.visible_condition(viewer))
    if store_id is not None and await session.scalar(visible) is None:  # a warehouse is as absent as a random id
        raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeId")
    known = (
        await session.scalars(
            select(Product.id).where(
                Product.id.in_(set(product_ids)), Product.status == CatalogStatus.ACTIVE, visible_products(viewer)
            )
        )
    ).all()
    if not known:
        return 0
    now = now or utcnow()
    rows = [
        {"member_id": member_id, "product_id": p, "store_id": store_id, "minute": minute_of(now), "viewed_at": now}
        for p in sorted(known)
    ]
    result = await session.execute(insert_new(session, ProductView, rows, unique=["member_id", "product_id", "minute"]))
    return max(int(result.rowcount or 0), 0)  # type: ignore[attr-defined]


async def history(session: AsyncSession, viewer: Viewer, *, first: int | None, after: str | None) -> Page[ProductView]:
    """The member's own views, newest first."""
    member_id = _own(viewer)
    stmt = select(ProductView).where(ProductView.member_id == member_id)
    return await keyset_page(session, stmt, ProductView.id, first=first, after=after, descending=True)


async def clear_history(session: AsyncSession, viewer: Viewer) -> int:
    """The member clears their history; returns how many views went."""
    member_id = _own(viewer)
    result = await session.execute(delete(ProductView).where(ProductView.member_id == member_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class CategoryInterest:
    category_id: int
    views: int
    last_viewed_at: datetime


async def categories_viewed(
    session: AsyncSession, member_ids: Sequence[int], visible: ColumnElement[bool], now: datetime | None = None
) -> dict[int, list[CategoryInterest]]:
    """For each member the viewer may see (`visible`, on Member), the categories they looked at most over the kept
    window: one statement for all the members."""
    since = (now or utcnow()) - timedelta(days=KEEP_DAYS)
    rows = (
        await session.execute(
            select(
                ProductView.member_id,
                Product.category_id,
                func.count(ProductView.id).label("n"),
                func.max(ProductView.viewed_at).label("last"),
            )
            .join(Product, Product.id == ProductView.product_id)
            .join(Member, Member.id == ProductView.member_id)
            .where(ProductView.member_id.in_(list(member_ids)), ProductView.viewed_at >= since, visible)
            .group_by(ProductView.member_id, Product.category_id)
        )
    ).all()
    found: dict[int, list[CategoryInterest]] = defaultdict(list)
    for member_id, category_id, n, last in rows:
        found[int(member_id)].append(CategoryInterest(int(category_id), int(n), last))
    return {
        m: sorted(c, key=lambda x: (-x.views, -x.last_viewed_at.timestamp(), x.category_id))[:TOP_CATEGORIES]
        for m, c in found.items()
    }


async def purge(session: AsyncSession, now: datetime | None = None) -> int:
    """Delete views older than 90 days (the daily job); running it twice deletes nothing more."""
    before = (now or utcnow()) - timedelta(days=KEEP_DAYS)
    result = await session.execute(delete(ProductView).where(ProductView.viewed_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# The daily job runs it (registered here, in its own domain; services/registry.py imports this module).
jobs.daily("members.views_purge", hour=2)(purge)


async def exported(session: AsyncSession, member_id: int) -> list[dict[str, Any]]:
    """The member's views, for their data export."""
    rows = (
        await session.scalars(select(ProductView).where(ProductView.member_id == member_id).order_by(ProductView.id))
    ).all()
    return [{"productId": v.product_id, "storeId": v.store_id, "at": v.viewed_at.isoformat()} for v in rows]


async def erase(session: AsyncSession, member_id: int) -> None:
    """Delete the member's views with their account."""
    await session.execute(delete(ProductView).where(ProductView.member_id == member_id))
