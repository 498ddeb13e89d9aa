"""Another store's private ids (its own product's SKU, its own coupon template) behave exactly like ids that do not
exist, in every write that names them: the same answer, and nothing written. `services.access.visible` decides, once."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from models import CouponKind, CouponTemplate, utcnow
from services.catalog import products as catalog
from services.marketing import coupons
from services.platform.db import write_transaction
from tests.conftest import gid, table_counts
from tests.factories import HQ, allow_store_products, list_in_store, make_library

MISSING_SKU = gid("Sku", 987654)
MISSING_TEMPLATE = gid("CouponTemplate", 987654)
ROLES = ["sh01.manager", "sh01.clerk"]


@pytest.fixture
async def private(state, chain) -> dict[str, str]:
    """SH02's own product (one SKU) and SH02's own coupon template; a library SKU SH01 lists, for the control."""
    library = await make_library(state, products=1, skus_per_product=1)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids, on_hand=10)
    await allow_store_products(state)
    now = utcnow()
    async with write_transaction(state.sessionmaker) as session:
        _, skus = await catalog.create_product(
            session,
            HQ,
            name="SH02 特调",
            category_id=library.category_ids["咖啡"],
            store_id=chain.stores["SH02"],
            skus=[catalog.SkuFields(barcode="SH02-0001", base_price=3000)],
        )
        template = await coupons.create_template(
            session,
            HQ,
            coupons.NewTemplate(
                name="SH02 券",
                kind=CouponKind.THRESHOLD_OFF,
                threshold=5000,
                amount_off=500,
                valid_from=now,
                valid_until=now + timedelta(days=30),
                store_ids=[chain.stores["SH02"]],
            ),
        )
        await session.execute(
            update(CouponTemplate).where(CouponTemplate.id == template.id).values(owner_store_id=chain.stores["SH02"])
        )
    return {
        "sku": gid("Sku", skus[0].id),
        "template": gid("CouponTemplate", template.id),
        "library_sku": gid("Sku", library.sku_ids[0]),
        "sh01": gid("Store", chain.stores["SH01"]),
        "sh02": gid("Store", chain.stores["SH02"]),
    }


def _window() -> dict[str, str]:
    now = utcnow()
    return {"startsAt": now.isoformat(), "endsAt": (now + timedelta(days=7)).isoformat()}


ERR = "errors { code field message }"


def _key() -> dict[str, str]:
    """A fresh idempotency key, as a tablet makes one per intent (the stock and transfer writes require one)."""
    return {"idempotencyKey": uuid.uuid4().hex}


def _not_a_request_error(answer: dict[str, Any]) -> None:
    """The operation ran and the rules refused it, rather than the request being turned away before running (a
    request error has no `data`, and would look the same for any id)."""
    assert "data" in answer, answer


SKU_WRITES: dict[str, tuple[str, Any]] = {
    "receiveStock": (
        f"mutation($in: ReceiveStockInput!) {{ receiveStock(input: $in) {{ {ERR} levels {{ onHand }} }} }}",
        lambda ids, sku: {"storeId": ids["sh01"], "lines": [{"skuId": sku, "quantity": 5}], **_key()},
    ),
    "adjustStock": (
        f"mutation($in: AdjustStockInput!) {{ adjustStock(input: $in) {{ {ERR} levels {{ onHand }} }} }}",
        lambda ids, sku: {
            "storeId": ids["sh01"],
            "reason": "CORRECTION",
            "lines": [{"skuId": sku, "delta": 1}],
            **_key(),
        },
    ),
    "submitStocktake": (
        f"mutation($in: StocktakeInput!) {{ submitStocktake(input: $in) {{ {ERR} differences {{ quantity }} }} }}",
        lambda ids, sku: {"storeId": ids["sh01"], "counts": [{"skuId": sku, "quantity": 3}], **_key()},
    ),
    "setLowStockThreshold": (
        f"mutation($in: SetLowStockThresholdInput!) {{ setLowStockThreshold(input: $in) {{ {ERR} }} }}",
        lambda ids, sku: {"storeId": ids["sh01"], "skuId": sku, "threshold": 2},
    ),
    "requestTransfer": (
        f"mutation($in: RequestTransferInput!) {{ requestTransfer(input: $in) {{ {ERR} transfer {{ id }} }} }}",
        lambda ids, sku: {
            "fromStoreId": ids["sh02"],
            "toStoreId": ids["sh01"],
            "lines": [{"skuId": sku, "quantity": 1}],
            **_key(),
        },
    ),
    "createCampaign.skuIds": (
        f"mutation($in: CreateCampaignInput!) {{ createCampaign(input: $in) {{ {ERR} campaign {{ id }} }} }}",
        lambda ids, sku: {
            "kind": "FULL_REDUCTION",
            "name": "满减",
            **_window(),
            "tiers": [{"threshold": 10000, "off": 1000}],
            "skuIds": [sku],
        },
    ),
    "createCampaign.items": (
        f"mutation($in: CreateCampaignInput!) {{ createCampaign(input: $in) {{ {ERR} campaign {{ id }} }} }}",
        lambda ids, sku: {
            "kind": "LIMITED_DISCOUNT",
            "name": "限时",
            **_window(),
            "items": [{"skuId": sku, "percent": 90}],
        },
    ),
    "createCouponTemplate.skuIds": (
        f"mutation($in: CreateCouponTemplateInput!) {{ createCouponTemplate(input: $in) {{ {ERR} template {{ id }} }} }}",
        lambda ids, sku: {
            "name": "券",
            "kind": "THRESHOLD_OFF",
            "threshold": 10000,
            "amountOff": 1000,
            "validFrom": _window()["startsAt"],
            "validUntil": _window()["endsAt"],
            "skuIds": [sku],
        },
    ),
    "createCouponTemplate.freeSkuId": (
        f"mutation($in: CreateCouponTemplateInput!) {{ createCouponTemplate(input: $in) {{ {ERR} template {{ id }} }} }}",
        lambda ids, sku: {
            "name": "券",
            "kind": "FREE_ITEM",
            "validFrom": _window()["startsAt"],
            "validUntil": _window()["endsAt"],
            "freeSkuId": sku,
        },
    ),
}


def _answer(body: dict[str, Any]) -> Any:
    """What the caller learns: data and errors, with the request id (different per request) left out."""
    for error in body.get("errors") or []:
        error.get("extensions", {}).pop("requestId", None)
    return body


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize("operation", list(SKU_WRITES))
async def test_another_stores_private_sku_is_answered_as_a_missing_sku(api, state, private, who, operation):
    query, make = SKU_WRITES[operation]
    await api.token(who)
    before = await table_counts(state)
    foreign = _answer(await api.gql(query, {"in": make(private, private["sku"])}, as_=who))
    _not_a_request_error(foreign)
    assert await table_counts(state) == before, "nothing is written for another store's SKU"
    missing = _answer(await api.gql(query, {"in": make(private, MISSING_SKU)}, as_=who))
    assert foreign == missing
    assert await table_counts(state) == before
    errors = (foreign.get("data") or {}).get(operation.split(".")[0], {}).get("errors") or foreign.get("errors")
    assert errors, foreign  # refused, as data or as FORBIDDEN


@pytest.mark.postgres_too
async def test_hq_and_the_owning_store_still_use_the_private_sku(api, private):
    """The control: the same writes pass for those who may see the SKU, so the refusals above are about scope."""
    query, make = SKU_WRITES["receiveStock"]
    own = await api.gql(query, {"in": make(private, private["sku"]) | {"storeId": private["sh02"]}}, as_="sh02.manager")
    assert own["data"]["receiveStock"]["errors"] == []
    library = await api.gql(query, {"in": make(private, private["library_sku"])}, as_="sh01.manager")
    assert library["data"]["receiveStock"]["errors"] == []
    query, make = SKU_WRITES["createCouponTemplate.skuIds"]
    hq = await api.gql(query, {"in": make(private, private["sku"])}, as_="hq.operator")
    assert hq["data"]["createCouponTemplate"]["errors"] == []


TEMPLATE_USES: dict[str, tuple[str, Any]] = {
    "createCampaign.rewardCouponTemplateId": (
        f"mutation($in: CreateCampaignInput!) {{ createCampaign(input: $in) {{ {ERR} campaign {{ id }} }} }}",
        lambda tpl: {"in": {"kind": "REFERRAL", "name": "推广", **_window(), "rewardCouponTemplateId": tpl}},
    ),
    "campaignEffect": (
        "query($t: ID) { campaignEffect(couponTemplateId: $t) { orders sales discount } }",
        lambda tpl: {"t": tpl},
    ),
    "node": ("query($t: ID!) { node(id: $t) { id } }", lambda tpl: {"t": tpl}),
    "endCouponTemplate": (
        f"mutation($t: ID!) {{ endCouponTemplate(input: {{id: $t}}) {{ {ERR} }} }}",
        lambda tpl: {"t": tpl},
    ),
}


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize("operation", list(TEMPLATE_USES))
async def test_another_stores_coupon_template_is_answered_as_a_missing_one(api, state, private, who, operation):
    query, make = TEMPLATE_USES[operation]
    await api.token(who)
    before = await table_counts(state)
    foreign = _answer(await api.gql(query, make(private["template"]), as_=who))
    _not_a_request_error(foreign)
    missing = _answer(await api.gql(query, make(MISSING_TEMPLATE), as_=who))
    assert foreign == missing
    assert await table_counts(state) == before


async def test_campaign_effect_of_another_stores_coupon_is_not_found(api, private):
    body = await api.gql(TEMPLATE_USES["campaignEffect"][0], {"t": private["template"]}, as_="sh01.manager")
    assert body["data"] is None
    assert body["errors"][0]["extensions"] | {"requestId": None} == {
        "code": "BAD_USER_INPUT",
        "reason": "NOT_FOUND",
        "field": "couponTemplateId",
        "requestId": None,
    }
    own = await api.gql(TEMPLATE_USES["campaignEffect"][0], {"t": private["template"]}, as_="sh02.manager")
    assert "errors" not in own and own["data"]["campaignEffect"][0]["orders"] == 0
