"""The access matrix rows for orders."""

from __future__ import annotations

from typing import Any

from models import Fulfilment, PaymentMethod, Store
from services.access.identity import ExternalIdentity
from services.access.scope import Viewer, ViewerKind
from services.members import accounts as members
from services.orders import lifecycle as orders
from services.platform.db import write_transaction
from services.pricing.engine import CartLine
from tests.conftest import gid, pk
from tests.factories import HQ, list_in_store, make_library


async def given_order(chain, state, *, paid: bool, delivery: bool = False, dispatched: bool = False) -> dict[str, Any]:
    """An order at SH01 by the matrix's member (paid or not yet; for pickup, or for delivery and maybe dispatched)."""
    library = await make_library(state, products=1, skus_per_product=1)
    store = chain.stores["SH01"]
    await list_in_store(state, store, library.sku_ids, on_hand=10)
    async with write_transaction(state.sessionmaker) as session:
        member, _ = await members.member_for_identity(
            session, state.cipher, ExternalIdentity("local", "matrix-member"), store_id=None
        )
        where = None
        if delivery:
            shop = await session.get(Store, store)
            assert shop is not None
            where = orders.DeliveryAddress("Li Lei", "13800000000", "1 Road", shop.lat, shop.lng)
        placed = await orders.place_order(
            session,
            Viewer(kind=ViewerKind.MEMBER, member_id=member.id),
            state.payment_providers["sandbox"],
            orders.PlaceOrder(
                store,
                [CartLine(library.sku_ids[0], 1)],
                "matrix",
                fulfilment=Fulfilment.DELIVERY if delivery else Fulfilment.PICKUP,
                delivery=where,
            ),
            cipher=state.cipher,
        )
        order = placed.order
        if paid:
            order = await orders.mark_paid(session, order.id, order.created_at)
        if dispatched:
            order = await orders.dispatch(session, HQ, order.id)
    return {
        "id": gid("Order", order.id),
        "code": order.pickup_code,
        "store": gid("Store", store),
        "sku": gid("Sku", library.sku_ids[0]),
    }


def _vars(*keys: str, paid: bool = True, delivery: bool = False, dispatched: bool = False):
    async def build(chain, state):
        given = await given_order(chain, state, paid=paid, delivery=delivery, dispatched=dispatched)
        return {k: given[k] for k in keys}

    return build


async def _listed(chain, state):
    library = await make_library(state, products=1, skus_per_product=1)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids, on_hand=10)
    return {"store": gid("Store", chain.stores["SH01"]), "sku": gid("Sku", library.sku_ids[0])}


async def _sold(chain, state):
    """A completed counter sale of one unit (1000 fen) at SH01."""
    from services.orders import pos

    listed = await _listed(chain, state)
    sku = pk(listed["sku"])
    async with write_transaction(state.sessionmaker) as session:
        order = await pos.checkout(
            session,
            HQ,
            pos.Checkout(chain.stores["SH01"], "sold-1", [CartLine(sku, 1)], [pos.Tender(PaymentMethod.CASH, 1000)]),
        )
    return {"id": gid("Order", order.id)}


async def _exchangeable(chain, state):
    """A completed counter sale of one unit at SH01: the order, its line and its SKU (to exchange like for like)."""
    from sqlalchemy import select

    from models import OrderLine

    sold = await _sold(chain, state)
    async with state.sessionmaker() as session:
        line = (await session.scalars(select(OrderLine).where(OrderLine.order_id == pk(sold["id"])))).one()
    return {"id": sold["id"], "line": line.id, "sku": gid("Sku", line.sku_id)}


async def _store_only(chain, state):
    return {"store": gid("Store", chain.stores["SH01"])}


def order_ops(Op, only, ALL, STAFF):
    PICKUP = ("clerk", "store_manager", "hq_admin")
    return [
        Op(
            "quote",
            "query($store: ID!, $sku: ID!) { quote(input: {storeId: $store, lines: [{skuId: $sku, quantity: 1}]}) { total } }",
            ALL,
            _listed,
        ),
        Op("myOrders", "{ myOrders { edges { node { id } } } }", only("member")),
        Op("orders", "query($store: ID!) { orders(storeId: $store) { edges { node { id } } } }", only(*STAFF), _listed),
        Op(
            "orders.filtered",
            "query($store: ID!) { orders(filter: {storeIds: [$store], hasRefund: false}) { edges { node { id timeline { kind } } } } }",
            only(*STAFF),
            _listed,
        ),
        Op("ordersCsv", "{ ordersCsv(filter: {channel: POS}) }", only("hq_analyst", "hq_operator", "hq_admin")),
        Op(
            "placeOrder",
            "mutation($store: ID!, $sku: ID!) { placeOrder(input: {storeId: $store, lines: [{skuId: $sku, quantity: 1}],"
            ' idempotencyKey: "m-1"}) { errors { code } } }',
            only("member"),
            _listed,
            payload="placeOrder",
        ),
        Op("latePayments", "{ latePayments { edges { node { id } } } }", only(*STAFF)),
        Op(
            "payOrder",
            "mutation($id: ID!) { payOrder(input: {id: $id}) { errors { code } } }",
            only("member"),
            _vars("id", paid=False),
            payload="payOrder",
        ),
        Op(
            "cancelMyOrder",
            "mutation($id: ID!) { cancelMyOrder(input: {id: $id}) { errors { code } } }",
            only("member"),
            _vars("id", paid=False),
            payload="cancelMyOrder",
        ),
        Op(
            "posCheckout",
            'mutation($store: ID!, $sku: ID!) { posCheckout(input: {clientOrderId: "c-1", storeId: $store,'
            " lines: [{skuId: $sku, quantity: 1}], tenders: [{method: CASH, amount: 1000}]}) { errors { code } } }",
            only(*PICKUP),
            _listed,
            payload="posCheckout",
        ),
        Op(
            "refundOrder",
            "mutation($idempotencyKey: String!, $id: ID!) { refundOrder(input: {idempotencyKey: $idempotencyKey, id: $id}) { errors { code } } }",
            only("store_manager", "hq_admin"),
            _sold,
            payload="refundOrder",
        ),
        Op(
            "exchangeAtCounter",
            "mutation($id: ID!, $line: Int!, $sku: ID!) { exchangeAtCounter(input: {orderId: $id, idempotencyKey: "
            '"x-1", returnLines: [{lineId: $line, quantity: 1}], newLines: [{skuId: $sku, quantity: 1}]}) '
            "{ errors { code } } }",
            only("store_manager", "hq_admin"),
            _exchangeable,
            payload="exchangeAtCounter",
        ),
        Op(
            "refundPreview",
            "query($id: ID!) { refundPreview(input: {id: $id}) { amount tenders { method amount } } }",
            only("store_manager", "hq_admin"),
            _sold,
        ),
        Op(
            "settlement",
            'query($store: ID!) { settlement(storeId: $store, date: "2026-01-01") { closed figures } }',
            only("store_manager", "hq_analyst", "hq_admin"),
            _store_only,
        ),
        Op(
            "closeSettlement",
            'mutation($store: ID!) { closeSettlement(input: {storeId: $store, date: "2026-01-01"}) { errors { code } } }',
            only("hq_analyst", "hq_admin"),
            _store_only,
            payload="closeSettlement",
        ),
        Op(
            "markOrderPreparing",
            "mutation($id: ID!) { markOrderPreparing(input: {id: $id}) { errors { code } } }",
            only(*PICKUP),
            _vars("id"),
            payload="markOrderPreparing",
        ),
        Op(
            "markOrderReady",
            "mutation($id: ID!) { markOrderReady(input: {id: $id}) { errors { code } } }",
            only(*PICKUP),
            _vars("id"),
            payload="markOrderReady",
        ),
        Op(
            "dispatchOrder",
            "mutation($id: ID!) { dispatchOrder(input: {id: $id}) { errors { code } } }",
            only(*PICKUP),
            _vars("id", delivery=True),
            payload="dispatchOrder",
        ),
        Op(
            "confirmDelivery",
            "mutation($id: ID!) { confirmDelivery(input: {id: $id}) { errors { code } } }",
            only("member", *PICKUP),
            _vars("id", delivery=True, dispatched=True),
            payload="confirmDelivery",
        ),
        Op(
            "topUpOnline",
            'mutation { topUpOnline(input: {idempotencyKey: "t-1", amount: 1000}) { errors { code } } }',
            only("member"),
            payload="topUpOnline",
        ),
        Op(
            "verifyPickup",
            'mutation($code: String!, $store: ID!) { verifyPickup(input: {code: $code, storeId: $store, idempotencyKey: "p-1"}) { errors { code } } }',
            only(*PICKUP),
            _vars("code", "store"),
            payload="verifyPickup",
        ),
    ]
