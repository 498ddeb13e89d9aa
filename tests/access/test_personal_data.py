"""Personal data (issue 13, item 9): declared once, redacted from the audit log and logs by that declaration,
erased when a member deletes their account, and all of it in the member's export."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from graphql import GraphQLInputObjectType
from sqlalchemy import func, select
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from models import (
    AuditOutcome,
    AuthSession,
    BalanceEntry,
    BalanceLot,
    CampaignKind,
    CouponKind,
    GroupBuy,
    GroupBuyStatus,
    Job,
    JobStatus,
    Member,
    MemberIdentity,
    Order,
    OrderStatus,
    PointsEntry,
    Referral,
    Refund,
    StockLevel,
    StockMovement,
    utcnow,
)
from schema import schema
from schema.core.personal import Sensitivity, declared
from services.access.audit import AuditEntry, Plan, hidden_values, record, redact
from services.access.scope import Viewer, ViewerKind
from services.marketing import group_buys
from services.marketing.promotions import ItemSpec
from services.members import data as member_data
from services.members import stored_value
from services.platform import jobs
from services.platform.db import write_transaction
from tests.conftest import gid, pk, table_counts
from tests.factories import list_in_store, make_library
from tests.marketing_givens import campaign, give_coupon, given_menu

# A field whose name says it could hold personal data (or a secret) must say whether it does.
SUGGESTS_PERSONAL = re.compile(
    r"phone|mobile|name|contact|address|birth|e?mail|idcard|idnumber|passport|password|passcode|code|token|secret"
    r"|otp|gender|sex|^lat$|^lng$|latitude|longitude|location|subject|openid|unionid|signature|note|remark|reason"
    r"|comment|ip$",
    re.IGNORECASE,
)


def _input_fields() -> list[tuple[str, str, StrawberryField]]:
    found = []
    for gql_type in schema._schema.type_map.values():
        if isinstance(gql_type, GraphQLInputObjectType) and not gql_type.name.startswith("__"):
            for name, gql_field in gql_type.fields.items():
                found.append((gql_type.name, name, gql_field.extensions[GraphQLCoreConverter.DEFINITION_BACKREF]))
    return found


def test_every_input_field_that_may_hold_personal_data_declares_whether_it_does():
    fields = _input_fields()
    assert len({t for t, _, _ in fields}) > 50  # the walk sees the whole schema, not a part of it
    undeclared = [f"{t}.{n}" for t, n, field in fields if SUGGESTS_PERSONAL.search(n) and declared(field) is None]
    assert undeclared == [], "declare these personal(...) or not_personal() in their input types"


# --- redaction in the audit log and the logs -------------------------------------------------------------------

CONTACT: dict[str, Any] = {
    "contactName": "李雷",
    "phone": "13912345678",
    "address": "南京西路1700号 12楼",
    "lat": 31.2260,
    "lng": 121.4480,
}
PROFILE_NAME, BIRTHDAY = "韩梅梅", "1991-07-08"
PLACE = """mutation($s: ID!, $l: [CartLineInput!]!, $key: String!, $d: DeliveryAddressInput, $sv: Int) {
  placeOrder(input: {storeId: $s, lines: $l, idempotencyKey: $key, fulfilment: DELIVERY, delivery: $d,
                     useStoredValue: $sv}) {
    errors { code field message } order { id status payable } } }"""
PLACE_PICKUP = """mutation($s: ID!, $l: [CartLineInput!]!, $key: String!, $sv: Int) {
  placeOrder(input: {storeId: $s, lines: $l, idempotencyKey: $key, useStoredValue: $sv}) {
    errors { code field message } order { id status payable } } }"""
PROFILE = """mutation($n: String, $b: Date) { updateMyProfile(input: {name: $n, birthday: $b, gender: FEMALE}) {
  errors { code } member { id name } } }"""
AUDIT = """query($op: String) { auditLogs(first: 100, filter: {operation: $op}) {
  edges { node { operation outcome input targetIds } } } }"""
DELETE = "mutation { deleteMyAccount { errors { code message } deleted } }"
REFUND = """mutation($idempotencyKey: String!, $id: ID!, $lines: [CartLineInput!]) { refundOrder(input: {idempotencyKey: $idempotencyKey, id: $id, lines: $lines, restock: true}) {
  errors { code } refund { amount } } }"""


async def _sku_in(state, store_id: int, price: int = 1500, on_hand: int = 20) -> int:
    library = await make_library(state, products=1, skus_per_product=1, price=price)
    await list_in_store(state, store_id, library.sku_ids, on_hand=on_hand)
    return library.sku_ids[0]


def _lines(sku: int, qty: int = 1) -> list[dict[str, object]]:
    return [{"skuId": gid("Sku", sku), "quantity": qty}]


async def _audit(api, operation: str) -> list[dict[str, Any]]:
    body = await api.gql(AUDIT, {"op": operation}, as_="hq.admin")
    return [e["node"] for e in body["data"]["auditLogs"]["edges"]]


def _everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    return caplog.text + "\n".join(r.getMessage() + str(r.exc_info or "") + (r.exc_text or "") for r in caplog.records)


async def test_orders_and_profiles_leave_no_personal_values_in_the_audit_log_or_the_logs(
    api, state, chain, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    sh01 = chain.stores["SH01"]
    sku = await _sku_in(state, sh01)
    token = await api.token("member:audited")
    placed = await api.post(PLACE, {"s": gid("Store", sh01), "l": _lines(sku), "key": "a-1", "d": CONTACT}, token)
    assert placed.json()["data"]["placeOrder"]["errors"] == []
    changed = await api.post(PROFILE, {"n": PROFILE_NAME, "b": BIRTHDAY}, token)
    assert changed.json()["data"]["updateMyProfile"]["member"]["name"] == PROFILE_NAME
    refused = await api.post(PLACE, {"s": gid("Store", sh01), "l": _lines(sku, 999), "key": "a-2", "d": CONTACT}, token)
    assert refused.json()["data"]["placeOrder"]["errors"][0]["code"] == "OUT_OF_STOCK"

    # An unexpected failure whose text carries the input (as a database error's parameters would) is logged in full,
    # but without the request's personal values.
    async def broken(session, viewer, changes):
        raise RuntimeError(f"cannot store name={changes.name!r} birthday={changes.birthday}")

    monkeypatch.setattr("services.members.accounts.update_profile", broken)
    failed = (await api.post(PROFILE, {"n": PROFILE_NAME, "b": BIRTHDAY}, token)).json()
    assert failed["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "unexpected error" in caplog.text and "RuntimeError: cannot store name=" in caplog.text

    orders_logged = await _audit(api, "placeOrder")
    profiles_logged = await _audit(api, "updateMyProfile")
    assert sorted(e["outcome"] for e in orders_logged) == ["OK", "REFUSED"]
    assert sorted(e["outcome"] for e in profiles_logged) == ["FAILED", "OK"]
    for entry in orders_logged:
        assert entry["input"]["delivery"] == {
            "contactName": "[REDACTED]",
            "phone": "139****5678",
            "address": "[REDACTED]",
            "lat": "[REDACTED]",
            "lng": "[REDACTED]",
        }
        assert entry["input"]["idempotencyKey"] in {"a-1", "a-2"}  # what is not personal stays readable
    for entry in profiles_logged:
        assert entry["input"] == {"name": "[REDACTED]", "birthday": "[REDACTED]", "gender": "[REDACTED]"}
    recorded = str(orders_logged + profiles_logged)
    logged = _everything_logged(caplog)
    for value in (CONTACT["contactName"], CONTACT["phone"], CONTACT["address"], PROFILE_NAME, BIRTHDAY):
        assert value not in recorded, value
        assert value not in logged, value
    manager = await api.gql(AUDIT, {"op": "placeOrder"}, as_="sh01.manager")
    assert CONTACT["address"] not in str(manager) and "[REDACTED]" in str(manager)


def test_redaction_follows_the_declaration_into_nested_and_listed_inputs():
    plan: Plan = {
        "delivery": {"phone": Sensitivity.PHONE, "address": Sensitivity.PERSONAL},
        "people": {"name": Sensitivity.PERSONAL},
        "code": Sensitivity.SECRET,
    }
    given = {
        "delivery": {"phone": "13912345678", "address": "a street"},
        "code": "s3cret",
        "note": "kept",
        "people": [{"name": "Li"}, {"name": None}],
    }
    assert redact(given, plan) == {
        "delivery": {"phone": "139****5678", "address": "[REDACTED]"},
        "note": "kept",
        "code": "[REDACTED]",
        "people": [{"name": "[REDACTED]"}, {"name": None}],
    }
    assert hidden_values(given, plan) == {"13912345678", "a street", "s3cret", "Li"}


# --- deleting an account ---------------------------------------------------------------------------------------


async def _member_id(state, token_code: str) -> int:
    subject = token_code.removeprefix("member:").split(":")[0]
    async with state.sessionmaker() as session:
        found = await session.scalar(
            select(MemberIdentity.member_id).where(
                MemberIdentity.provider == "local", MemberIdentity.subject == subject
            )
        )
    assert found is not None
    return int(found)


async def _stored_value(state, member_id: int, store_id: int, *, principal: int, bonus: int, spend: int = 0) -> None:
    """A counter top-up, and some of it spent at the counter before (principal goes first)."""
    async with write_transaction(state.sessionmaker) as session:
        await stored_value.top_up(
            session,
            member_id,
            principal=principal,
            bonus=bonus,
            store_id=store_id,
            ref_type="counter_top_up",
            ref_id=None,
        )
        if spend:
            await stored_value.spend(session, member_id, spend, store_id=store_id, ref_type="counter", ref_id=None)


async def _books_balance(state, member_id: int, sku: int, store_id: int) -> None:
    """Balances equal their ledgers (and the lots), and stock equals its movements."""
    async with state.sessionmaker() as session:
        member = await session.get(Member, member_id)
        ledger = (
            await session.execute(
                select(
                    func.coalesce(func.sum(BalanceEntry.principal), 0), func.coalesce(func.sum(BalanceEntry.bonus), 0)
                ).where(BalanceEntry.member_id == member_id)
            )
        ).one()
        lots = (
            await session.execute(
                select(
                    func.coalesce(func.sum(BalanceLot.principal_left), 0),
                    func.coalesce(func.sum(BalanceLot.bonus_left), 0),
                ).where(BalanceLot.member_id == member_id)
            )
        ).one()
        points_sum = await session.scalar(
            select(func.coalesce(func.sum(PointsEntry.points), 0)).where(PointsEntry.member_id == member_id)
        )
        level = await session.scalar(
            select(StockLevel).where(StockLevel.store_id == store_id, StockLevel.sku_id == sku)
        )
        moved = (
            await session.execute(
                select(func.sum(StockMovement.quantity), func.sum(StockMovement.reserved_delta)).where(
                    StockMovement.store_id == store_id, StockMovement.sku_id == sku
                )
            )
        ).one()
    assert (member.balance_principal, member.balance_bonus) == tuple(ledger) == tuple(lots)
    assert member.points_balance == points_sum
    assert (level.on_hand, level.reserved) == tuple(moved)


async def _jobs_settled(state) -> None:
    """Every job due in the next day runs: none failed, none waits to be retried."""
    await jobs.run_due(state.sessionmaker, utcnow() + timedelta(days=1), providers=state.payment_providers)
    async with state.sessionmaker() as session:
        stuck = (
            await session.execute(
                select(Job.kind, Job.status, Job.attempts, Job.last_error).where(
                    Job.kind == "orders.expire", (Job.status != JobStatus.DONE) | (Job.last_error.is_not(None))
                )
            )
        ).all()
    assert stuck == []


async def test_deleting_while_an_unpaid_order_holds_stored_value_releases_it_and_its_expiry_runs(api, state, chain):
    sh01 = chain.stores["SH01"]
    sku = await _sku_in(state, sh01, price=1500, on_hand=5)
    token = (await api.member_sign_in("held:13500135000", gid("Store", sh01)))["tokens"]["accessToken"]
    member_id = await _member_id(state, "held")
    await _stored_value(state, member_id, sh01, principal=1000, bonus=500, spend=1000)  # 500 bonus left
    placed = await api.post(
        PLACE_PICKUP, {"s": gid("Store", sh01), "l": _lines(sku, 2), "key": "h-1", "sv": 300}, token
    )
    order = placed.json()["data"]["placeOrder"]["order"]
    assert order["status"] == "CREATED" and order["payable"] == 2700
    async with state.sessionmaker() as session:
        assert (await session.get(Member, member_id)).balance_bonus == 200

    deleted = (await api.post(DELETE, token=token)).json()["data"]["deleteMyAccount"]
    assert deleted == {"errors": [], "deleted": True}
    async with state.sessionmaker() as session:
        cancelled = await session.get(Order, pk(order["id"]))
        level = await session.scalar(select(StockLevel).where(StockLevel.store_id == sh01, StockLevel.sku_id == sku))
        member = await session.get(Member, member_id)
    assert cancelled.status is OrderStatus.CANCELLED and level.reserved == 0 and level.on_hand == 5
    assert member.deleted_at is not None and member.balance_bonus == 500  # the held bonus came back to the books
    await _jobs_settled(state)
    await _books_balance(state, member_id, sku, sh01)


async def test_a_deletion_that_would_strand_the_members_own_money_is_refused_and_changes_nothing(api, state, chain):
    sh01 = chain.stores["SH01"]
    sku = await _sku_in(state, sh01, price=1500, on_hand=5)
    token = (await api.member_sign_in("owed:13500135001", gid("Store", sh01)))["tokens"]["accessToken"]
    member_id = await _member_id(state, "owed")
    await _stored_value(state, member_id, sh01, principal=1000, bonus=0)
    placed = await api.post(
        PLACE_PICKUP, {"s": gid("Store", sh01), "l": _lines(sku, 1), "key": "o-1", "sv": 1000}, token
    )
    order = placed.json()["data"]["placeOrder"]["order"]
    before = await table_counts(state)

    refused = (await api.post(DELETE, token=token)).json()["data"]["deleteMyAccount"]
    assert refused["errors"][0]["code"] == "INVALID_INPUT" and refused["deleted"] is False
    assert await table_counts(state) == before
    async with state.sessionmaker() as session:
        still = await session.get(Order, pk(order["id"]))
        member = await session.get(Member, member_id)
        level = await session.scalar(select(StockLevel).where(StockLevel.store_id == sh01, StockLevel.sku_id == sku))
    assert still.status is OrderStatus.CREATED and level.reserved == 1
    assert member.deleted_at is None and member.phone_enc is not None and member.balance_principal == 0
    await _jobs_settled(state)  # the account is still there: the order expires and gives the 1000 back
    await _books_balance(state, member_id, sku, sh01)
    async with state.sessionmaker() as session:
        assert (await session.get(Member, member_id)).balance_principal == 1000


async def _notify(api, state, order_gid: str, amount: int) -> None:
    headers, body = state.payment_providers["sandbox"].notification(
        provider_ref=f"ORD{pk(order_gid):012d}", amount=amount
    )
    assert (await api.http.post("/payments/notify/sandbox", content=body, headers=headers)).json() == {
        "code": "SUCCESS"
    }


@pytest.mark.postgres_too
async def test_deletion_refunds_paid_orders_not_handed_over_and_erases_personal_data_everywhere(api, state, chain):
    sh01 = chain.stores["SH01"]
    sku = await _sku_in(state, sh01, price=1500, on_hand=10)
    token = (await api.member_sign_in("gone:13700137000", gid("Store", sh01)))["tokens"]["accessToken"]
    member_id = await _member_id(state, "gone")
    assert (await api.post(PROFILE, {"n": PROFILE_NAME, "b": BIRTHDAY}, token)).json()["data"]["updateMyProfile"]
    store = gid("Store", sh01)
    waiting = (await api.post(PLACE, {"s": store, "l": _lines(sku, 2), "key": "g-1", "d": CONTACT}, token)).json()
    riding = (await api.post(PLACE, {"s": store, "l": _lines(sku, 2), "key": "g-2", "d": CONTACT}, token)).json()
    waiting, riding = waiting["data"]["placeOrder"]["order"], riding["data"]["placeOrder"]["order"]
    await _notify(api, state, waiting["id"], waiting["payable"])
    await _notify(api, state, riding["id"], riding["payable"])
    dispatch = "mutation($id: ID!) { dispatchOrder(input: {id: $id}) { errors { code } } }"
    assert (await api.gql(dispatch, {"id": riding["id"]}, as_="sh01.clerk"))["data"]["dispatchOrder"]["errors"] == []
    reveal = "mutation($m: ID!) { revealMemberPhone(input: {memberId: $m}) { errors { code } phone } }"
    assert (await api.gql(reveal, {"m": gid("Member", member_id)}, as_="sh01.manager"))["data"]["revealMemberPhone"][
        "phone"
    ] == "13700137000"

    # An entry written before inputs were redacted by declaration, naming the member in clear.
    async with write_transaction(state.sessionmaker) as session:
        record(
            session,
            AuditEntry(
                request_id="legacy",
                actor_kind="STAFF",
                operation="registerMember",
                outcome=AuditOutcome.OK,
                staff_id=chain.staff["sh01.clerk"],
                store_id=sh01,
                target_ids=(gid("Member", member_id),),
                ip="10.0.0.7",
                input={"phone": "137****7000", "name": PROFILE_NAME, "storeId": store},
            ),
        )
    # An order on its way keeps its address until it arrives: the deletion waits, changing nothing.
    before = await table_counts(state)
    on_its_way = (await api.post(DELETE, token=token)).json()["data"]["deleteMyAccount"]
    assert on_its_way["errors"][0]["code"] == "INVALID_TRANSITION" and await table_counts(state) == before
    confirm = "mutation($id: ID!) { confirmDelivery(input: {id: $id}) { errors { code } } }"
    assert (await api.post(confirm, {"id": riding["id"]}, token)).json()["data"]["confirmDelivery"]["errors"] == []
    # Delivered, then one unit refunded: nothing is left to hand over, nothing more to refund.
    one_back = await api.gql(REFUND, {"id": riding["id"], "lines": _lines(sku, 1)}, as_="sh01.manager")
    assert one_back["data"]["refundOrder"]["errors"] == []

    deleted = (await api.post(DELETE, token=token)).json()["data"]["deleteMyAccount"]
    assert deleted == {"errors": [], "deleted": True}
    async with state.sessionmaker() as session:
        refunded = await session.get(Order, pk(waiting["id"]))
        kept = await session.get(Order, pk(riding["id"]))
        refund = await session.scalar(select(Refund).where(Refund.order_id == refunded.id))
        level = await session.scalar(select(StockLevel).where(StockLevel.store_id == sh01, StockLevel.sku_id == sku))
        sessions = (await session.scalars(select(AuthSession).where(AuthSession.member_id == member_id))).all()
    assert refunded.status is OrderStatus.REFUNDED and kept.status is OrderStatus.PARTIALLY_REFUNDED
    assert refund.amount == waiting["payable"] and refund.restocked and refund.reason == member_data.DELETION_REASON
    provider_refunds = state.payment_providers["sandbox"].refunds[f"ORD{refunded.id:012d}"]
    assert list(provider_refunds.values()) == [waiting["payable"]]
    assert level.on_hand == 9 and level.reserved == 0  # 4 sold, 3 came back: the delivered unit kept is gone
    assert refunded.delivery_enc is None and kept.delivery_enc is None  # orders stay, anonymised
    assert refunded.member_id == member_id and all(s.ip is None and s.revoked_at for s in sessions)
    seen = await api.gql(
        "query($id: ID!) { node(id: $id) { ... on Order { status payable delivery { phone } } } }",
        {"id": riding["id"]},
        as_="hq.admin",
    )
    assert seen["data"]["node"]["delivery"] is None and seen["data"]["node"]["status"] == "PARTIALLY_REFUNDED"

    entries = await api.gql(
        "{ auditLogs(first: 100) { edges { node { operation actorKind input ip targetIds } } } }", as_="hq.admin"
    )
    nodes = [e["node"] for e in entries["data"]["auditLogs"]["edges"]]
    assert {"placeOrder", "updateMyProfile", "revealMemberPhone", "memberSignIn", "deleteMyAccount"} <= {
        n["operation"] for n in nodes
    }
    text = str(nodes)
    for value in (*CONTACT.values(), PROFILE_NAME, BIRTHDAY, "13700137000", "137****7000", "139****5678", "gone"):
        assert str(value) not in text, value
    own = [n for n in nodes if n["actorKind"] == "MEMBER" or gid("Member", member_id) in n["targetIds"]]
    assert {"memberSignIn", "placeOrder", "deleteMyAccount"} <= {n["operation"] for n in own}
    assert all(n["ip"] is None for n in own if n["actorKind"] != "STAFF")  # their own acts and sign-ins
    legacy = next(n for n in nodes if n["operation"] == "registerMember")
    assert legacy["input"] == {"phone": "[REDACTED]", "name": "[REDACTED]", "storeId": store}
    assert legacy["ip"] == "10.0.0.7"  # staff's own trace is kept
    await _books_balance(state, member_id, sku, sh01)


# --- the member's export ---------------------------------------------------------------------------------------


async def test_the_export_holds_every_kind_of_data_kept_about_the_member(api, state, chain):
    sh01 = chain.stores["SH01"]
    sku = await _sku_in(state, sh01, price=1500, on_hand=10)
    token = (await api.member_sign_in("export:13600136001", gid("Store", sh01)))["tokens"]["accessToken"]
    member_id = await _member_id(state, "export")
    await api.member_sign_in("referrer:13600136002")
    referrer_id = await _member_id(state, "referrer")
    assert (await api.post(PROFILE, {"n": PROFILE_NAME, "b": BIRTHDAY}, token)).json()["data"]["updateMyProfile"]
    await _stored_value(state, member_id, sh01, principal=5000, bonus=500)
    await give_coupon(state, member_id, CouponKind.AMOUNT_OFF, amount_off=100, name="见面礼")
    async with write_transaction(state.sessionmaker) as session:
        session.add(Referral(referrer_id=referrer_id, referred_id=member_id))
    tag = await api.gql('mutation { createMemberTag(input: {name: "咖啡控"}) { tag { id } } }', as_="hq.admin")
    tagged = await api.gql(
        "mutation($t: ID!, $m: ID!) { tagMembers(input: {tagId: $t, memberIds: [$m]}) { changed } }",
        {"t": tag["data"]["createMemberTag"]["tag"]["id"], "m": gid("Member", member_id)},
        as_="hq.admin",
    )
    assert tagged["data"]["tagMembers"]["changed"] == 1
    placed = await api.post(
        PLACE, {"s": gid("Store", sh01), "l": _lines(sku, 2), "key": "e-1", "d": CONTACT, "sv": 100}, token
    )
    order = placed.json()["data"]["placeOrder"]["order"]
    await _notify(api, state, order["id"], order["payable"])
    refunded = await api.gql(REFUND, {"id": order["id"], "lines": _lines(sku, 1)}, as_="sh01.manager")
    assert refunded["data"]["refundOrder"]["errors"] == []

    export = (await api.post("{ myDataExport }", token=token)).json()["data"]["myDataExport"]
    assert export["member"]["name"] == PROFILE_NAME and export["member"]["phone"] == "13600136001"
    assert export["member"]["birthday"] == BIRTHDAY
    assert [(i["provider"], i["subject"]) for i in export["identities"]] == [("local", "export")]
    assert export["sessions"] and export["stores"][0]["registered"] is True
    assert export["tags"] == ["咖啡控"]
    [kept] = export["orders"]
    assert kept["status"] == "PARTIALLY_REFUNDED" and kept["fulfilment"] == "DELIVERY"
    assert kept["delivery"] == CONTACT
    assert [(x["quantity"], x["refunded"]) for x in kept["lines"]] == [(2, 1)]
    assert {p["method"] for p in export["payments"]} == {"WECHAT_PAY", "STORED_VALUE"}
    assert [r["amount"] for r in export["refunds"]] == [refunded["data"]["refundOrder"]["refund"]["amount"]]
    assert {"EARN"} <= {p["kind"] for p in export["points"]}
    # The unit came back to each tender in proportion: part of it to stored value.
    assert {b["kind"] for b in export["storedValue"]} == {"TOP_UP", "SPEND", "REFUND"}
    assert [(c["status"], c["source"]) for c in export["coupons"]] == [("AVAILABLE", "ISSUE")]
    assert [r["role"] for r in export["referrals"]] == ["REFERRED"]
    assert "topUps" in export and "groupBuys" in export


async def test_a_deleted_members_paid_place_in_a_forming_group_is_refunded_and_given_up(api, state, chain):
    menu = await given_menu(state, chain, on_hand=10)
    campaign_id = await campaign(
        state, CampaignKind.GROUP_BUY, items=[ItemSpec(menu.a, price=6000)], group_size=3, group_minutes=30
    )
    async with write_transaction(state.sessionmaker) as session:
        leader, joiner = Member(name="团长"), Member(name="团员")
        session.add_all([leader, joiner])
    provider = state.payment_providers["sandbox"]
    async with write_transaction(state.sessionmaker) as session:
        opened = await group_buys.open_group(
            session,
            Viewer(kind=ViewerKind.MEMBER, member_id=leader.id),
            provider,
            campaign_id=campaign_id,
            store_id=menu.store,
            sku_id=menu.a,
            idempotency_key="grp-0",
        )
    async with write_transaction(state.sessionmaker) as session:
        joined = await group_buys.join_group(
            session,
            Viewer(kind=ViewerKind.MEMBER, member_id=joiner.id),
            provider,
            share_code=opened.group.share_code,
            idempotency_key="grp-1",
        )
    for order in (opened.placed.order, joined.placed.order):
        await _notify(api, state, gid("Order", order.id), order.payable)

    async with write_transaction(state.sessionmaker) as session:
        await member_data.delete_account(
            session, state.cipher, Viewer(kind=ViewerKind.MEMBER, member_id=joiner.id), state.payment_providers
        )
    async with state.sessionmaker() as session:
        group = await session.get(GroupBuy, opened.group.id)
        refunded = await session.get(Order, joined.placed.order.id)
    assert refunded.status is OrderStatus.REFUNDED
    assert (group.status, group.joined, group.paid) == (GroupBuyStatus.OPEN, 1, 1)  # one place is free again
    assert list(provider.refunds[f"ORD{refunded.id:012d}"].values()) == [6000]
