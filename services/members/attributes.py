"""Member attributes (自定义属性): HQ declares them, staff in scope fill them, members see and edit their own.

An attribute has a kind (TEXT, CHOICE, NUMBER, DATE) that every value is checked against, and a sensitivity:
PERSONAL values are stored as they are (numbers also as numbers, for range search); SENSITIVE ones (过敏 allergies)
are AES-GCM ciphertext at rest with a keyed index for exact search and a mask for display, shown to staff masked
like phones and in full only through an audited reveal (or to the member themself). The values are personal data:
in the member's export, erased with the account, and declared personal in every input so the audit log and the
logs never hold them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, false, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    AttributeKind,
    AttributeSensitivity,
    Member,
    MemberAttribute,
    MemberAttributeValue,
    utcnow,
)
from services.access.permissions import Perm
from services.access.pii import PiiCipher
from services.access.scope import Viewer, ViewerKind, acted_in, require
from services.members.accounts import may_see, visible_members
from services.members.attribute_values import AttributeFilter as AttributeFilter
from services.members.attribute_values import Parsed, index, mask, parse
from services.platform.errors import AccessDenied, DomainError, ErrorCode, Unauthenticated
from services.platform.validation import text

MAX_CHOICES = 50
MAX_ATTRIBUTES = 100
_ENC_CONTEXT = b"member-attribute"


@dataclass(frozen=True)
class AttributeSpec:
    code: str
    name: str
    kind: AttributeKind
    sensitivity: AttributeSensitivity
    choices: Sequence[str] = ()
    member_editable: bool = False


@dataclass(frozen=True)
class AttributeChanges:
    name: str | None = None
    choices: Sequence[str] | None = None
    member_editable: bool | None = None
    active: bool | None = None


def _choices(kind: AttributeKind, choices: Sequence[str]) -> list[str]:
    cleaned = [text(c, "choices", max_len=64) for c in choices]
    if kind is not AttributeKind.CHOICE:
        if cleaned:
            raise DomainError(ErrorCode.INVALID_INPUT, "Only CHOICE attributes have choices.", "choices")
        return []
    if not 2 <= len(cleaned) <= MAX_CHOICES or len(set(cleaned)) != len(cleaned):
        raise DomainError(ErrorCode.INVALID_INPUT, f"Give 2 to {MAX_CHOICES} different choices.", "choices")
    return cleaned


def _require_hq(viewer: Viewer) -> None:
    require(viewer, Perm.MEMBER_MANAGE)
    if not viewer.is_hq:
        raise AccessDenied("HQ declares member attributes.")


async def define(session: AsyncSession, viewer: Viewer, spec: AttributeSpec) -> MemberAttribute:
    """HQ declares an attribute every member may have."""
    _require_hq(viewer)
    code = text(spec.code, "code", max_len=32).lower()
    if not code.replace("_", "").isalnum() or not code.isascii():
        raise DomainError(ErrorCode.INVALID_INPUT, "Codes are letters, digits and underscores.", "code")
    if await session.scalar(select(MemberAttribute.id).where(MemberAttribute.code == code)) is not None:
        raise DomainError(ErrorCode.DUPLICATE, "An attribute with this code exists.", "code")
    if (await session.scalar(select(func.count(MemberAttribute.id))) or 0) >= MAX_ATTRIBUTES:
        raise DomainError(ErrorCode.INVALID_INPUT, f"At most {MAX_ATTRIBUTES} attributes.", "code")
    attribute = MemberAttribute(
        code=code,
        name=text(spec.name, "name", max_len=64),
        kind=spec.kind,
        sensitivity=spec.sensitivity,
        choices=_choices(spec.kind, spec.choices),
        member_editable=spec.member_editable,
        active=True,
    )
    session.add(attribute)
    await session.flush()
    return attribute


async def update(
    session: AsyncSession, viewer: Viewer, attribute_id: int, changes: AttributeChanges
) -> MemberAttribute:
    """HQ renames an attribute, changes its choices (values already given stay), who edits it, or retires it."""
    _require_hq(viewer)
    attribute = await session.get(MemberAttribute, attribute_id, with_for_update=True)
    if attribute is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such attribute.", "id")
    if changes.name is not None:
        attribute.name = text(changes.name, "name", max_len=64)
    if changes.choices is not None:
        attribute.choices = _choices(attribute.kind, changes.choices)
    if changes.member_editable is not None:
        attribute.member_editable = changes.member_editable
    if changes.active is not None:
        attribute.active = changes.active
    await session.flush()
    return attribute


async def list_attributes(session: AsyncSession, viewer: Viewer) -> list[MemberAttribute]:
    """The declared attributes: every signed-in viewer sees the active ones; HQ managing members also retired ones."""
    if viewer.kind is ViewerKind.ANONYMOUS:
        raise Unauthenticated()
    stmt = select(MemberAttribute).where(readable_definitions(viewer)).order_by(MemberAttribute.id)
    return list((await session.scalars(stmt)).all())


def readable_definitions(viewer: Viewer) -> ColumnElement[bool]:
    """Which attribute definitions the viewer reads (in lists and by id): none signed out, the active ones signed
    in, retired ones too for HQ managing members."""
    if viewer.kind is ViewerKind.ANONYMOUS:
        return false()
    if viewer.is_hq and viewer.can(Perm.MEMBER_MANAGE):
        return true()
    return MemberAttribute.active.is_(True)


def _stored(cipher: PiiCipher, attribute: MemberAttribute, parsed: Parsed) -> dict[str, Any]:
    """The columns a value is kept in: in clear for PERSONAL attributes, encrypted, indexed and masked for SENSITIVE."""
    if attribute.sensitivity is AttributeSensitivity.SENSITIVE:
        return {
            "value_text": None,
            "value_number": None,
            "value_enc": cipher.encrypt(parsed.text, context=_ENC_CONTEXT),
            "value_index": index(cipher, attribute.id, parsed.text),
            "value_mask": mask(attribute, parsed.text),
        }
    return {
        "value_text": parsed.text,
        "value_number": parsed.number,
        "value_enc": None,
        "value_index": None,
        "value_mask": None,
    }


def plain(cipher: PiiCipher, row: MemberAttributeValue) -> str | None:
    """A stored value in clear."""
    if row.value_enc is not None:
        return cipher.decrypt(row.value_enc, context=_ENC_CONTEXT)
    return row.value_text


async def _write(
    session: AsyncSession,
    cipher: PiiCipher,
    member_id: int,
    changes: Sequence[tuple[MemberAttribute, str | None]],
    staff_id: int | None,
) -> None:
    """Set or clear each value (a member's own row per attribute, replaced in place)."""
    ids = [a.id for a, _ in changes]
    existing = {
        r.attribute_id: r
        for r in (
            await session.scalars(
                select(MemberAttributeValue).where(
                    MemberAttributeValue.member_id == member_id, MemberAttributeValue.attribute_id.in_(ids)
                )
            )
        ).all()
    }
    for i, (attribute, raw) in enumerate(changes):
        row = existing.get(attribute.id)
        if raw is None:
            if row is not None:
                await session.delete(row)
            continue
        values = _stored(cipher, attribute, parse(attribute, raw, f"values.{i}.value"))
        if row is None:
            row = MemberAttributeValue(member_id=member_id, attribute_id=attribute.id)
            session.add(row)
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_by_staff_id, row.updated_at = staff_id, utcnow()
    await session.flush()


async def _attributes(session: AsyncSession, values: Sequence[tuple[int, str | None]]) -> list[MemberAttribute]:
    """The active attributes named, in the order given; one named twice or unknown is refused."""
    ids = [a for a, _ in values]
    if not 1 <= len(ids) <= MAX_ATTRIBUTES or len(set(ids)) != len(ids):
        raise DomainError(ErrorCode.INVALID_INPUT, "Give each attribute once.", "values")
    found = {
        a.id: a
        for a in (
            await session.scalars(
                select(MemberAttribute).where(MemberAttribute.id.in_(ids), MemberAttribute.active.is_(True))
            )
        ).all()
    }
    for i, attribute_id in enumerate(ids):
        if attribute_id not in found:
            raise DomainError(ErrorCode.NOT_FOUND, "No such attribute.", f"values.{i}.attributeId")
    return [found[a] for a in ids]


async def set_values(
    session: AsyncSession,
    cipher: PiiCipher,
    viewer: Viewer,
    *,
    member_id: int,
    values: Sequence[tuple[int, str | None]],
) -> Member:
    """Staff fill a member's attributes (null clears one): any member HQ sees, a store's staff their store's."""
    require(viewer, Perm.MEMBER_ATTRIBUTES_EDIT)
    member = await session.scalar(
        select(Member).where(
            Member.id == member_id,
            Member.deleted_at.is_(None),
            visible_members(viewer, Perm.MEMBER_ATTRIBUTES_EDIT),
        )
    )
    if member is None:  # another store's member is as absent as one that never existed
        raise DomainError(ErrorCode.NOT_FOUND, "No such member.", "memberId")
    if not viewer.is_hq:
        acted_in(viewer.store_id)
    attributes = await _attributes(session, values)
    changes = list(zip(attributes, [v for _, v in values], strict=True))
    await _write(session, cipher, member_id, changes, viewer.staff_id)
    return member


async def set_my_values(
    session: AsyncSession, cipher: PiiCipher, viewer: Viewer, values: Sequence[tuple[int, str | None]]
) -> Member:
    """A member edits their own attributes: only those HQ made member-editable."""
    if not viewer.is_member or viewer.member_id is None:
        raise AccessDenied("Only members edit their own attributes.")
    member = await session.get(Member, viewer.member_id)
    if member is None or member.deleted_at is not None:
        raise DomainError(ErrorCode.MEMBER_DELETED, "This account was deleted.")
    attributes = await _attributes(session, values)
    for i, attribute in enumerate(attributes):
        if not attribute.member_editable:
            field = f"values.{i}.attributeId"
            raise DomainError(ErrorCode.ATTRIBUTE_NOT_EDITABLE, f"{attribute.name} is filled in by the store.", field)
    await _write(session, cipher, member.id, list(zip(attributes, [v for _, v in values], strict=True)), None)
    return member


@dataclass(frozen=True)
class Shown:
    attribute_id: int
    value: str | None
    masked: bool


def shown(cipher: PiiCipher, viewer: Viewer, row: MemberAttributeValue) -> Shown:
    """A value as the viewer sees it: in full to the member; to staff, sensitive ones masked."""
    if row.value_enc is None:
        return Shown(row.attribute_id, row.value_text, masked=False)
    if viewer.is_member and viewer.member_id == row.member_id:
        return Shown(row.attribute_id, plain(cipher, row), masked=False)
    return Shown(row.attribute_id, row.value_mask, masked=True)


def readable_members(viewer: Viewer) -> ColumnElement[bool]:
    """Whose attributes a viewer reads: the member their own; staff the members they may look up or browse."""
    return visible_members(viewer, Perm.MEMBER_LOOKUP) | visible_members(viewer, Perm.MEMBER_READ)


async def reveal(
    session: AsyncSession, cipher: PiiCipher, viewer: Viewer, *, member_id: int, attribute_id: int
) -> str | None:
    """A sensitive value in full, for staff holding member.read_pii for this member (the audit log records the
    reveal, never the value)."""
    require(viewer, Perm.MEMBER_READ_PII)
    row = await session.scalar(
        select(MemberAttributeValue)
        .join(Member, Member.id == MemberAttributeValue.member_id)
        .where(
            MemberAttributeValue.member_id == member_id,
            MemberAttributeValue.attribute_id == attribute_id,
            Member.deleted_at.is_(None),
            visible_members(viewer, Perm.MEMBER_READ_PII),
        )
    )
    if row is None and not await may_see(session, viewer, member_id, Perm.MEMBER_READ_PII):
        raise DomainError(ErrorCode.NOT_FOUND, "No such member.", "memberId")
    if row is None and await session.get(MemberAttribute, attribute_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such attribute.", "attributeId")
    if not viewer.is_hq:
        acted_in(viewer.store_id)
    return plain(cipher, row) if row is not None else None


async def exported(session: AsyncSession, cipher: PiiCipher, member_id: int) -> list[dict[str, Any]]:
    """The member's attribute values in clear, for their data export."""
    rows = (
        await session.execute(
            select(MemberAttribute, MemberAttributeValue)
            .join(MemberAttributeValue, MemberAttributeValue.attribute_id == MemberAttribute.id)
            .where(MemberAttributeValue.member_id == member_id)
            .order_by(MemberAttribute.id)
        )
    ).all()
    return [{"code": a.code, "name": a.name, "kind": a.kind.value, "value": plain(cipher, row)} for a, row in rows]


async def erase(session: AsyncSession, cipher: PiiCipher, member_id: int) -> set[str]:
    """Delete the member's attribute values; returns them in clear for the audit log to forget."""
    rows = (
        await session.scalars(select(MemberAttributeValue).where(MemberAttributeValue.member_id == member_id))
    ).all()
    values = {v for r in rows if (v := plain(cipher, r))}
    await session.execute(delete(MemberAttributeValue).where(MemberAttributeValue.member_id == member_id))
    return values
