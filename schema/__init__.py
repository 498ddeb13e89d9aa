"""The one schema: every area's queries and mutations merged."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.extensions import DisableIntrospection
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.access.api import AuditQuery, AuthMutation, AuthQuery, JobQuery
from schema.analytics.api import RecommendationQuery, ReportQuery
from schema.brand.api import BrandMutation, BrandQuery
from schema.cards.api import CardMutation, CardQuery
from schema.care.api import CareMutation, CareQuery
from schema.catalog.api import CatalogMutation, CatalogQuery
from schema.core.common import LONG_SCALAR, Long
from schema.core.errors import ErrorPresenter
from schema.core.limits import CachedParse, CachedValidation, QueryLimits, QuietExecutor
from schema.core.node import NodeQuery
from schema.core.observe import Observe
from schema.core.subscriptions import Subscription
from schema.inventory.api import InventoryMutation, InventoryQuery
from schema.marketing.api import MarketingMutation, MarketingQuery
from schema.members.api import MemberMutation, MemberQuery
from schema.members.profiles import ProfileMutation, ProfileQuery
from schema.messaging.api import MessagingMutation, MessagingQuery
from schema.orders.api import OrderMutation, OrderQuery, SettlementMutation, SettlementQuery
from schema.org.api import StaffMutation, StaffQuery, StoreMutation, StoreQuery

Query = merge_types(
    "Query",
    (
        NodeQuery,
        AuthQuery,
        StoreQuery,
        StaffQuery,
        AuditQuery,
        CatalogQuery,
        InventoryQuery,
        MemberQuery,
        ProfileQuery,
        OrderQuery,
        MarketingQuery,
        MessagingQuery,
        CareQuery,
        CardQuery,
        ReportQuery,
        RecommendationQuery,
        SettlementQuery,
        JobQuery,
        BrandQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        AuthMutation,
        StoreMutation,
        StaffMutation,
        CatalogMutation,
        InventoryMutation,
        MemberMutation,
        ProfileMutation,
        OrderMutation,
        MarketingMutation,
        MessagingMutation,
        CareMutation,
        CardMutation,
        SettlementMutation,
        BrandMutation,
    ),
)


class ChainSchema(strawberry.Schema):
    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        # ErrorPresenter logs what is unexpected, once, with the request id; expected errors are not noise.
        return None


def build_schema(*, production: bool = False) -> ChainSchema:
    """The schema with its request extensions: parse and validation caches, the query limits, error presenting.

    In production introspection is refused and no error suggests a name (of a field, argument, type, enum value or
    input field): validation and execution run with graphql-core's `hide_suggestions`.
    """
    extensions: list[Any] = [
        Observe,
        CachedParse,
        lambda: CachedValidation(hide_suggestions=production),
        QueryLimits,  # after CachedValidation: it reads that one's verdict
        ErrorPresenter,
    ]
    if production:
        extensions.insert(0, DisableIntrospection)
    return ChainSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=QuietExecutor if production else None,
        config=StrawberryConfig(scalar_map={Long: LONG_SCALAR}),
    )


schema = build_schema()
