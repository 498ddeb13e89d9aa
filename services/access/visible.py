"""Which private ids a viewer may name: the one place reads and writes decide that such an id is there at all.

A store may own products (and so their SKUs), campaigns and coupon templates; HQ sees them all, that store's staff
see their own and the chain's, other stores' staff do not. An id a viewer cannot see is answered exactly like an id
that does not exist: the same NOT_FOUND code, message and field, before anything is written. Loaders and lists use
the same conditions, so a read and a write never disagree about what is there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from models import Campaign, CouponTemplate, Product, Sku
from services.access.scope import Viewer
from services.platform.errors import DomainError, ErrorCode


def owned_condition(viewer: Viewer, owner: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
    """Rows owned by no store (the chain's) or by the viewer's store; HQ sees every store's."""
    if viewer.is_hq:
        return true()
    if viewer.is_staff and viewer.store_id is not None:
        return owner.is_(None) | (owner == viewer.store_id)
    return owner.is_(None)


def template_condition(viewer: Viewer) -> ColumnElement[bool]:
    """Coupon templates: staff see the chain's and their store's; members and visitors see terms to claim and the
    terms of coupons they hold, whichever store issued them, so only staff are limited."""
    if viewer.is_staff:
        return owned_condition(viewer, CouponTemplate.owner_store_id)
    return true()


_KINDS: dict[type[Any], tuple[Callable[[Viewer], Any], str]] = {
    Sku: (
        lambda v: (
            select(Sku.id).join(Product, Product.id == Sku.product_id).where(owned_condition(v, Product.owner_store_id))
        ),
        "No such SKU.",
    ),
    CouponTemplate: (lambda v: select(CouponTemplate.id).where(template_condition(v)), "No such coupon template."),
    Campaign: (lambda v: select(Campaign.id).where(owned_condition(v, Campaign.owner_store_id)), "No such campaign."),
}


async def visible_ids(session: AsyncSession, viewer: Viewer, model: type[Any], ids: Sequence[int]) -> set[int]:
    """Those of `ids` that exist and the viewer may see."""
    if not ids:
        return set()
    query, _ = _KINDS[model]
    stmt = query(viewer)
    return {int(i) for i in (await session.scalars(stmt.where(model.id.in_(set(ids))))).all()}


async def require_visible(
    session: AsyncSession, viewer: Viewer, model: type[Any], ids: Sequence[int], field: str | Callable[[int], str]
) -> None:
    """NOT_FOUND (on `field`, or `field(i)` for the i-th id) for the first id that is missing or not the viewer's
    to see; the same answer either way."""
    seen = await visible_ids(session, viewer, model, ids)
    for i, value in enumerate(ids):
        if value not in seen:
            raise DomainError(ErrorCode.NOT_FOUND, _KINDS[model][1], field(i) if callable(field) else field)
