"""Settlement (日结): a store's business day, live until HQ closes it, frozen after."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Self

import strawberry
from strawberry.scalars import JSON

from models import PaymentMethod
from resolvers import Perm
from resolvers import orders as order_resolvers
from resolvers.context import Context
from schema.core.common import UserError, decode_id
from schema.core.permissions import requires
from schema.core.transaction import MutationTransaction
from schema.members.types import StoredValue
from schema.org.types import Store


@strawberry.type(description="An amount of money (fen) by payment method.")
class MethodAmount:
    method: PaymentMethod
    amount: int = strawberry.field(description="fen")

    @staticmethod
    def listed(by_method: Mapping[str, int], *, all_methods: bool = False) -> list[MethodAmount]:
        """In the enum's order; with `all_methods`, every method (0 when unused), so a screen's rows stay put."""
        methods = list(PaymentMethod) if all_methods else [m for m in PaymentMethod if m.value in by_method]
        return [MethodAmount(method=m, amount=int(by_method.get(m.value, 0))) for m in methods]


@strawberry.type(description="Stored value spent here that another store (the issuer) took the money for.")
class IssuerAmount:
    principal: int = strawberry.field(description="fen the issuer owes this store (negative: this store owes it)")
    bonus: int = strawberry.field(description="bonus fen, the same way")
    issuer_id: strawberry.Private[int | None]

    @strawberry.field
    def total(self) -> int:
        return self.principal + self.bonus

    @strawberry.field(description="The store that sold the stored value; null for value no store issued")
    async def issuer(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.issuer_id) if self.issuer_id is not None else None


def _issuer_id(key: str) -> int | None:
    return int(key) if key.isdigit() else None


@strawberry.type(description="Late and duplicate payments of the day (fen): in takings, and refunded by a job.")
class LatePaymentFigures:
    received: int
    refunded: int


@strawberry.type(name="Settlement", description="A store's business day (日结), in fen.")
class SettlementType:
    business_day: date
    closed: bool
    takings: list[MethodAmount] = strawberry.field(description="Money taken, by method (every method)")
    refunds: list[MethodAmount] = strawberry.field(description="Money given back, by method (every method)")
    discounts: int
    delivery_fees: int
    stored_value_sold: StoredValue = strawberry.field(description="Stored value this store sold (money in)")
    points_value_used: int
    stored_value_by_issuer: list[IssuerAmount] = strawberry.field(
        description="Stored value spent here by the store that issued it, net of the day's refunds"
    )
    net: int = strawberry.field(
        description="Money taken less money given back, counter top-ups left out (they are stored value sold, a "
        "liability, not sales); points are not money"
    )
    top_up_takings: list[MethodAmount] = strawberry.field(
        description="The part of the takings that paid for counter top-ups, by method (in takings, so a drawer counts)"
    )
    late_payments: LatePaymentFigures = strawberry.field(
        description="Money that arrived for orders that could no longer take it, and what of it went back"
    )
    figures: JSON = strawberry.field(
        description="The same figures as one JSON object with raw store ids",
        deprecation_reason="Use the typed fields: store, takings, refunds, storedValueByIssuer { issuer } ...",
    )
    store_id: strawberry.Private[int]

    @classmethod
    def of(cls, store_id: int, day: date, closed: bool, figures: Mapping[str, Any]) -> Self:
        sold = figures.get("storedValueSold", {})
        issuers = figures.get("storedValueByIssuer", {})
        return cls(
            business_day=day, closed=closed,
            takings=MethodAmount.listed(figures.get("takings", {}), all_methods=True),
            refunds=MethodAmount.listed(figures.get("refunds", {}), all_methods=True),
            discounts=int(figures.get("discounts", 0)), delivery_fees=int(figures.get("deliveryFees", 0)),
            stored_value_sold=StoredValue(principal=int(sold.get("principal", 0)), bonus=int(sold.get("bonus", 0))),
            points_value_used=int(figures.get("pointsValueUsed", 0)),
            stored_value_by_issuer=[
                IssuerAmount(principal=int(v["principal"]), bonus=int(v["bonus"]), issuer_id=_issuer_id(k))
                for k, v in sorted(issuers.items())
            ],
            net=int(figures.get("net", 0)),
            top_up_takings=MethodAmount.listed(figures.get("topUpTakings", {})),
            late_payments=LatePaymentFigures(received=int(figures.get("latePayments", {}).get("received", 0)),
                                             refunded=int(figures.get("latePayments", {}).get("refunded", 0))),
            figures=dict(figures), store_id=store_id,  # type: ignore[arg-type]
        )  # fmt: skip

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)


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
    @strawberry.field(extensions=requires(Perm.SETTLEMENT_VIEW), description="A store's day in its own time zone.")
    async def settlement(
        self, info: strawberry.Info[Context, None], store_id: strawberry.ID, date: date
    ) -> SettlementType:
        figures, closed = await order_resolvers.day_settlement(
            info.context, decode_id(store_id, "Store", "storeId"), date
        )
        return SettlementType.of(decode_id(store_id, "Store", "storeId"), date, closed, figures)


@strawberry.type
class SettlementMutation:
    @strawberry.mutation(extensions=[*requires(Perm.SETTLEMENT_VIEW), MutationTransaction()],
                         description="HQ closes a store's day: its figures never change afterwards.")  # fmt: skip
    async def close_settlement(
        self, info: strawberry.Info[Context, None], input: CloseSettlementInput
    ) -> SettlementPayload:
        store_id = decode_id(input.store_id, "Store", "storeId")
        figures = await order_resolvers.close_settlement(info.context, store_id, input.date)
        return SettlementPayload(settlement=SettlementType.of(store_id, input.date, True, figures))
