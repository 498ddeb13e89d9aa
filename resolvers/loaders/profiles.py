"""Loaders for member attributes (definitions, each member's values) and what categories members look at."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from models import Member, MemberAttribute, MemberAttributeValue
from resolvers.loaders.base import ScopedLoader, by_key, grouped
from services.access.permissions import Perm
from services.members import browsing
from services.members.accounts import visible_members
from services.members.attributes import readable_definitions, readable_members
from services.members.browsing import CategoryInterest


class MemberAttributeByIdLoader(ScopedLoader):
    """Attribute definitions (not personal), as `memberAttributes` lists them to the viewer."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[MemberAttribute | None]:
        rows = await self._rows(
            select(MemberAttribute).where(MemberAttribute.id.in_(keys), readable_definitions(self.viewer))
        )
        return by_key(keys, rows, lambda a: a.id)


class AttributeValuesByMemberLoader(ScopedLoader):
    """Each member's values of the active attributes, in declaration order; none for members out of scope."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[MemberAttributeValue]]:
        rows = await self._rows(
            select(MemberAttributeValue)
            .join(Member, Member.id == MemberAttributeValue.member_id)
            .join(MemberAttribute, MemberAttribute.id == MemberAttributeValue.attribute_id)
            .where(
                MemberAttributeValue.member_id.in_(keys),
                MemberAttribute.active.is_(True),
                readable_members(self.viewer),
            )
            .order_by(MemberAttributeValue.attribute_id)
        )
        return grouped(keys, rows, lambda v: v.member_id)


class CategoriesViewedLoader(ScopedLoader):
    """The categories each member looked at most: the member themself, staff with member.read in scope."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[CategoryInterest]]:
        async with self.sessionmaker() as session:
            found = await browsing.categories_viewed(session, keys, visible_members(self.viewer, Perm.MEMBER_READ))
        return [found.get(k, []) for k in keys]
