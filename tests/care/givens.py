"""Givens for the after-sales tests: members who bought in SH01 (and one in SH02), paid at the counter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.conftest import gid, pk
from tests.factories import list_in_store, make_library

CHECKOUT = """mutation($key: String!, $lines: [CartLineInput!]!, $t: [TenderInput!]!, $m: ID, $s: ID) {
  posCheckout(input: {clientOrderId: $key, lines: $lines, tenders: $t, memberId: $m, storeId: $s}) {
    errors { code field } order { id payable } } }"""


@dataclass
class Shop:
    skus: list[int]
    members: dict[str, int]  # code -> member id
    orders: dict[str, str]  # code -> the member's order (global id)


async def sign_in(api: Any, code: str, store: str) -> int:
    """A member signs in at a store (the store knows them now); the code is `subject:phone`."""
    made = await api.member_sign_in(code, store)
    assert made["errors"] == [], made
    api.tokens[f"member:{code}"] = made["tokens"]["accessToken"]
    return pk(made["member"]["id"])


async def sell(api: Any, skus: list[int], member_id: int, *, clerk: str, key: str) -> str:
    """A counter sale of two units of each SKU (1,000 fen each) to the member, paid in cash."""
    total = 2000 * len(skus)
    sale = await api.gql(
        CHECKOUT,
        {
            "key": key,
            "m": gid("Member", member_id),
            "lines": [{"skuId": gid("Sku", s), "quantity": 2} for s in skus],
            "t": [{"method": "CASH", "amount": total}],
        },
        as_=clerk,
    )
    assert sale["data"]["posCheckout"]["errors"] == [], sale
    order_id: str = sale["data"]["posCheckout"]["order"]["id"]
    return order_id


async def given_shop(api: Any, state: Any, chain: Any, codes: tuple[str, ...] = ("ann:13800000001",)) -> Shop:
    """Two SKUs in SH01 and SH02; each member signed in at SH01 and bought two of each there."""
    library = await make_library(state, products=2, skus_per_product=1)
    for store in ("SH01", "SH02"):
        await list_in_store(state, chain.stores[store], library.sku_ids, on_hand=50)
    shop = Shop(library.sku_ids, {}, {})
    for code in codes:
        shop.members[code] = await sign_in(api, code, gid("Store", chain.stores["SH01"]))
        shop.orders[code] = await sell(api, library.sku_ids, shop.members[code], clerk="sh01.clerk", key=f"sale-{code}")
    return shop
