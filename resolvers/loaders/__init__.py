"""Per-request dataloaders, one module per domain; `Loaders` makes each on first use in a request.

Every loader filters by the viewer's scope, so a relation followed from any type can never
return another store's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from resolvers.loaders.access import AuditLogByIdLoader
from resolvers.loaders.base import L
from resolvers.loaders.cards import CardHistoryLoader, CardProductByIdLoader, MemberCardByIdLoader
from resolvers.loaders.care import (
    CareMemberLoader,
    FollowUpTaskByIdLoader,
    StoreServiceLoader,
    TicketByIdLoader,
    TicketEntriesByTicketLoader,
)
from resolvers.loaders.catalog import (
    CategoriesByParentLoader,
    CategoryByIdLoader,
    ListingByIdLoader,
    ProductByIdLoader,
    SkuByIdLoader,
    SkusByProductLoader,
)
from resolvers.loaders.inventory import (
    AvailabilityByStoreSkuLoader,
    PurchaseReceiptLinesLoader,
    StockLevelByIdLoader,
    StockLevelByStoreSkuLoader,
    StockLevelsByStoreLoader,
    StockMovementByIdLoader,
    TransferByIdLoader,
    TransferLinesByTransferLoader,
)
from resolvers.loaders.marketing import (
    CampaignItemsByCampaignLoader,
    CampaignNodeLoader,
    CouponTemplateByIdLoader,
    CouponTemplateNodeLoader,
    MemberCouponNodeLoader,
    PointsMallItemNodeLoader,
)
from resolvers.loaders.members import (
    BalanceLedgerLoader,
    MemberByIdLoader,
    MemberLevelByIdLoader,
    MemberStoreStatsLoader,
    PointsLedgerLoader,
    TagsByMemberLoader,
)
from resolvers.loaders.messaging import (
    MessageByIdLoader,
    MessageSendByIdLoader,
    MessageSendEffectLoader,
    MessageTemplateByIdLoader,
)
from resolvers.loaders.orders import (
    OrderByIdLoader,
    OrderLinesByOrderLoader,
    PaymentByIdLoader,
    PaymentsByOrderLoader,
    RefundByIdLoader,
    RefundsByOrderLoader,
    TimelineByOrderLoader,
)
from resolvers.loaders.org import RoleByIdLoader, SettingsCache, StaffByIdLoader, StaffByStoreLoader, StoreByIdLoader
from resolvers.loaders.platform import FailedJobNodeLoader
from resolvers.loaders.profiles import AttributeValuesByMemberLoader, CategoriesViewedLoader, MemberAttributeByIdLoader
from services.access.scope import Viewer
from services.org.settings import SettingsMemo


class _Lazy(Generic[L]):
    """A request's loader, made on first use: a request uses a few of the many."""

    def __init__(self, make: Callable[[Loaders], L]) -> None:
        self.make = make

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, loaders: Loaders, owner: type | None = None) -> L:
        made = self.make(loaders)
        loaders.__dict__[self.name] = made  # later reads find the instance attribute first
        return made


class Loaders:
    """The request's loaders; built in the context factory, never at import."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], viewer: Viewer, settings: SettingsMemo | None = None
    ) -> None:
        self.sessionmaker = sessionmaker
        self.viewer = viewer
        self.settings = SettingsCache(sessionmaker, settings)

    store_by_id = _Lazy(lambda x: StoreByIdLoader(x.sessionmaker, x.viewer))
    staff_by_id = _Lazy(lambda x: StaffByIdLoader(x.sessionmaker, x.viewer))
    staff_by_store = _Lazy(lambda x: StaffByStoreLoader(x.sessionmaker, x.viewer))
    role_by_id = _Lazy(lambda x: RoleByIdLoader(x.sessionmaker, x.viewer))
    member_by_id = _Lazy(lambda x: MemberByIdLoader(x.sessionmaker, x.viewer))
    member_level_by_id = _Lazy(lambda x: MemberLevelByIdLoader(x.sessionmaker, x.viewer))
    tags_by_member = _Lazy(lambda x: TagsByMemberLoader(x.sessionmaker, x.viewer))
    member_store_stats = _Lazy(lambda x: MemberStoreStatsLoader(x.sessionmaker, x.viewer))
    message_by_id = _Lazy(lambda x: MessageByIdLoader(x.sessionmaker, x.viewer))
    message_send_by_id = _Lazy(lambda x: MessageSendByIdLoader(x.sessionmaker, x.viewer))
    message_send_effect = _Lazy(lambda x: MessageSendEffectLoader(x.sessionmaker, x.viewer))
    message_template_by_id = _Lazy(lambda x: MessageTemplateByIdLoader(x.sessionmaker, x.viewer))
    audit_log_by_id = _Lazy(lambda x: AuditLogByIdLoader(x.sessionmaker, x.viewer))
    category_by_id = _Lazy(lambda x: CategoryByIdLoader(x.sessionmaker, x.viewer))
    categories_by_parent = _Lazy(lambda x: CategoriesByParentLoader(x.sessionmaker, x.viewer))
    product_by_id = _Lazy(lambda x: ProductByIdLoader(x.sessionmaker, x.viewer))
    sku_by_id = _Lazy(lambda x: SkuByIdLoader(x.sessionmaker, x.viewer, x.product_by_id))
    skus_by_product = _Lazy(lambda x: SkusByProductLoader(x.sessionmaker, x.viewer))
    listing_by_id = _Lazy(lambda x: ListingByIdLoader(x.sessionmaker, x.viewer))
    stock_level_by_id = _Lazy(lambda x: StockLevelByIdLoader(x.sessionmaker, x.viewer, x.settings))
    stock_level_by_store_sku = _Lazy(lambda x: StockLevelByStoreSkuLoader(x.sessionmaker, x.viewer, x.settings))
    availability_by_store_sku = _Lazy(lambda x: AvailabilityByStoreSkuLoader(x.sessionmaker, x.viewer, x.settings))
    stock_levels_by_store = _Lazy(lambda x: StockLevelsByStoreLoader(x.sessionmaker, x.viewer, x.settings))
    stock_movement_by_id = _Lazy(lambda x: StockMovementByIdLoader(x.sessionmaker, x.viewer))
    transfer_by_id = _Lazy(lambda x: TransferByIdLoader(x.sessionmaker, x.viewer))
    transfer_lines_by_transfer = _Lazy(lambda x: TransferLinesByTransferLoader(x.sessionmaker, x.viewer))
    purchase_receipt_lines = _Lazy(lambda x: PurchaseReceiptLinesLoader(x.sessionmaker, x.viewer))
    order_by_id = _Lazy(lambda x: OrderByIdLoader(x.sessionmaker, x.viewer))
    order_lines_by_order = _Lazy(lambda x: OrderLinesByOrderLoader(x.sessionmaker, x.viewer))
    payments_by_order = _Lazy(lambda x: PaymentsByOrderLoader(x.sessionmaker, x.viewer))
    payment_by_id = _Lazy(lambda x: PaymentByIdLoader(x.sessionmaker, x.viewer))
    refunds_by_order = _Lazy(lambda x: RefundsByOrderLoader(x.sessionmaker, x.viewer))
    refund_by_id = _Lazy(lambda x: RefundByIdLoader(x.sessionmaker, x.viewer))
    timeline_by_order = _Lazy(lambda x: TimelineByOrderLoader(x.sessionmaker, x.viewer))
    campaign_items_by_campaign = _Lazy(lambda x: CampaignItemsByCampaignLoader(x.sessionmaker, x.viewer))
    coupon_template_by_id = _Lazy(lambda x: CouponTemplateByIdLoader(x.sessionmaker, x.viewer))
    points_ledger = _Lazy(lambda x: PointsLedgerLoader(x.sessionmaker, x.viewer))
    balance_ledger = _Lazy(lambda x: BalanceLedgerLoader(x.sessionmaker, x.viewer))
    card_product_by_id = _Lazy(lambda x: CardProductByIdLoader(x.sessionmaker, x.viewer))
    member_card_by_id = _Lazy(lambda x: MemberCardByIdLoader(x.sessionmaker, x.viewer))
    card_history = _Lazy(lambda x: CardHistoryLoader(x.sessionmaker, x.viewer))
    campaign_node = _Lazy(lambda x: CampaignNodeLoader(x.sessionmaker, x.viewer))
    coupon_template_node = _Lazy(lambda x: CouponTemplateNodeLoader(x.sessionmaker, x.viewer))
    member_coupon_node = _Lazy(lambda x: MemberCouponNodeLoader(x.sessionmaker, x.viewer))
    points_mall_item_node = _Lazy(lambda x: PointsMallItemNodeLoader(x.sessionmaker, x.viewer))
    failed_job_node = _Lazy(lambda x: FailedJobNodeLoader(x.sessionmaker, x.viewer))
    member_attribute_by_id = _Lazy(lambda x: MemberAttributeByIdLoader(x.sessionmaker, x.viewer))
    attribute_values_by_member = _Lazy(lambda x: AttributeValuesByMemberLoader(x.sessionmaker, x.viewer))
    categories_viewed = _Lazy(lambda x: CategoriesViewedLoader(x.sessionmaker, x.viewer))
    follow_up_task_by_id = _Lazy(lambda x: FollowUpTaskByIdLoader(x.sessionmaker, x.viewer))
    ticket_by_id = _Lazy(lambda x: TicketByIdLoader(x.sessionmaker, x.viewer))
    ticket_entries_by_ticket = _Lazy(lambda x: TicketEntriesByTicketLoader(x.sessionmaker, x.viewer))
    care_member_by_id = _Lazy(lambda x: CareMemberLoader(x.sessionmaker, x.viewer))
    store_service = _Lazy(lambda x: StoreServiceLoader(x.sessionmaker, x.viewer))
