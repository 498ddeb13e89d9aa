"""The access matrix rows for the catalog, listings, stock and transfers."""

from __future__ import annotations

from typing import Any

from services.inventory import transfers
from services.platform.db import write_transaction
from tests.conftest import gid
from tests.factories import HQ, list_in_store, make_library


async def given_stock(chain, state) -> dict[str, Any]:
    """A library of two SKUs listed in SH01 (10 each) and SH02 (20 each)."""
    library = await make_library(state, products=1, skus_per_product=2)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids, on_hand=10)
    await list_in_store(state, chain.stores["SH02"], library.sku_ids, on_hand=20)
    from sqlalchemy import select

    from models import StoreListing

    async with state.sessionmaker() as session:
        listing = await session.scalar(
            select(StoreListing.id).where(StoreListing.store_id == chain.stores["SH01"]).order_by(StoreListing.id)
        )
    return {
        "store": gid("Store", chain.stores["SH01"]),
        "other": gid("Store", chain.stores["SH02"]),
        "sku": gid("Sku", library.sku_ids[0]),
        "product": gid("Product", library.product_ids[0]),
        "category": gid("Category", library.category_ids["食品"]),
        "listing": gid("StoreListing", listing),
        "sku_ids": library.sku_ids,
    }


async def given_transfer(chain, state, *, approve: bool = False, ship: bool = False) -> dict[str, Any]:
    """A transfer of one unit from SH02 to SH01 (requested by HQ), optionally approved and shipped."""
    base = await given_stock(chain, state)
    async with write_transaction(state.sessionmaker) as session:
        transfer, _ = await transfers.request(
            session,
            HQ,
            from_store_id=chain.stores["SH02"],
            to_store_id=chain.stores["SH01"],
            lines=[transfers.LineQuantity(base["sku_ids"][0], 1)],
            note=None,
        )
        if approve or ship:
            await transfers.decide(session, HQ, transfer_id=transfer.id, approve=True)
        if ship:
            await transfers.ship(session, HQ, transfer_id=transfer.id)
    return {**base, "id": gid("Transfer", transfer.id)}


async def given_outgoing_transfer(chain, state) -> dict[str, Any]:
    """An approved transfer of one unit from SH01 to SH02, waiting for SH01 to ship it."""
    base = await given_stock(chain, state)
    async with write_transaction(state.sessionmaker) as session:
        transfer, _ = await transfers.request(
            session,
            HQ,
            from_store_id=chain.stores["SH01"],
            to_store_id=chain.stores["SH02"],
            lines=[transfers.LineQuantity(base["sku_ids"][0], 1)],
            note=None,
        )
        await transfers.decide(session, HQ, transfer_id=transfer.id, approve=True)
    return {**base, "id": gid("Transfer", transfer.id)}


async def given_warehouse(chain, state) -> dict[str, Any]:
    """An open warehouse holding 10 of each of given_stock's SKUs."""
    from models import StoreKind, StoreStatus
    from services.inventory import stock
    from services.org import stores

    base = await given_stock(chain, state)
    async with write_transaction(state.sessionmaker) as session:
        fields = stores.StoreFields(
            code="WH01",
            name="华东仓",
            city="上海",
            address="嘉定区1号",
            lat=31.38,
            lng=121.25,
            kind=StoreKind.WAREHOUSE,
        )
        warehouse = await stores.create_store(session, fields=fields)
        await stores.set_status(session, store_id=warehouse.id, status=StoreStatus.OPEN)
        await stock.receive(session, warehouse.id, [stock.Line(s, 10) for s in base["sku_ids"]], stock.Ref("seed"))
    return {"store": base["store"], "sku": base["sku"], "warehouse": gid("Store", warehouse.id)}


def _vars(keys: tuple[str, ...], extra: dict[str, Any] | None = None):
    async def build(chain, state):
        given = await given_stock(chain, state)
        return {**{k: given[k] for k in keys}, **(extra or {})}

    return build


def _transfer_vars(**flags: bool):
    async def build(chain, state):
        return {"id": (await given_transfer(chain, state, **flags))["id"]}

    return build


async def _outgoing(chain, state):
    return {"id": (await given_outgoing_transfer(chain, state))["id"]}


def inventory_ops(Op, only, ALL, STAFF):
    """Rows for the access matrix (built by the matrix module, which owns Op and the viewer sets)."""
    CATALOG = ("hq_operator", "hq_admin")
    LISTING = ("store_manager", "hq_operator", "hq_admin")
    STOCK_ADJUST = ("store_manager", "hq_admin")
    csv = "product,category,barcode,base_price\\n豆浆,饮品,6912345000001,3.00\\n"
    return [
        Op("categories", "{ categories { name children { name } } }", ALL),
        Op("products", "{ products(first: 5) { edges { node { name } } } }", ALL),
        Op("skuByBarcode", '{ skuByBarcode(barcode: "6900000000") { id } }', ALL),
        Op("chainSettings", "{ chainSettings { priceBandPercent } }", only(*STAFF)),
        Op("catalogCsv", "{ catalogCsv }", only(*CATALOG)),
        Op("lowStock", "{ lowStock { edges { node { onHand } } } }", only(*STAFF)),
        Op(
            "stockMovements",
            "query($store: ID!) { stockMovements(storeId: $store) { edges { node { quantity } } } }",
            only(*STAFF),
            _vars(("store",)),
        ),
        Op("transfers", "{ transfers { edges { node { status } } } }", only(*STAFF)),
        Op(
            "transferSuggestions",
            "query($store: ID!) { transferSuggestions(storeId: $store) { quantity } }",
            only(*STAFF),
            _vars(("store",)),
        ),
        Op(
            "createCategory",
            'mutation { createCategory(input: {name: "茶饮"}) { errors { code } } }',
            only(*CATALOG),
            payload="createCategory",
        ),
        Op(
            "updateCategory",
            'mutation($category: ID!) { updateCategory(input: {id: $category, name: "小食"}) { errors { code } } }',
            only(*CATALOG),
            _vars(("category",)),
            payload="updateCategory",
        ),
        Op(
            "createProduct",
            'mutation($category: ID!) { createProduct(input: {name: "豆浆", categoryId: $category,'
            ' skus: [{barcode: "6912345000009", basePrice: 300}]}) { errors { code } } }',
            only(*CATALOG),
            _vars(("category",)),
            payload="createProduct",
        ),
        Op(
            "updateProduct",
            'mutation($product: ID!) { updateProduct(input: {id: $product, name: "新名字"}) { errors { code } } }',
            only(*CATALOG),
            _vars(("product",)),
            payload="updateProduct",
        ),
        Op(
            "addSku",
            'mutation($product: ID!) { addSku(input: {productId: $product, sku: {barcode: "6912345000010",'
            " basePrice: 1000}}) { errors { code } } }",
            only(*CATALOG),
            _vars(("product",)),
            payload="addSku",
        ),
        Op(
            "updateSku",
            "mutation($sku: ID!) { updateSku(input: {id: $sku, costPrice: 420}) { errors { code } } }",
            only(*CATALOG),
            _vars(("sku",)),
            payload="updateSku",
        ),
        Op(
            "pushPrice",
            "mutation($sku: ID!) { pushPrice(input: {skuId: $sku, price: 1100}) { errors { code } } }",
            only(*CATALOG),
            _vars(("sku",)),
            payload="pushPrice",
        ),
        Op(
            "importCatalogCsv",
            f'mutation {{ importCatalogCsv(input: {{csv: "{csv}"}}) {{ errors {{ code }} }} }}',
            only(*CATALOG),
            payload="importCatalogCsv",
        ),
        Op(
            "updateChainSettings",
            "mutation { updateChainSettings(input: {priceBandPercent: 30}) { errors { code } } }",
            only("hq_admin"),
            payload="updateChainSettings",
        ),
        Op(
            "adoptSkus",
            "mutation($store: ID!, $sku: ID!) { adoptSkus(input: {storeId: $store, items: [{skuId: $sku}]}) { errors { code } } }",
            only(*LISTING),
            _adopt_vars,
            payload="adoptSkus",
        ),
        Op(
            "setListingPrice",
            "mutation($listing: ID!) { setListingPrice(input: {id: $listing, price: 1050}) { errors { code } } }",
            only(*LISTING),
            _vars(("listing",)),
            payload="setListingPrice",
        ),
        Op(
            "setListingsOnShelf",
            "mutation($listing: ID!) { setListingsOnShelf(input: {ids: [$listing], onShelf: false}) { errors { code } } }",
            only(*LISTING),
            _vars(("listing",)),
            payload="setListingsOnShelf",
        ),
        Op(
            "receiveStock",
            "mutation($idempotencyKey: String!, $store: ID!, $sku: ID!) { receiveStock(input: {idempotencyKey: $idempotencyKey, storeId: $store, lines: [{skuId: $sku, quantity: 2}]}) { errors { code } } }",
            only(*STOCK_ADJUST),
            _vars(("store", "sku")),
            payload="receiveStock",
        ),
        Op(
            "adjustStock",
            "mutation($idempotencyKey: String!, $store: ID!, $sku: ID!) { adjustStock(input: {idempotencyKey: $idempotencyKey, storeId: $store, lines: [{skuId: $sku, delta: -1}], reason: DAMAGE}) { errors { code } } }",
            only(*STOCK_ADJUST),
            _vars(("store", "sku")),
            payload="adjustStock",
        ),
        Op(
            "submitStocktake",
            "mutation($idempotencyKey: String!, $store: ID!, $sku: ID!) { submitStocktake(input: {idempotencyKey: $idempotencyKey, storeId: $store, counts: [{skuId: $sku, quantity: 9}]}) { errors { code } } }",
            only(*STOCK_ADJUST),
            _vars(("store", "sku")),
            payload="submitStocktake",
        ),
        Op(
            "setLowStockThreshold",
            "mutation($store: ID!, $sku: ID!) { setLowStockThreshold(input: {storeId: $store, skuId: $sku, threshold: 3}) { errors { code } } }",
            only(*STOCK_ADJUST),
            _vars(("store", "sku")),
            payload="setLowStockThreshold",
        ),
        Op(
            "requestTransfer",
            "mutation($idempotencyKey: String!, $store: ID!, $other: ID!, $sku: ID!) { requestTransfer(input: {idempotencyKey: $idempotencyKey, fromStoreId: $other, toStoreId: $store,"
            " lines: [{skuId: $sku, quantity: 1}]}) { errors { code } } }",
            only(*STOCK_ADJUST),
            _vars(("store", "other", "sku")),
            payload="requestTransfer",
        ),
        Op(
            "decideTransfer",
            "mutation($id: ID!) { decideTransfer(input: {id: $id, approve: true}) { errors { code } } }",
            only("hq_admin"),
            _transfer_vars(),
            payload="decideTransfer",
        ),
        Op(
            "shipTransfer",
            "mutation($idempotencyKey: String!, $id: ID!) { shipTransfer(input: {idempotencyKey: $idempotencyKey, id: $id}) { errors { code } } }",
            only(*STOCK_ADJUST),
            _outgoing,
            payload="shipTransfer",
        ),
        Op(
            "receiveTransfer",
            "mutation($idempotencyKey: String!, $id: ID!) { receiveTransfer(input: {idempotencyKey: $idempotencyKey, id: $id}) { errors { code } } }",
            only(*STOCK_ADJUST),
            _transfer_vars(ship=True),
            payload="receiveTransfer",
        ),
        Op(
            "cancelTransfer",
            "mutation($id: ID!) { cancelTransfer(input: {id: $id}) { errors { code } } }",
            only(*STOCK_ADJUST),
            _transfer_vars(),
            payload="cancelTransfer",
        ),
        Op(
            "replenishmentSuggestions",
            "query($store: ID!) { replenishmentSuggestions(storeId: $store) { quantity } }",
            only(*STAFF),
            _vars(("store",)),
        ),
        Op(
            "setStockBounds",
            "mutation($store: ID!, $sku: ID!) { setStockBounds(input: {storeId: $store, skuId: $sku, minLevel: 2, maxLevel: 8}) { errors { code } } }",
            only(*STOCK_ADJUST),
            _vars(("store", "sku")),
            payload="setStockBounds",
        ),
        Op(
            "requestReplenishment",
            "mutation($idempotencyKey: String!, $store: ID!, $warehouse: ID!, $sku: ID!) { requestReplenishment(input: {idempotencyKey: $idempotencyKey, storeId: $store, warehouseId: $warehouse,"
            " lines: [{skuId: $sku, quantity: 1}]}) { errors { code } } }",
            only(*STOCK_ADJUST),
            given_warehouse,
            payload="requestReplenishment",
        ),
        Op(
            "purchaseReceipts",
            "query($warehouse: ID!) { purchaseReceipts(warehouseId: $warehouse) { edges { node { totalCost } } } }",
            only(*STAFF),
            given_warehouse,
        ),
        Op(
            "receivePurchase",
            'mutation($idempotencyKey: String!, $warehouse: ID!, $sku: ID!) { receivePurchase(input: {idempotencyKey: $idempotencyKey, warehouseId: $warehouse, supplierName: "上海乳业",'
            " lines: [{skuId: $sku, quantity: 5, unitCost: 480}]}) { errors { code } } }",
            only("hq_admin"),
            given_warehouse,
            payload="receivePurchase",
        ),
    ]


async def _adopt_vars(chain, state):
    """A SKU in the library that SH01 has not listed yet."""
    library = await make_library(state, products=1, skus_per_product=1)
    return {"store": gid("Store", chain.stores["SH01"]), "sku": gid("Sku", library.sku_ids[0])}
