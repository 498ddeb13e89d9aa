"""The access matrix rows for marketing."""

from __future__ import annotations

from typing import Any

from models import CampaignKind, CouponKind, RoleScope
from services.access.identity import ExternalIdentity
from services.access.scope import Viewer, ViewerKind
from services.marketing import coupons, group_buys, points_mall, promotions, referrals
from services.members import accounts as members
from services.members import points
from services.platform.db import write_transaction
from tests.conftest import gid
from tests.factories import HQ, list_in_store, make_library
from tests.marketing_givens import campaign, template

WINDOW = 'startsAt: "2030-01-01T00:00:00+00:00", endsAt: "2030-02-01T00:00:00+00:00"'
VALID = 'validFrom: "2020-01-01T00:00:00+00:00", validUntil: "2030-02-01T00:00:00+00:00"'


def _sh01_manager(chain) -> Viewer:
    return Viewer(
        kind=ViewerKind.STAFF,
        role_code="STORE_MANAGER",
        role_scope=RoleScope.STORE,
        store_id=chain.stores["SH01"],
        permissions=frozenset({"marketing.manage"}),
    )


async def _member(state, subject: str) -> int:
    async with write_transaction(state.sessionmaker) as session:
        member, _ = await members.member_for_identity(
            session, state.cipher, ExternalIdentity("local", subject), store_id=None
        )
        return member.id


async def _store(chain, state) -> dict[str, Any]:
    return {"store": gid("Store", chain.stores["SH01"])}


async def _hq_campaign(chain, state) -> dict[str, Any]:
    return {"id": gid("Campaign", await campaign(state, CampaignKind.FULL_REDUCTION, tiers=[(10000, 1000)]))}


async def _local_campaign(chain, state) -> dict[str, Any]:
    from datetime import timedelta

    from models import utcnow

    spec = promotions.NewCampaign(
        CampaignKind.FULL_REDUCTION, "本店满减", utcnow(), utcnow() + timedelta(days=1), tiers=[(10000, 1000)]
    )
    async with write_transaction(state.sessionmaker) as session:
        return {"id": gid("Campaign", (await promotions.create(session, _sh01_manager(chain), spec)).id)}


async def _local_template(chain, state) -> dict[str, Any]:
    from datetime import timedelta

    from models import utcnow

    spec = coupons.NewTemplate(
        "本店券", CouponKind.THRESHOLD_OFF, utcnow(), utcnow() + timedelta(days=1), threshold=10000, amount_off=1000
    )
    async with write_transaction(state.sessionmaker) as session:
        return {"id": gid("CouponTemplate", (await coupons.create_template(session, _sh01_manager(chain), spec)).id)}


async def _template(chain, state) -> dict[str, Any]:
    return {"t": gid("CouponTemplate", await template(state, CouponKind.AMOUNT_OFF, amount_off=100))}


async def _group_campaign(chain, state) -> dict[str, Any]:
    from services.marketing.promotions import ItemSpec

    library = await make_library(state, products=1, skus_per_product=1)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids, on_hand=10)
    sku = library.sku_ids[0]
    campaign_id = await campaign(
        state, CampaignKind.GROUP_BUY, items=[ItemSpec(sku, price=500)], group_size=3, group_minutes=30
    )
    return {
        "c": gid("Campaign", campaign_id),
        "store": gid("Store", chain.stores["SH01"]),
        "sku": gid("Sku", sku),
        "campaign_id": campaign_id,
        "sku_id": sku,
    }


async def _open_group(chain, state) -> dict[str, Any]:
    given = await _group_campaign(chain, state)
    leader = await _member(state, "group-leader")
    async with write_transaction(state.sessionmaker) as session:
        joined = await group_buys.open_group(
            session,
            Viewer(kind=ViewerKind.MEMBER, member_id=leader),
            state.payment_providers["sandbox"],
            campaign_id=given["campaign_id"],
            store_id=chain.stores["SH01"],
            sku_id=given["sku_id"],
            idempotency_key="leader",
        )
    return {"code": joined.group.share_code}


async def _share_code(chain, state) -> dict[str, Any]:
    await campaign(state, CampaignKind.REFERRAL, reward_points=100)
    referrer = await _member(state, "referrer")
    async with write_transaction(state.sessionmaker) as session:
        code = await referrals.share_code(session, Viewer(kind=ViewerKind.MEMBER, member_id=referrer))
    return {"code": code}


async def _mall_item(chain, state) -> dict[str, Any]:
    coupon = await template(state, CouponKind.AMOUNT_OFF, amount_off=100, claimable=False)
    me = await _member(state, "matrix-member")
    async with write_transaction(state.sessionmaker) as session:
        await points.adjust(session, me, 100, note="matrix", staff_id=None)
        item = await points_mall.create_item(
            session, HQ, name="券", points_cost=10, stock_count=5, sku_id=None, coupon_template_id=coupon
        )
    return {"i": gid("PointsMallItem", item.id)}


def report_ops(Op, only, ALL, STAFF):
    READERS = ("store_manager", "hq_analyst", "hq_operator", "hq_admin")
    return [
        Op("salesReport", "{ salesReport { totals { net } csv } }", only(*READERS)),
        Op("storeRanking", "{ storeRanking { rows { rank } csv } }", only(*READERS)),
        Op("cityComparison", "{ cityComparison { city storeCount stores { rankInCity } } }", only(*READERS)),
        Op("inventoryReport", "{ inventoryReport { rows { onHand } csv } }", only(*READERS)),
        Op("memberReport", "{ memberReport { totalMembers csv } }", only(*READERS)),
        Op("marketingReport", "{ marketingReport { rows { name } csv } }", only(*READERS)),
        Op("recommendations", "query($store: ID!) { recommendations(storeId: $store) { reason } }", ALL, _store),
    ]


def marketing_ops(Op, only, ALL, STAFF):
    MARKETERS = ("store_manager", "hq_operator", "hq_admin")
    HQ_MARKETERS = ("hq_operator", "hq_admin")
    return [
        Op("campaigns", "{ campaigns { edges { node { id } } } }", only(*MARKETERS)),
        Op("runningCampaigns", "query($store: ID!) { runningCampaigns(storeId: $store) { id } }", ALL, _store),
        Op("couponTemplates", "{ couponTemplates { edges { node { id } } } }", only(*MARKETERS)),
        Op("claimableCoupons", "{ claimableCoupons { id } }", ALL),
        Op("myCoupons", "{ myCoupons { edges { node { id } } } }", only("member")),
        Op("groupBuy", 'query { groupBuy(shareCode: "NOSUCHCODE") { status } }', only("member")),
        Op("pointsMall", "{ pointsMall { id } }", ALL),
        Op(
            "campaignEffect",
            "query($id: ID!) { campaignEffect(campaignId: $id) { orders } }",
            only("store_manager", "hq_analyst", "hq_operator", "hq_admin"),
            _hq_campaign,
        ),
        Op("myShareCode", "{ myShareCode }", only("member")),
        Op(
            "createCampaign",
            f'mutation {{ createCampaign(input: {{kind: FULL_REDUCTION, name: "满减", {WINDOW},'
            " tiers: [{threshold: 10000, off: 1000}]}) { errors { code } } }",
            only(*MARKETERS),
            payload="createCampaign",
        ),
        Op(
            "endCampaign",
            "mutation($id: ID!) { endCampaign(input: {id: $id}) { errors { code } } }",
            only(*MARKETERS),
            _local_campaign,
            payload="endCampaign",
        ),
        Op(
            "createCouponTemplate",
            f'mutation {{ createCouponTemplate(input: {{name: "券", kind: THRESHOLD_OFF, {VALID},'
            " threshold: 10000, amountOff: 1000}) { errors { code } } }",
            only(*MARKETERS),
            payload="createCouponTemplate",
        ),
        Op(
            "endCouponTemplate",
            "mutation($id: ID!) { endCouponTemplate(input: {id: $id}) { errors { code } } }",
            only(*MARKETERS),
            _local_template,
            payload="endCouponTemplate",
        ),
        Op(
            "claimCoupon",
            "mutation($idempotencyKey: String!, $t: ID!) { claimCoupon(input: {idempotencyKey: $idempotencyKey, templateId: $t}) { errors { code } } }",
            only("member"),
            _template,
            payload="claimCoupon",
        ),
        Op(
            "issueCoupons",
            'mutation($idempotencyKey: String!, $t: ID!) { issueCoupons(input: {idempotencyKey: $idempotencyKey, templateId: $t, segment: "VIP"}) { errors { code } } }',
            only(*HQ_MARKETERS),
            _template,
            payload="issueCoupons",
        ),
        Op(
            "openGroupBuy",
            "mutation($c: ID!, $store: ID!, $sku: ID!) { openGroupBuy(input: {campaignId: $c,"
            ' storeId: $store, skuId: $sku, idempotencyKey: "g-1"}) { errors { code } } }',
            only("member"),
            _group_campaign,
            payload="openGroupBuy",
        ),
        Op(
            "joinGroupBuy",
            'mutation($code: String!) { joinGroupBuy(input: {shareCode: $code, idempotencyKey: "j-1"})'
            " { errors { code } } }",
            only("member"),
            _open_group,
            payload="joinGroupBuy",
        ),
        Op(
            "acceptReferral",
            "mutation($code: String!) { acceptReferral(input: {code: $code}) { errors { code } } }",
            only("member"),
            _share_code,
            payload="acceptReferral",
        ),
        Op(
            "createPointsMallItem",
            'mutation($t: ID!) { createPointsMallItem(input: {name: "x", pointsCost: 10,'
            " stock: 1, couponTemplateId: $t}) { errors { code } } }",
            only(*HQ_MARKETERS),
            _template,
            payload="createPointsMallItem",
        ),
        Op(
            "exchangePoints",
            'mutation($i: ID!) { exchangePoints(input: {itemId: $i, idempotencyKey: "x-1"}) { errors { code } } }',
            only("member"),
            _mall_item,
            payload="exchangePoints",
        ),
    ]
