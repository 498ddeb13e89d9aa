"""Catalog types: categories, products, SKUs, store listings, the store menu, chain settings."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Self, cast

import strawberry
from strawberry import relay

from models import CatalogStatus, CategoryRow, ProductRow, SkuRow
from models import Category as CategoryModel
from models import Product as ProductModel
from models import Sku as SkuModel
from models import StoreListing as StoreListingModel
from resolvers import Perm
from resolvers.catalog import Availability, MenuRow, SkuFields, price_band
from resolvers.catalog import ChainSettings as ChainSettingsValue
from resolvers.context import Context
from schema.core.common import UserError, global_id
from schema.core.node import Loaded
from schema.core.permissions import requires
from schema.core.personal import not_personal

if TYPE_CHECKING:
    from schema.inventory.types import StockLevel
    from schema.org.types import Store

# The Python enums as GraphQL enums (registered once, here); annotations name the Python enums themselves.
strawberry.enum(CatalogStatus, name="CatalogStatus")
strawberry.enum(Availability, name="Availability", description="What a member may know of stock: never the count.")
StoreRef = Annotated["Store", strawberry.lazy("schema.org.types")]
StockLevelRef = Annotated["StockLevel", strawberry.lazy("schema.inventory.types")]


@strawberry.type
class Category(Loaded, relay.Node):
    id: relay.NodeID[int]
    name: str
    sort: int
    parent_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: CategoryModel | CategoryRow) -> Self:
        return cls(id=m.id, name=m.name, sort=m.sort, parent_id=m.parent_id)

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.category_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    async def parent(self, info: strawberry.Info[Context, None]) -> Category | None:
        return await Category.load(info.context, self.parent_id) if self.parent_id is not None else None

    @strawberry.field
    async def children(self, info: strawberry.Info[Context, None]) -> list[Category]:
        return [Category.from_model(c) for c in await info.context.loaders.categories_by_parent.load(self.id)]


@strawberry.type
class SpecValue:
    name: str
    value: str


@strawberry.type
class PriceBand:
    min: int
    max: int


@strawberry.type
class Product(Loaded, relay.Node):
    id: relay.NodeID[int]
    name: str
    description: str | None
    images: list[str]
    status: CatalogStatus
    category_id: strawberry.Private[int]
    owner_store_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: ProductModel | ProductRow) -> Self:
        return cls(
            id=m.id,
            name=m.name,
            description=m.description,
            images=list(m.images),
            status=m.status,
            category_id=m.category_id,
            owner_store_id=m.owner_store_id,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.product_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    async def category(self, info: strawberry.Info[Context, None]) -> Category | None:
        return await Category.load(info.context, self.category_id)

    @strawberry.field
    async def skus(self, info: strawberry.Info[Context, None]) -> list[Sku]:
        return [Sku.from_model(s) for s in await info.context.loaders.skus_by_product.load(self.id)]

    @strawberry.field(description="Set when this is a store's own product (visible in that store only).")
    async def owner_store(self, info: strawberry.Info[Context, None]) -> StoreRef | None:
        from schema.org.types import Store

        return await Store.load(info.context, self.owner_store_id) if self.owner_store_id is not None else None


@strawberry.type
class Sku(Loaded, relay.Node):
    id: relay.NodeID[int]
    barcode: str
    base_price: int = strawberry.field(description="HQ base price, fen")
    min_price: int | None
    max_price: int | None
    low_stock_default: int | None
    status: CatalogStatus
    # The whole SKU, or a list's SkuRow (its spec decoded only when asked).
    model: strawberry.Private[SkuModel | SkuRow]
    # The SKU's product when the statement that read the SKU read it too (a menu item's): `product` needs no loader.
    product_model: strawberry.Private[ProductModel | ProductRow | None] = None

    @classmethod
    def from_model(cls, m: SkuModel | SkuRow, product: ProductModel | ProductRow | None = None) -> Self:
        return cls(
            id=m.id,
            barcode=m.barcode,
            base_price=m.base_price,
            min_price=m.min_price,
            max_price=m.max_price,
            low_stock_default=m.low_stock_default,
            status=m.status,
            model=m,
            product_model=product,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.sku_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    def spec(self) -> list[SpecValue]:
        return [SpecValue(name=k, value=str(v)) for k, v in self.model.spec.items()]

    @strawberry.field(extensions=requires(Perm.CATALOG_VIEW_COST), description="Cost price, fen (catalog.view_cost).")
    def cost_price(self) -> int | None:
        return self.model.cost_price

    @strawberry.field(description="The store prices HQ allows, fen.")
    async def price_band(self, info: strawberry.Info[Context, None]) -> PriceBand:
        low, high = price_band(self.model, await info.context.loaders.settings.get())
        return PriceBand(min=low, max=high)

    @strawberry.field
    def product(self, info: strawberry.Info[Context, None]) -> Product | None:
        """Synchronous where the SKU's statement read the product (a menu item's: no coroutine, no task each);
        otherwise the loader's coroutine, which graphql-core awaits as it would an async resolver's."""
        if self.product_model is not None:
            return Product.from_model(self.product_model)
        return cast("Product | None", Product.load(info.context, self.model.product_id))


@strawberry.type
class StoreListing(Loaded, relay.Node):
    id: relay.NodeID[int]
    price: int = strawberry.field(description="The store's price, fen")
    on_shelf: bool
    store_id: strawberry.Private[int]
    sku_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: StoreListingModel) -> Self:
        return cls(id=m.id, price=m.price, on_shelf=m.on_shelf, store_id=m.store_id, sku_id=m.sku_id)

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.listing_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id)

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> StoreRef | None:
        from schema.org.types import Store

        return await Store.load(info.context, self.store_id)

    @strawberry.field(description="The stock level behind this listing (staff with stock.read).")
    async def stock(self, info: strawberry.Info[Context, None]) -> StockLevelRef | None:
        from schema.inventory.types import StockLevel

        view = await info.context.loaders.stock_level_by_store_sku.load((self.store_id, self.sku_id))
        return StockLevel.from_view(view) if view else None


@strawberry.type(description="An item on a store's menu, as a member sees it.")
class MenuItem:
    listing_id: strawberry.ID
    price: int = strawberry.field(description="The store's price, fen")
    availability: Availability
    # Read with the item (plain values: no resolver, no loader); null where the viewer may not see the product.
    sku: Sku | None

    @classmethod
    def from_row(cls, row: MenuRow) -> Self:
        return cls(
            listing_id=strawberry.ID(str(global_id("StoreListing", row.listing_id))),
            price=row.price,
            availability=row.availability,
            sku=Sku.from_model(row.sku, row.product) if row.sku is not None else None,
        )


@strawberry.type
class MenuCategory:
    category: Category
    item_count: int


@strawberry.type(name="ChainSettings")
class ChainSettingsType:
    stores_may_create_products: bool
    price_band_percent: int
    default_low_stock_threshold: int
    points_per_yuan: int = strawberry.field(description="Points earned per whole yuan spent")
    point_value_fen: int = strawberry.field(description="What one point pays, in fen")
    max_points_share_pct: int = strawberry.field(description="The largest share of an order points may pay")
    birthday_multiplier_pct: int = strawberry.field(description="Points on the member's birthday, percent of usual")
    unpaid_order_minutes: int = strawberry.field(description="How long an unpaid order holds its stock")
    delivery_fee_fen: int = strawberry.field(description="The delivery fee, fen")
    free_delivery_over_fen: int = strawberry.field(description="Goods worth this much deliver free (0: never)")
    delivery_radius_km: int = strawberry.field(description="How far from the store deliveries go (0: no delivery)")
    store_campaign_kinds: list[str] = strawberry.field(description="Campaign kinds a store may run on its own")
    store_campaign_max_discount_pct: int = strawberry.field(description="The deepest discount a store campaign gives")
    stores_see_margin: bool = strawberry.field(description="Store managers see their own store's cost and margin")
    message_cap_per_day: int = strawberry.field(description="Messages a member gets at most per their local day")
    quiet_hours_start: int = strawberry.field(description="Hour (member's time zone) quiet hours begin; no messages")
    quiet_hours_end: int = strawberry.field(description="Hour quiet hours end (equal to the start: none)")
    complaint_sla_hours: int = strawberry.field(description="A complaint is due this many hours after it is filed")
    store_pages_need_approval: bool = strawberry.field(description="A store's page goes live only once HQ approves")

    @classmethod
    def of(cls, value: ChainSettingsValue) -> Self:
        fields = dataclasses.asdict(value)
        fields["store_campaign_kinds"] = list(value.store_campaign_kinds)
        return cls(**fields)


@strawberry.input
class SpecValueInput:
    name: str = not_personal()
    value: str


@strawberry.input
class SkuInput:
    barcode: str = not_personal()
    base_price: int = strawberry.field(description="fen")
    cost_price: int = 0
    spec: list[SpecValueInput] = strawberry.field(default_factory=list)
    min_price: int | None = None
    max_price: int | None = None
    low_stock_default: int | None = None

    def fields(self) -> SkuFields:
        return SkuFields(
            barcode=self.barcode,
            base_price=self.base_price,
            cost_price=self.cost_price,
            spec={s.name.strip(): s.value.strip() for s in self.spec},
            min_price=self.min_price,
            max_price=self.max_price,
            low_stock_default=self.low_stock_default,
        )


@strawberry.input
class ProductFilterInput:
    search: str | None = None
    barcode: str | None = not_personal(default=None)
    category_id: strawberry.ID | None = None
    status: CatalogStatus | None = None


@strawberry.input
class CreateCategoryInput:
    name: str = not_personal()
    parent_id: strawberry.ID | None = None
    sort: int = 0


@strawberry.input
class UpdateCategoryInput:
    id: strawberry.ID
    name: str | None = not_personal(default=None)
    parent_id: strawberry.ID | None = None
    sort: int | None = None


@strawberry.input
class CreateProductInput:
    name: str = not_personal()
    category_id: strawberry.ID
    skus: list[SkuInput]
    description: str | None = None
    images: list[str] = strawberry.field(default_factory=list)
    store_id: strawberry.ID | None = strawberry.field(
        default=None, description="Set to create a store's own product (when HQ's policy allows)."
    )


@strawberry.input
class UpdateProductInput:
    id: strawberry.ID
    name: str | None = not_personal(default=None)
    description: str | None = None
    category_id: strawberry.ID | None = None
    images: list[str] | None = None
    status: CatalogStatus | None = None


@strawberry.input
class AddSkuInput:
    product_id: strawberry.ID
    sku: SkuInput


@strawberry.input
class UpdateSkuInput:
    id: strawberry.ID
    cost_price: int | None = None
    spec: list[SpecValueInput] | None = None
    min_price: int | None = None
    max_price: int | None = None
    low_stock_default: int | None = None
    status: CatalogStatus | None = None


@strawberry.input
class PushPriceInput:
    sku_id: strawberry.ID
    price: int = strawberry.field(description="New HQ base price and store price everywhere, fen")


@strawberry.input
class UpdateChainSettingsInput:
    stores_may_create_products: bool | None = None
    price_band_percent: int | None = None
    default_low_stock_threshold: int | None = None
    points_per_yuan: int | None = None
    point_value_fen: int | None = None
    max_points_share_pct: int | None = None
    birthday_multiplier_pct: int | None = not_personal(default=None)
    unpaid_order_minutes: int | None = None
    delivery_fee_fen: int | None = None
    free_delivery_over_fen: int | None = None
    delivery_radius_km: int | None = None
    store_campaign_kinds: list[str] | None = None
    store_campaign_max_discount_pct: int | None = None
    stores_see_margin: bool | None = None
    message_cap_per_day: int | None = None
    quiet_hours_start: int | None = None
    quiet_hours_end: int | None = None
    complaint_sla_hours: int | None = None
    store_pages_need_approval: bool | None = None


@strawberry.input
class AdoptItemInput:
    sku_id: strawberry.ID
    price: int | None = strawberry.field(default=None, description="fen; the HQ base price when left out")
    on_shelf: bool = True


@strawberry.input
class AdoptSkusInput:
    store_id: strawberry.ID
    items: list[AdoptItemInput]


@strawberry.input
class SetListingPriceInput:
    id: strawberry.ID
    price: int


@strawberry.input
class SetListingsOnShelfInput:
    ids: list[strawberry.ID]
    on_shelf: bool


@strawberry.input
class ImportCatalogCsvInput:
    csv: str = strawberry.field(description="UTF-8 CSV in the export's format")


@strawberry.type
class CategoryPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    category: Category | None = None


@strawberry.type
class ProductPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    product: Product | None = None


@strawberry.type
class SkuPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    sku: Sku | None = None


@strawberry.type
class PushPricePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    sku: Sku | None = None
    stores_updated: int = 0


@strawberry.type
class ChainSettingsPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    settings: ChainSettingsType | None = None


@strawberry.type
class ListingsPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    listings: list[StoreListing] = strawberry.field(default_factory=list)


@strawberry.type
class ListingPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    listing: StoreListing | None = None


@strawberry.type
class CsvRowError:
    row: int = strawberry.field(description="Line in the file; the header is line 1")
    column: str | None
    message: str


@strawberry.type
class ImportCatalogCsvPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    row_errors: list[CsvRowError] = strawberry.field(default_factory=list)
    products_created: int = 0
    skus_created: int = 0
    skus_updated: int = 0
