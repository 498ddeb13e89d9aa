"""HQ's member rules and tools: levels and level prices, tags, level changes, member search."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import LevelPrice, Member, MemberLevel, MemberStore, MemberTag, MemberTagLink, Sku, utcnow
from services.access.permissions import Perm
from services.access.pii import PiiCipher, normalise_phone
from services.access.scope import Viewer, require
from services.members import attribute_values as member_attributes
from services.members.accounts import visible_members
from services.members.attribute_values import AttributeFilter
from services.platform.db import insert_new
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.pagination import Page, keyset_page
from services.platform.validation import text

MAX_ATTRIBUTE_FILTERS = 10
SEGMENTS = ("NEW", "VIP", "LOYAL", "REGULAR", "AT_RISK", "LOST")


def _check_level(threshold: int, discount_percent: int, multiplier_pct: int) -> None:
    if threshold < 0:
        raise DomainError(ErrorCode.INVALID_INPUT, "The spend threshold cannot be negative.", "spendThreshold")
    if not 1 <= discount_percent <= 100:
        raise DomainError(ErrorCode.INVALID_INPUT, "The discount is 1-100 percent of the price.", "discountPercent")
    if not 0 <= multiplier_pct <= 1000:
        raise DomainError(ErrorCode.INVALID_INPUT, "The points multiplier is 0-1000 percent.", "pointsMultiplierPct")


async def list_levels(session: AsyncSession) -> list[MemberLevel]:
    """The member levels, lowest threshold first (public)."""
    return list((await session.scalars(select(MemberLevel).order_by(MemberLevel.spend_threshold))).all())


async def list_tags(session: AsyncSession, viewer: Viewer) -> list[MemberTag]:
    """The member tags, by name, for staff holding member.read."""
    require(viewer, Perm.MEMBER_READ)
    return list((await session.scalars(select(MemberTag).order_by(MemberTag.name))).all())


async def create_level(
    session: AsyncSession, *, name: str, spend_threshold: int, discount_percent: int, points_multiplier_pct: int
) -> MemberLevel:
    _check_level(spend_threshold, discount_percent, points_multiplier_pct)
    name = text(name, "name", max_len=64)
    clash = await session.scalar(
        select(MemberLevel.id).where((MemberLevel.name == name) | (MemberLevel.spend_threshold == spend_threshold))
    )
    if clash is not None:
        raise DomainError(ErrorCode.DUPLICATE, "A level with this name or threshold exists.", "name")
    level = MemberLevel(
        name=name,
        spend_threshold=spend_threshold,
        discount_percent=discount_percent,
        points_multiplier_pct=points_multiplier_pct,
    )
    session.add(level)
    await session.flush()
    return level


async def update_level(
    session: AsyncSession,
    *,
    level_id: int,
    name: str | None,
    discount_percent: int | None,
    points_multiplier_pct: int | None,
) -> MemberLevel:
    level = await session.get(MemberLevel, level_id, with_for_update=True)
    if level is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such level.", "id")
    if name is not None:
        level.name = text(name, "name", max_len=64)
    if discount_percent is not None:
        level.discount_percent = discount_percent
    if points_multiplier_pct is not None:
        level.points_multiplier_pct = points_multiplier_pct
    _check_level(level.spend_threshold, level.discount_percent, level.points_multiplier_pct)
    await session.flush()
    return level


async def set_level_price(session: AsyncSession, *, level_id: int, sku_id: int, price: int | None) -> None:
    """Fix a member price for a SKU at a level, or remove it (price null)."""
    if await session.get(MemberLevel, level_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such level.", "levelId")
    if await session.get(Sku, sku_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such SKU.", "skuId")
    await session.execute(delete(LevelPrice).where(LevelPrice.level_id == level_id, LevelPrice.sku_id == sku_id))
    if price is not None:
        if price < 0:
            raise DomainError(ErrorCode.INVALID_INPUT, "Prices cannot be negative.", "price")
        session.add(LevelPrice(level_id=level_id, sku_id=sku_id, price=price))
    await session.flush()


async def set_member_level(session: AsyncSession, viewer: Viewer, *, member_id: int, level_id: int) -> Member:
    require(viewer, Perm.MEMBER_MANAGE)
    if not viewer.is_hq:
        raise AccessDenied("Levels are set by HQ.")
    member = await session.get(Member, member_id, with_for_update=True)
    if member is None or member.deleted_at is not None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such member.", "memberId")
    if await session.get(MemberLevel, level_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such level.", "levelId")
    member.level_id = level_id
    await session.flush()
    return member


async def create_tag(session: AsyncSession, *, name: str) -> MemberTag:
    name = text(name, "name", max_len=64)
    if await session.scalar(select(MemberTag.id).where(MemberTag.name == name)) is not None:
        raise DomainError(ErrorCode.DUPLICATE, "This tag exists.", "name")
    tag = MemberTag(name=name)
    session.add(tag)
    await session.flush()
    return tag


async def tag_members(session: AsyncSession, viewer: Viewer, *, tag_id: int, member_ids: list[int], add: bool) -> int:
    """Put a tag on (or take it off) many members at once; returns how many changed."""
    require(viewer, Perm.MEMBER_MANAGE)
    if not 1 <= len(member_ids) <= 1000:
        raise DomainError(ErrorCode.INVALID_INPUT, "Tag 1 to 1000 members at a time.", "memberIds")
    if await session.get(MemberTag, tag_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such tag.", "tagId")
    visible = set(
        (
            await session.scalars(
                select(Member.id).where(Member.id.in_(member_ids), visible_members(viewer, Perm.MEMBER_MANAGE))
            )
        ).all()
    )
    if visible != set(member_ids):
        raise DomainError(ErrorCode.NOT_FOUND, "Some members do not exist or are out of scope.", "memberIds")
    if not add:
        result = await session.execute(
            delete(MemberTagLink).where(MemberTagLink.tag_id == tag_id, MemberTagLink.member_id.in_(member_ids))
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
    rows = [{"member_id": m, "tag_id": tag_id, "created_at": utcnow()} for m in member_ids]
    result = await session.execute(insert_new(session, MemberTagLink, rows, unique=["member_id", "tag_id"]))
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class MemberFilter:
    level_id: int | None = None
    tag_id: int | None = None
    segment: str | None = None
    store_id: int | None = None
    last_visit_after: datetime | None = None
    last_visit_before: datetime | None = None
    min_spend: int | None = None
    max_spend: int | None = None
    phone: str | None = None
    name: str | None = None
    attributes: tuple[AttributeFilter, ...] = ()


async def search(
    session: AsyncSession, cipher: PiiCipher, viewer: Viewer, flt: MemberFilter, *, first: int | None, after: str | None
) -> Page[Member]:
    """Members the viewer may browse (HQ: all; a store manager: their store's), newest first."""
    require(viewer, Perm.MEMBER_READ)
    stmt = select(Member).where(visible_members(viewer), Member.deleted_at.is_(None))
    if flt.store_id is not None:
        if not viewer.sees_store(flt.store_id, Perm.MEMBER_READ):
            raise AccessDenied("This belongs to another store.")
        stmt = stmt.where(Member.id.in_(select(MemberStore.member_id).where(MemberStore.store_id == flt.store_id)))
    if flt.level_id is not None:
        stmt = stmt.where(Member.level_id == flt.level_id)
    if flt.tag_id is not None:
        stmt = stmt.where(Member.id.in_(select(MemberTagLink.member_id).where(MemberTagLink.tag_id == flt.tag_id)))
    if flt.segment is not None:
        if flt.segment not in SEGMENTS:
            raise DomainError(ErrorCode.INVALID_INPUT, f"Segments are {', '.join(SEGMENTS)}.", "segment")
        stmt = stmt.where(Member.segment == flt.segment)
    if flt.last_visit_after is not None:
        stmt = stmt.where(Member.last_visit_at >= flt.last_visit_after)
    if flt.last_visit_before is not None:
        stmt = stmt.where(Member.last_visit_at < flt.last_visit_before)
    if flt.min_spend is not None:
        stmt = stmt.where(Member.total_spend >= flt.min_spend)
    if flt.max_spend is not None:
        stmt = stmt.where(Member.total_spend <= flt.max_spend)
    if flt.phone:
        stmt = stmt.where(Member.phone_index == cipher.index(normalise_phone(flt.phone)))
    if flt.name:
        stmt = stmt.where(func.lower(Member.name).like(f"%{text(flt.name, 'name', max_len=64).lower()}%"))
    for attribute in flt.attributes[:MAX_ATTRIBUTE_FILTERS]:
        stmt = stmt.where(await member_attributes.condition(session, cipher, attribute))
    return await keyset_page(session, stmt, Member.id, first=first, after=after, descending=True)
