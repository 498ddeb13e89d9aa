"""Member types (the members issue grows these)."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay

from models import Member as MemberModel
from resolvers.context import Context
from schema.org import Store
from services.pii import mask_phone


@strawberry.type
class Member(relay.Node):
    id: relay.NodeID[int]
    name: str | None
    joined_at: datetime
    home_store_id: strawberry.Private[int | None]
    model: strawberry.Private[MemberModel]

    @classmethod
    def from_model(cls, m: MemberModel) -> Self:
        return cls(id=m.id, name=m.name, joined_at=m.joined_at, home_store_id=m.home_store_id, model=m)

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.member_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field(description="Masked (138****5678) unless the viewer is this member.")
    def phone(self, info: strawberry.Info[Context, None]) -> str | None:
        ctx = info.context
        if self.model.phone_enc is None:
            return None
        if ctx.viewer.member_id == self.id:
            return ctx.app.cipher.decrypt(self.model.phone_enc)
        return mask_phone(last4=self.model.phone_last4)

    @strawberry.field
    async def home_store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.home_store_id) if self.home_store_id is not None else None
