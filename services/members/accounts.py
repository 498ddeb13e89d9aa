"""Members: one person valid in every store. Sign-in, POS registration and lookup, profile, scope.

Which staff may see a member is decided by the member-store relation: HQ sees everyone, a store's
staff see members registered at, buying at, or identified at (member code scanned) their store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, false, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    CouponTrigger,
    Gender,
    Member,
    MemberIdentity,
    MemberLevel,
    MemberStore,
    Store,
    StoreStatus,
    utcnow,
)
from services.access.identity import ExternalIdentity
from services.access.permissions import Perm
from services.access.pii import PiiCipher, mask_phone, normalise_phone
from services.access.scope import Viewer, counter_store, require
from services.marketing import coupons
from services.members.code import MemberCodes
from services.platform import public_reads
from services.platform.db import insert_new
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.validation import optional_text


def visible_members(viewer: Viewer, permission: Perm = Perm.MEMBER_READ) -> ColumnElement[bool]:
    """The members a viewer may see: themself; HQ everyone; store staff those related to their store."""
    if viewer.is_member:
        return Member.id == viewer.member_id
    if not viewer.can(permission):
        return false()
    if viewer.is_hq:
        return true()
    return Member.id.in_(select(MemberStore.member_id).where(MemberStore.store_id == viewer.store_id))


async def may_see(session: AsyncSession, viewer: Viewer, member_id: int, permission: Perm) -> bool:
    found = await session.scalar(select(Member.id).where(Member.id == member_id, visible_members(viewer, permission)))
    return found is not None


async def relate(session: AsyncSession, member_id: int, store_id: int, *, registered: bool = False) -> None:
    """Record that the member is known at the store (idempotent)."""
    values = {
        "member_id": member_id,
        "store_id": store_id,
        "registered": registered,
        "purchase_count": 0,
        "spend": 0,
        "first_seen_at": utcnow(),
    }
    inserted = await session.execute(
        insert_new(session, MemberStore, values, unique=["member_id", "store_id"]).returning(MemberStore.member_id)
    )
    if inserted.first() is not None:  # the first time this store knows the member: 进店有礼
        await coupons.grant_automatic(session, CouponTrigger.NEW_VISITOR, member_id, store_id=store_id)
    if registered:
        await session.execute(
            update(MemberStore)
            .where(MemberStore.member_id == member_id, MemberStore.store_id == store_id)
            .values(registered=True)
        )


async def _store_for_joining(session: AsyncSession, store_id: int | None) -> int | None:
    if store_id is None:
        return None
    status = await session.scalar(select(Store.status).where(Store.id == store_id))
    if status is None or status is StoreStatus.PREPARING:
        raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeId")
    return store_id


def _set_phone(member: Member, cipher: PiiCipher, phone: str) -> None:
    member.phone_enc = cipher.encrypt(phone)
    member.phone_index = cipher.index(phone)
    member.phone_prefix, member.phone_last4 = phone[:3], phone[-4:]


async def member_for_identity(
    session: AsyncSession, cipher: PiiCipher, identity: ExternalIdentity, *, store_id: int | None
) -> tuple[Member, bool]:
    """Find the member behind an external identity, creating them on first sign-in."""
    existing = await session.scalar(
        select(Member)
        .join(MemberIdentity, MemberIdentity.member_id == Member.id)
        .where(MemberIdentity.provider == identity.provider, MemberIdentity.subject == identity.subject)
    )
    if existing is not None:
        if existing.deleted_at is not None:
            raise DomainError(ErrorCode.MEMBER_DELETED, "This account was deleted.")
        return existing, False
    home_store_id = await _store_for_joining(session, store_id)
    member: Member | None = None
    if identity.phone:
        phone = normalise_phone(identity.phone)
        # One person, one member: a phone already registered (e.g. at a POS) gains this identity.
        member = await session.scalar(select(Member).where(Member.phone_index == cipher.index(phone)))
    if member is None:
        member = Member(home_store_id=home_store_id, level_id=await entry_level_id(session))
        if identity.phone:
            _set_phone(member, cipher, normalise_phone(identity.phone))
        session.add(member)
        await session.flush()
        await coupons.grant_automatic(session, CouponTrigger.NEW_MEMBER, member.id)
    session.add(MemberIdentity(member_id=member.id, provider=identity.provider, subject=identity.subject))
    if home_store_id is not None:
        await relate(session, member.id, home_store_id, registered=True)
    await session.flush()
    return member, True


async def entry_level_id(session: AsyncSession) -> int | None:
    """The level every member starts at: the one with the lowest threshold."""
    return await session.scalar(select(MemberLevel.id).order_by(MemberLevel.spend_threshold).limit(1))


async def register_at_store(
    session: AsyncSession, cipher: PiiCipher, viewer: Viewer, *, phone: str, name: str | None, store_id: int
) -> Member:
    """A clerk registers a walk-in customer by phone; a phone already known is MEMBER_EXISTS."""
    require(viewer, Perm.MEMBER_LOOKUP)
    if not viewer.sees_store(store_id, Perm.MEMBER_LOOKUP):
        raise AccessDenied("This belongs to another store.")
    number = normalise_phone(phone)
    if await session.scalar(select(Member.id).where(Member.phone_index == cipher.index(number))) is not None:
        raise DomainError(ErrorCode.MEMBER_EXISTS, "This phone is already a member; scan their member code.", "phone")
    home = await _store_for_joining(session, store_id)
    member = Member(
        name=optional_text(name, "name", max_len=64), home_store_id=home, level_id=await entry_level_id(session)
    )
    _set_phone(member, cipher, number)
    session.add(member)
    await session.flush()
    await coupons.grant_automatic(session, CouponTrigger.NEW_MEMBER, member.id)
    await relate(session, member.id, store_id, registered=True)
    return member


async def find_by_phone(session: AsyncSession, cipher: PiiCipher, viewer: Viewer, *, phone: str) -> Member | None:
    """Exact phone lookup: among the members the viewer's store already knows (HQ: everyone)."""
    require(viewer, Perm.MEMBER_LOOKUP)
    index = cipher.index(normalise_phone(phone))
    return await session.scalar(
        select(Member).where(
            Member.phone_index == index, Member.deleted_at.is_(None), visible_members(viewer, Perm.MEMBER_LOOKUP)
        )
    )


def shown_phone(cipher: PiiCipher, viewer: Viewer, member: Member) -> str | None:
    """A member's phone as a viewer sees it: in full to the member, 138****5678 to staff (revealMemberPhone shows it
    in full, audited)."""
    if member.phone_enc is None:
        return None
    if viewer.member_id == member.id:
        return cipher.decrypt(member.phone_enc)
    return mask_phone(prefix=member.phone_prefix, last4=member.phone_last4)


async def identify_at_counter(
    session: AsyncSession,
    cipher: PiiCipher,
    codes: MemberCodes,
    viewer: Viewer,
    *,
    code: str | None,
    phone: str | None,
    store_id: int | None,
) -> Member:
    """The POS finds the member in front of the counter: by their member code, or an exact phone number."""
    store = counter_store(viewer, store_id)
    if code:
        return await identify_by_code(session, viewer, member_id=codes.verify(code), store_id=store)
    if phone:
        found = await find_by_phone(session, cipher, viewer, phone=phone)
        if found is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No member with this phone at this store; scan their code.", "phone")
        return found
    raise DomainError(ErrorCode.INVALID_INPUT, "Give a member code or a phone number.", "code")


async def register_walk_in(
    session: AsyncSession, cipher: PiiCipher, viewer: Viewer, *, phone: str, name: str | None, store_id: int | None
) -> Member:
    """A clerk registers a walk-in customer at the counter of the store named (else their own)."""
    store = counter_store(viewer, store_id)
    return await register_at_store(session, cipher, viewer, phone=phone, name=name, store_id=store)


async def identify_by_code(session: AsyncSession, viewer: Viewer, *, member_id: int, store_id: int) -> Member:
    """A member showed their code at the counter: from now on this store knows them."""
    require(viewer, Perm.MEMBER_LOOKUP)
    if not viewer.sees_store(store_id, Perm.MEMBER_LOOKUP):
        raise AccessDenied("This belongs to another store.")
    member = await session.get(Member, member_id)
    if member is None or member.deleted_at is not None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such member.", "code")
    await relate(session, member_id, store_id)
    return member


@dataclass(frozen=True)
class ProfileChanges:
    name: str | None = None
    birthday: date | None = None
    gender: Gender | None = None


async def update_profile(session: AsyncSession, viewer: Viewer, changes: ProfileChanges) -> Member:
    if not viewer.is_member or viewer.member_id is None:
        raise AccessDenied("Only members edit their own profile.")
    member = await session.get(Member, viewer.member_id, with_for_update=True)
    if member is None or member.deleted_at is not None:
        raise DomainError(ErrorCode.MEMBER_DELETED, "This account was deleted.")
    if changes.name is not None:
        member.name = optional_text(changes.name, "name", max_len=64)
    if changes.birthday is not None:
        if not date(1900, 1, 1) <= changes.birthday <= utcnow().date():
            raise DomainError(ErrorCode.INVALID_INPUT, "The birthday is not valid.", "birthday")
        member.birthday = changes.birthday
    if changes.gender is not None:
        member.gender = changes.gender
    member.updated_at = utcnow()
    await session.flush()
    return member


async def reveal_phone(session: AsyncSession, cipher: PiiCipher, viewer: Viewer, *, member_id: int) -> str | None:
    """The full phone number, for staff holding member.read_pii for this member (the caller audits it). A member
    outside the viewer's scope is, to them, a member that does not exist (as for revealMemberAttribute)."""
    require(viewer, Perm.MEMBER_READ_PII)
    if not await may_see(session, viewer, member_id, Perm.MEMBER_READ_PII):
        raise DomainError(ErrorCode.NOT_FOUND, "No such member.", "memberId")
    blob = await session.scalar(select(Member.phone_enc).where(Member.id == member_id))
    return cipher.decrypt(blob) if blob else None


async def record_purchase(
    session: AsyncSession, *, member_id: int, store_id: int, amount: int, at: datetime | None = None
) -> None:
    """Feed a paid order into the member: spend, visits, the store relation, and an automatic level up."""
    at = at or utcnow()
    await session.execute(
        update(Member)
        .where(Member.id == member_id)
        .values(total_spend=Member.total_spend + amount, visit_count=Member.visit_count + 1, last_visit_at=at)
        .execution_options(synchronize_session=False)
    )
    await relate(session, member_id, store_id)
    await session.execute(
        update(MemberStore)
        .where(MemberStore.member_id == member_id, MemberStore.store_id == store_id)
        .values(purchase_count=MemberStore.purchase_count + 1, spend=MemberStore.spend + amount, last_purchase_at=at)
    )
    await apply_level_up(session, member_id)


async def apply_level_up(session: AsyncSession, member_id: int) -> None:
    """Move the member up to the highest level their spend has reached (never down automatically)."""
    row = (
        await session.execute(
            select(Member.total_spend, MemberLevel.spend_threshold)
            .outerjoin(MemberLevel, MemberLevel.id == Member.level_id)
            .where(Member.id == member_id)
        )
    ).first()
    if row is None:
        return
    reached = await session.scalar(
        select(MemberLevel.id)
        .where(MemberLevel.spend_threshold <= row.total_spend)
        .order_by(MemberLevel.spend_threshold.desc())
        .limit(1)
    )
    if reached is None:
        return
    reached_threshold = await session.scalar(select(MemberLevel.spend_threshold).where(MemberLevel.id == reached))
    if row.spend_threshold is None or (reached_threshold or 0) > row.spend_threshold:
        await session.execute(update(Member).where(Member.id == member_id).values(level_id=reached))
        public_reads.changed(session.info, [public_reads.member_tag(member_id)])  # their pages now price anew
