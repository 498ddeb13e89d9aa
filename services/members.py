"""Members: sign-in through an identity provider (first sign-in creates the member)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Member, MemberIdentity, Store, StoreStatus
from services.errors import DomainError, ErrorCode
from services.identity import ExternalIdentity
from services.pii import PiiCipher, normalise_phone


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
        return existing, False
    home_store_id = None
    if store_id is not None:
        status = await session.scalar(select(Store.status).where(Store.id == store_id))
        if status is None or status is StoreStatus.PREPARING:
            raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeId")
        home_store_id = store_id
    member = Member(home_store_id=home_store_id)
    if identity.phone:
        phone = normalise_phone(identity.phone)
        index = cipher.index(phone)
        # One person, one member: a phone already registered (e.g. at a POS) gains this identity.
        by_phone = await session.scalar(select(Member).where(Member.phone_index == index))
        if by_phone is not None:
            member = by_phone
        else:
            member.phone_enc = cipher.encrypt(phone)
            member.phone_index = index
            member.phone_last4 = phone[-4:]
    if member.id is None:
        session.add(member)
        await session.flush()
    session.add(MemberIdentity(member_id=member.id, provider=identity.provider, subject=identity.subject))
    await session.flush()
    return member, True
