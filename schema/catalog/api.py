"""Catalog root fields: the product library, store listings and the menu, chain settings, CSV import and export."""

from __future__ import annotations

import dataclasses

import strawberry

from models import CatalogStatus
from resolvers import DomainError, ErrorCode, Perm
from resolvers import catalog as catalog_resolvers
from resolvers.catalog import Adoption, ProductFilter
from resolvers.context import Context
from schema.catalog.types import (
    AddSkuInput,
    AdoptSkusInput,
    Category,
    CategoryPayload,
    ChainSettingsPayload,
    ChainSettingsType,
    CreateCategoryInput,
    CreateProductInput,
    CsvRowError,
    ImportCatalogCsvInput,
    ImportCatalogCsvPayload,
    ListingPayload,
    ListingsPayload,
    Product,
    ProductFilterInput,
    ProductPayload,
    PushPriceInput,
    PushPricePayload,
    SetListingPriceInput,
    SetListingsOnShelfInput,
    Sku,
    SkuPayload,
    SpecValueInput,
    StoreListing,
    UpdateCategoryInput,
    UpdateChainSettingsInput,
    UpdateProductInput,
    UpdateSkuInput,
)
from schema.core.common import Connection, decode_id, decode_optional_id
from schema.core.permissions import IsStaff, only, requires
from schema.core.transaction import MutationTransaction


def _spec(values: list[SpecValueInput] | None) -> dict[str, str] | None:
    return None if values is None else {v.name.strip(): v.value.strip() for v in values}


@strawberry.type
class CatalogQuery:
    @strawberry.field(description="The category tree's roots.")
    async def categories(self, info: strawberry.Info[Context, None]) -> list[Category]:
        return [Category.from_model(c) for c in await catalog_resolvers.root_categories(info.context)]

    @strawberry.field(description="The product library; members see active library products only.")
    async def products(
        self,
        info: strawberry.Info[Context, None],
        filter: ProductFilterInput | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Product]:
        f = filter or ProductFilterInput()
        flt = ProductFilter(
            search=f.search,
            barcode=f.barcode,
            category_id=decode_optional_id(f.category_id, "Category", "categoryId"),
            status=CatalogStatus(f.status) if f.status else None,
        )
        page = await catalog_resolvers.products(info.context, flt, first=first, after=after)
        return Connection[Product].of(page, Product.from_model)

    @strawberry.field(description="The SKU with this barcode (the POS scanner's lookup).")
    async def sku_by_barcode(self, info: strawberry.Info[Context, None], barcode: str) -> Sku | None:
        sku = await catalog_resolvers.sku_by_barcode(info.context, barcode)
        return Sku.from_model(sku) if sku else None

    @strawberry.field(extensions=only(IsStaff()))
    async def chain_settings(self, info: strawberry.Info[Context, None]) -> ChainSettingsType:
        return ChainSettingsType.of(await catalog_resolvers.chain_settings(info.context))

    @strawberry.field(
        extensions=requires(Perm.CATALOG_MANAGE),
        description="The library as CSV (cost prices only with catalog.view_cost).",
    )
    async def catalog_csv(self, info: strawberry.Info[Context, None]) -> str:
        return await catalog_resolvers.catalog_csv_export(info.context)


@strawberry.type
class CatalogMutation:
    @strawberry.mutation(extensions=[*requires(Perm.CATALOG_MANAGE), MutationTransaction()])
    async def create_category(
        self, info: strawberry.Info[Context, None], input: CreateCategoryInput
    ) -> CategoryPayload:
        category = await catalog_resolvers.create_category(
            info.context,
            name=input.name,
            sort=input.sort,
            parent_id=decode_optional_id(input.parent_id, "Category", "parentId"),
        )
        return CategoryPayload(category=Category.from_model(category))

    @strawberry.mutation(extensions=[*requires(Perm.CATALOG_MANAGE), MutationTransaction()])
    async def update_category(
        self, info: strawberry.Info[Context, None], input: UpdateCategoryInput
    ) -> CategoryPayload:
        category = await catalog_resolvers.update_category(
            info.context,
            category_id=decode_id(input.id, "Category"),
            name=input.name,
            parent_id=decode_optional_id(input.parent_id, "Category", "parentId"),
            sort=input.sort,
        )
        return CategoryPayload(category=Category.from_model(category))

    @strawberry.mutation(
        extensions=[*only(IsStaff()), MutationTransaction()],
        description="HQ (catalog.manage) adds to the library; with storeId, a store adds its own product if allowed.",
    )
    async def create_product(self, info: strawberry.Info[Context, None], input: CreateProductInput) -> ProductPayload:
        store_id = decode_optional_id(input.store_id, "Store", "storeId")
        product = await catalog_resolvers.create_product(
            info.context,
            name=input.name,
            category_id=decode_id(input.category_id, "Category", "categoryId"),
            skus=[s.fields() for s in input.skus],
            description=input.description,
            images=input.images,
            store_id=store_id,
        )
        return ProductPayload(product=Product.from_model(product))

    @strawberry.mutation(extensions=[*only(IsStaff()), MutationTransaction()])
    async def update_product(self, info: strawberry.Info[Context, None], input: UpdateProductInput) -> ProductPayload:
        product = await catalog_resolvers.update_product(
            info.context,
            product_id=decode_id(input.id, "Product"),
            name=input.name,
            description=input.description,
            category_id=decode_optional_id(input.category_id, "Category", "categoryId"),
            images=input.images,
            status=CatalogStatus(input.status) if input.status else None,
        )
        return ProductPayload(product=Product.from_model(product))

    @strawberry.mutation(extensions=[*only(IsStaff()), MutationTransaction()])
    async def add_sku(self, info: strawberry.Info[Context, None], input: AddSkuInput) -> SkuPayload:
        sku = await catalog_resolvers.add_sku(
            info.context,
            product_id=decode_id(input.product_id, "Product", "productId"),
            fields=input.sku.fields(),
        )
        return SkuPayload(sku=Sku.from_model(sku))

    @strawberry.mutation(extensions=[*only(IsStaff()), MutationTransaction()])
    async def update_sku(self, info: strawberry.Info[Context, None], input: UpdateSkuInput) -> SkuPayload:
        given = {
            "cost_price": input.cost_price,
            "spec": _spec(input.spec),
            "min_price": input.min_price,
            "max_price": input.max_price,
            "low_stock_default": input.low_stock_default,
            "status": CatalogStatus(input.status) if input.status else None,
        }
        sku = await catalog_resolvers.update_sku(
            info.context,
            sku_id=decode_id(input.id, "Sku"),
            changes={k: v for k, v in given.items() if v is not None},
        )
        return SkuPayload(sku=Sku.from_model(sku))

    @strawberry.mutation(
        extensions=[*requires(Perm.CATALOG_MANAGE), MutationTransaction()],
        description="Set a SKU's base price and its price in every store at once.",
    )
    async def push_price(self, info: strawberry.Info[Context, None], input: PushPriceInput) -> PushPricePayload:
        sku, count = await catalog_resolvers.push_price(
            info.context, decode_id(input.sku_id, "Sku", "skuId"), input.price
        )
        return PushPricePayload(sku=Sku.from_model(sku), stores_updated=count)

    @strawberry.mutation(extensions=[*requires(Perm.CATALOG_MANAGE), MutationTransaction()])
    async def import_catalog_csv(
        self, info: strawberry.Info[Context, None], input: ImportCatalogCsvInput
    ) -> ImportCatalogCsvPayload:
        report = await catalog_resolvers.import_csv(info.context, input.csv)
        if report.errors:
            # Nothing is written from a file with a bad row: refusing rolls back, and every bad row is listed.
            rows = [CsvRowError(row=e.row, column=e.column, message=e.message) for e in report.errors]
            message = f"{len(report.errors)} rows have errors; nothing was imported."
            raise DomainError(ErrorCode.CSV_INVALID, message, "csv", details={"row_errors": rows})
        return ImportCatalogCsvPayload(
            products_created=report.products_created, skus_created=report.skus_created, skus_updated=report.skus_updated
        )

    @strawberry.mutation(extensions=[*requires(Perm.SETTINGS_MANAGE), MutationTransaction()])
    async def update_chain_settings(
        self, info: strawberry.Info[Context, None], input: UpdateChainSettingsInput
    ) -> ChainSettingsPayload:
        value = await catalog_resolvers.save_settings(info.context, **dataclasses.asdict(input))
        return ChainSettingsPayload(settings=ChainSettingsType.of(value))

    @strawberry.mutation(
        extensions=[*requires(Perm.LISTING_MANAGE), MutationTransaction()],
        description="一键上架: list many library SKUs in a store at once.",
    )
    async def adopt_skus(self, info: strawberry.Info[Context, None], input: AdoptSkusInput) -> ListingsPayload:
        items = [
            Adoption(sku_id=decode_id(i.sku_id, "Sku", f"items[{n}].skuId"), price=i.price, on_shelf=i.on_shelf)
            for n, i in enumerate(input.items)
        ]
        rows = await catalog_resolvers.adopt(info.context, decode_id(input.store_id, "Store", "storeId"), items)
        return ListingsPayload(listings=[StoreListing.from_model(r) for r in rows])

    @strawberry.mutation(extensions=[*requires(Perm.LISTING_MANAGE), MutationTransaction()])
    async def set_listing_price(
        self, info: strawberry.Info[Context, None], input: SetListingPriceInput
    ) -> ListingPayload:
        row = await catalog_resolvers.set_listing_price(info.context, decode_id(input.id, "StoreListing"), input.price)
        return ListingPayload(listing=StoreListing.from_model(row))

    @strawberry.mutation(extensions=[*requires(Perm.LISTING_MANAGE), MutationTransaction()])
    async def set_listings_on_shelf(
        self, info: strawberry.Info[Context, None], input: SetListingsOnShelfInput
    ) -> ListingsPayload:
        ids = [decode_id(i, "StoreListing", "ids") for i in input.ids]
        rows = await catalog_resolvers.set_on_shelf(info.context, ids, input.on_shelf)
        return ListingsPayload(listings=[StoreListing.from_model(r) for r in rows])
