"""Settlement (日结): a store's business day, live until HQ closes it, frozen after."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.scalars import JSON

from models import utcnow
from resolvers.context import Context
from schema.common import UserError, decode_id
from schema.permissions import requires
from schema.transaction import MutationTransaction
from services import settlement


@strawberry.type(name="Settlement")
class SettlementType:
    business_day: date
    closed: bool
    figures: JSON = strawberry.field(
        description="takings and refunds by method, discounts, pointsValueUsed, storedValueByIssuer, net (fen)"
    )


@strawberry.input
class CloseSettlementInput:
    store_id: strawberry.ID
    date: date


@strawberry.type
class SettlementPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    settlement: SettlementType | None = None


@strawberry.type
class SettlementQuery:
    @strawberry.field(extensions=requires("settlement.view"), description="A store's day in its own time zone.")
    async def settlement(
        self, info: strawberry.Info[Context, None], store_id: strawberry.ID, date: date
    ) -> SettlementType:
        ctx = info.context
        async with ctx.read() as session:
            figures, closed = await settlement.settlement(
                session, ctx.viewer, store_id=decode_id(store_id, "Store", "storeId"), day=date
            )
        return SettlementType(business_day=date, closed=closed, figures=figures)  # type: ignore[arg-type]


@strawberry.type
class SettlementMutation:
    @strawberry.mutation(extensions=[*requires("settlement.view"), MutationTransaction()],
                         description="HQ closes a store's day: its figures never change afterwards.")  # fmt: skip
    async def close_settlement(
        self, info: strawberry.Info[Context, None], input: CloseSettlementInput
    ) -> SettlementPayload:
        ctx = info.context
        store_id = decode_id(input.store_id, "Store", "storeId")
        ctx.audit_store_id = store_id
        figures = await settlement.close(ctx.session, ctx.viewer, store_id=store_id, day=input.date, now=utcnow())
        return SettlementPayload(settlement=SettlementType(business_day=input.date, closed=True, figures=figures))  # type: ignore[arg-type]
