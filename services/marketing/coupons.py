"""Coupons: templates, and getting them into members' wallets: claimed, issued in batches, or given automatically.

Every grant goes through `grant`, one INSERT ... SELECT for any number of members: the members who have
not reached the template's per-member limit each get one coupon, numbered by `seq` (a unique key, so two
grants racing for one member cannot exceed the limit), and the template's issued counter moves by exactly
the rows written, never past its total. A million members is one statement, not a million round trips.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, extract, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    CampaignStatus,
    CouponKind,
    CouponSource,
    CouponTemplate,
    CouponTrigger,
    Member,
    MemberCoupon,
    MemberCouponStatus,
    Sku,
    utcnow,
)
from services.access.permissions import Perm
from services.access.pii import PiiCipher
from services.access.scope import Viewer, idempotency_scope, require
from services.access.visible import require_visible, template_condition
from services.marketing.promotions import runs_in
from services.members import attribute_values
from services.members.attribute_values import AttributeFilter
from services.org.settings import get_settings
from services.platform import idempotency, jobs
from services.platform.config import CHAIN_TZ
from services.platform.db import dialect_insert
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.pagination import Page, keyset_page
from services.platform.validation import text

MAX_LIST = 10_000
MAX_ATTRIBUTE_FILTERS = 10


@dataclass(frozen=True)
class NewTemplate:
    name: str
    kind: CouponKind
    valid_from: datetime
    valid_until: datetime
    threshold: int = 0
    amount_off: int = 0
    percent: int = 100
    cap: int | None = None
    free_sku_id: int | None = None
    store_ids: list[int] | None = None
    category_ids: list[int] | None = None
    sku_ids: list[int] | None = None
    valid_days: int | None = None
    total_quantity: int | None = None
    per_member_limit: int = 1
    stackable: bool = True
    claimable: bool = True
    trigger: CouponTrigger = CouponTrigger.NONE


def _invalid(message: str, field: str) -> DomainError:
    return DomainError(ErrorCode.INVALID_INPUT, message, field)


def _check(spec: NewTemplate) -> None:
    if spec.valid_until <= spec.valid_from:
        raise _invalid("A coupon is valid until after it starts.", "validUntil")
    if spec.valid_days is not None and not 1 <= spec.valid_days <= 366:
        raise _invalid("Valid for 1-366 days after claiming.", "validDays")
    if spec.total_quantity is not None and spec.total_quantity < 1:
        raise _invalid("Issue at least one.", "totalQuantity")
    if not 1 <= spec.per_member_limit <= 100:
        raise _invalid("A member may hold 1-100 of a template.", "perMemberLimit")
    if spec.threshold < 0:
        raise _invalid("The threshold is not negative.", "threshold")
    match spec.kind:
        case CouponKind.THRESHOLD_OFF:
            if not 0 < spec.amount_off < spec.threshold:
                raise _invalid("Take off less than the threshold.", "amountOff")
        case CouponKind.AMOUNT_OFF:
            if spec.amount_off <= 0:
                raise _invalid("Take off a positive amount.", "amountOff")
        case CouponKind.PERCENT_OFF:
            if not 1 <= spec.percent <= 99:
                raise _invalid("Pay 1-99 percent.", "percent")
            if spec.cap is not None and spec.cap <= 0:
                raise _invalid("The cap is positive.", "cap")
        case CouponKind.FREE_ITEM:
            if spec.free_sku_id is None:
                raise _invalid("Name the free item.", "freeSkuId")


async def list_templates(
    session: AsyncSession, viewer: Viewer, *, first: int | None, after: str | None
) -> Page[CouponTemplate]:
    """The coupon templates the viewer manages, newest first."""
    require(viewer, Perm.MARKETING_MANAGE)
    stmt = select(CouponTemplate).where(template_condition(viewer))
    return await keyset_page(session, stmt, CouponTemplate.id, first=first, after=after, descending=True)


async def member_coupons(
    session: AsyncSession, viewer: Viewer, *, usable_only: bool, first: int | None, after: str | None
) -> Page[MemberCoupon]:
    """The signed-in member's coupons, newest first; `usable_only`: those still available and valid."""
    stmt = select(MemberCoupon).where(MemberCoupon.member_id == viewer.member_id)
    if usable_only:
        stmt = stmt.where(MemberCoupon.status == MemberCouponStatus.AVAILABLE, MemberCoupon.valid_until > utcnow())
    return await keyset_page(session, stmt, MemberCoupon.id, first=first, after=after, descending=True)


async def claimable(session: AsyncSession, store_id: int | None, at: datetime) -> list[CouponTemplate]:
    """The coupons a member may claim at `at` (public), in `store_id` (None: anywhere)."""
    rows = (
        await session.scalars(
            select(CouponTemplate)
            .where(
                CouponTemplate.status == CampaignStatus.ACTIVE,
                CouponTemplate.claimable.is_(True),
                CouponTemplate.trigger == CouponTrigger.NONE,
                CouponTemplate.valid_from <= at,
                CouponTemplate.valid_until > at,
            )
            .order_by(CouponTemplate.id)
        )
    ).all()
    return [t for t in rows if runs_in(t.store_ids, store_id)]


async def create_template(session: AsyncSession, viewer: Viewer, spec: NewTemplate) -> CouponTemplate:
    """HQ designs coupons for any stores; a store's coupons are for itself, within HQ's discount limit."""
    require(viewer, Perm.MARKETING_MANAGE)
    _check(spec)
    store_ids, owner = spec.store_ids, None
    if not viewer.is_hq:
        cap = (await get_settings(session)).store_campaign_max_discount_pct
        too_deep = (
            spec.kind in (CouponKind.AMOUNT_OFF, CouponKind.FREE_ITEM)
            or (spec.kind is CouponKind.THRESHOLD_OFF and spec.amount_off * 100 > spec.threshold * cap)
            or (spec.kind is CouponKind.PERCENT_OFF and 100 - spec.percent > cap)
        )
        if too_deep or spec.trigger not in (CouponTrigger.NONE, CouponTrigger.NEW_VISITOR):
            raise DomainError(
                ErrorCode.CAMPAIGN_NOT_ALLOWED,
                f"Store coupons take at most {cap}% off, with a threshold, claimed or given on a first visit.",
                "kind",
            )
        if store_ids not in (None, [viewer.store_id]):
            raise AccessDenied("A store's coupons are for its own store.")
        owner, store_ids = viewer.store_id, [viewer.store_id] if viewer.store_id is not None else None
    if spec.free_sku_id is not None:
        await require_visible(session, viewer, Sku, [spec.free_sku_id], "freeSkuId")
    await require_visible(session, viewer, Sku, spec.sku_ids or [], lambda n: f"skuIds[{n}]")
    template = CouponTemplate(
        name=text(spec.name, "name", max_len=64),
        kind=spec.kind,
        threshold=spec.threshold,
        amount_off=spec.amount_off,
        percent=spec.percent,
        cap=spec.cap,
        free_sku_id=spec.free_sku_id,
        store_ids=store_ids,
        category_ids=spec.category_ids,
        sku_ids=spec.sku_ids,
        valid_from=spec.valid_from,
        valid_until=spec.valid_until,
        valid_days=spec.valid_days,
        total_quantity=spec.total_quantity,
        issued=0,
        per_member_limit=spec.per_member_limit,
        stackable=spec.stackable,
        claimable=spec.claimable,
        trigger=spec.trigger,
        owner_store_id=owner,
        status=CampaignStatus.ACTIVE,
    )
    session.add(template)
    await session.flush()
    return template


async def end_template(session: AsyncSession, viewer: Viewer, template_id: int) -> CouponTemplate:
    require(viewer, Perm.MARKETING_MANAGE)
    await require_visible(session, viewer, CouponTemplate, [template_id], "id")  # another store's: as if none
    template = await _template(session, template_id)
    if not viewer.is_hq and template.owner_store_id != viewer.store_id:
        raise AccessDenied("This belongs to another store.")
    template.status = CampaignStatus.ENDED
    await session.flush()
    return template


async def _template(session: AsyncSession, template_id: int) -> CouponTemplate:
    template = await session.get(CouponTemplate, template_id)
    if template is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such coupon.", "templateId")
    return template


async def grant(
    session: AsyncSession,
    template: CouponTemplate,
    members: ColumnElement[bool],
    source: CouponSource,
    now: datetime,
    *,
    once_within: timedelta | None = None,
) -> int:
    """One coupon of `template` to every member matching `members` who is under the limit; returns how many."""
    if template.status is not CampaignStatus.ACTIVE or now >= template.valid_until:
        raise DomainError(ErrorCode.CAMPAIGN_NOT_ACTIVE, "This coupon is no longer given out.", "templateId")
    mine = select(func.count()).where(MemberCoupon.template_id == template.id, MemberCoupon.member_id == Member.id)
    if once_within is not None:  # yearly gifts: one per period, whatever the limit
        under = ~exists().where(
            MemberCoupon.template_id == template.id,
            MemberCoupon.member_id == Member.id,
            MemberCoupon.created_at > now - once_within,
        )
    else:
        under = mine.scalar_subquery() < template.per_member_limit
    who = and_(members, Member.deleted_at.is_(None), under)
    wanted = int(await session.scalar(select(func.count()).select_from(Member).where(who)) or 0)
    if wanted == 0:
        return 0
    guard = update(CouponTemplate).where(CouponTemplate.id == template.id)
    if template.total_quantity is not None:
        guard = guard.where(CouponTemplate.issued + wanted <= template.total_quantity)
    claimed = await session.execute(
        guard.values(issued=CouponTemplate.issued + wanted).execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise DomainError(ErrorCode.COUPONS_EXHAUSTED, "Not enough of this coupon is left.", "templateId")
    starts = max(now, template.valid_from) if template.valid_days else template.valid_from
    ends = (
        min(starts + timedelta(days=template.valid_days), template.valid_until)
        if template.valid_days
        else (template.valid_until)
    )
    rows = select(
        literal(template.id),
        Member.id,
        mine.scalar_subquery() + 1,
        literal(MemberCouponStatus.AVAILABLE.value),
        literal(source.value),
        literal(starts, MemberCoupon.valid_from.type),
        literal(ends, MemberCoupon.valid_until.type),
        literal(now, MemberCoupon.created_at.type),
    ).where(who)
    columns = ["template_id", "member_id", "seq", "status", "source", "valid_from", "valid_until", "created_at"]
    stmt = dialect_insert(session, MemberCoupon).from_select(columns, rows).on_conflict_do_nothing()
    written = int((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]
    if written != wanted:  # a racing grant took some of these members first: count only what was written
        await session.execute(
            update(CouponTemplate)
            .where(CouponTemplate.id == template.id)
            .values(issued=CouponTemplate.issued - (wanted - written))
        )
    return written


async def claim(session: AsyncSession, viewer: Viewer, template_id: int, now: datetime | None = None) -> MemberCoupon:
    """A member takes a coupon in the mini-program (领券)."""
    if not viewer.is_member or viewer.member_id is None:
        raise AccessDenied("Only members claim coupons.")
    now = now or utcnow()
    template = await _template(session, template_id)
    if not template.claimable or template.trigger is not CouponTrigger.NONE or now < template.valid_from:
        raise DomainError(ErrorCode.CAMPAIGN_NOT_ACTIVE, "This coupon cannot be claimed now.", "templateId")
    if not await grant(session, template, Member.id == viewer.member_id, CouponSource.CLAIM, now):
        raise DomainError(ErrorCode.COUPON_LIMIT_REACHED, "You already hold as many as allowed.", "templateId")
    coupon = await session.scalar(
        select(MemberCoupon)
        .where(MemberCoupon.template_id == template.id, MemberCoupon.member_id == viewer.member_id)
        .order_by(MemberCoupon.seq.desc())
        .limit(1)
    )
    assert coupon is not None
    return coupon


@dataclass(frozen=True)
class Audience:
    """Who a batch issue reaches: a segment, a level, a list of members, and/or members' attribute values (肤质 油性);
    all that are given must match."""

    segment: str | None = None
    level_id: int | None = None
    member_ids: list[int] | None = None
    attributes: tuple[AttributeFilter, ...] = ()


async def issue(
    session: AsyncSession,
    viewer: Viewer,
    template_id: int,
    audience: Audience,
    now: datetime | None = None,
    cipher: PiiCipher | None = None,
) -> int:
    """HQ issues a coupon to a segment, a level, a list of members or members by attribute value in one statement;
    returns how many got one."""
    require(viewer, Perm.MARKETING_MANAGE)
    if not viewer.is_hq:
        raise AccessDenied("HQ issues coupons to members in bulk.")
    if audience.segment is None and audience.level_id is None and not audience.member_ids and not audience.attributes:
        raise _invalid("Say who gets it: a segment, a level, members or attribute values.", "segment")
    if audience.member_ids is not None and len(audience.member_ids) > MAX_LIST:
        raise _invalid(f"At most {MAX_LIST} members per list; use a segment or a level for more.", "memberIds")
    conditions = []
    if audience.segment is not None:
        conditions.append(Member.segment == audience.segment)
    if audience.level_id is not None:
        conditions.append(Member.level_id == audience.level_id)
    if audience.member_ids:
        conditions.append(Member.id.in_(audience.member_ids))
    if audience.attributes and cipher is None:
        raise RuntimeError("attribute audiences need the PII cipher (sensitive values are matched by keyed index)")
    for flt in audience.attributes[:MAX_ATTRIBUTE_FILTERS]:
        assert cipher is not None
        conditions.append(await attribute_values.condition(session, cipher, flt))
    template = await _template(session, template_id)
    return await grant(session, template, and_(*conditions), CouponSource.ISSUE, now or utcnow())


async def grant_automatic(
    session: AsyncSession,
    trigger: CouponTrigger,
    member_id: int,
    *,
    store_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """New member (新人礼) and first visit to a store (进店有礼) packs: every running template of the trigger."""
    now = now or utcnow()
    templates = (
        await session.scalars(
            select(CouponTemplate).where(
                CouponTemplate.trigger == trigger,
                CouponTemplate.status == CampaignStatus.ACTIVE,
                CouponTemplate.valid_from <= now,
                CouponTemplate.valid_until > now,
            )
        )
    ).all()
    given = 0
    for template in templates:
        if store_id is not None and template.store_ids and store_id not in template.store_ids:
            continue
        try:
            given += await grant(session, template, Member.id == member_id, CouponSource.AUTO, now)
        except DomainError as exc:
            if exc.code is not ErrorCode.COUPONS_EXHAUSTED:  # a pack that ran out is simply not given
                raise
    return given


async def grant_birthdays(session: AsyncSession, now: datetime) -> int:
    """The daily birthday gift: members born on today's date (chain time), once a year per template."""
    today = now.astimezone(CHAIN_TZ).date()
    born_today = and_(extract("month", Member.birthday) == today.month, extract("day", Member.birthday) == today.day)
    templates = (
        await session.scalars(
            select(CouponTemplate).where(
                CouponTemplate.trigger == CouponTrigger.BIRTHDAY,
                CouponTemplate.status == CampaignStatus.ACTIVE,
                CouponTemplate.valid_from <= now,
                CouponTemplate.valid_until > now,
            )
        )
    ).all()
    given = 0
    for template in templates:
        try:
            given += await grant(session, template, born_today, CouponSource.AUTO, now, once_within=timedelta(days=300))
        except DomainError as exc:
            if exc.code is not ErrorCode.COUPONS_EXHAUSTED:
                raise
    return given


# The daily job runs it (registered here, in its own domain; services/registry.py imports this module).
jobs.daily("coupons.birthday", hour=0)(grant_birthdays)


async def claim_once(
    session: AsyncSession, viewer: Viewer, template_id: int, *, key: str, now: datetime | None = None
) -> MemberCoupon:
    """`claim` once per idempotency key: a retried tap returns the coupon it took, not a second one."""

    async def load(stored: dict[str, Any]) -> MemberCoupon:
        coupon = await session.get(MemberCoupon, int(stored["coupon_id"]))
        assert coupon is not None
        return coupon

    return await idempotency.once(
        session,
        scope=idempotency_scope(viewer, "claimCoupon"),
        key=key,
        request={"template": template_id},
        run=lambda: claim(session, viewer, template_id, now),
        save=lambda c: {"coupon_id": c.id},
        load=load,
    )


async def issue_once(
    session: AsyncSession,
    viewer: Viewer,
    template_id: int,
    audience: Audience,
    *,
    key: str,
    now: datetime | None = None,
    cipher: PiiCipher | None = None,
) -> int:
    """`issue` once per idempotency key: a retried batch issues nothing more and answers the first count."""
    request: dict[str, Any] = {
        "template": template_id,
        "segment": audience.segment,
        "level": audience.level_id,
        "members": None if audience.member_ids is None else sorted(audience.member_ids),
    }
    if audience.attributes and cipher is not None:  # values kept only as keyed hashes
        request["attributes"] = attribute_values.fingerprint(cipher, audience.attributes)

    async def load(stored: dict[str, Any]) -> int:
        return int(stored["issued"])

    return await idempotency.once(
        session,
        scope=idempotency_scope(viewer, "issueCoupons"),
        key=key,
        request=request,
        run=lambda: issue(session, viewer, template_id, audience, now, cipher),
        save=lambda n: {"issued": n},
        load=load,
    )
