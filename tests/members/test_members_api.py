"""Members over the API: POS lookup, masking and audited reveals, store scope, the member's own data."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select, text

import models
from models import AuditLog
from tests.conftest import count_statements, gid, pk

PHONES = ["13800138001", "13900139002", "13700137003"]
REGISTER = """mutation($p: String!, $n: String) { registerMember(input: {phone: $p, name: $n}) {
  errors { code field } member { id phone name level { name } } } }"""
IDENTIFY = """mutation($c: String, $p: String) { identifyMember(input: {code: $c, phone: $p}) {
  errors { code field } member { id name phone pointsBalance } } }"""
REVEAL = "mutation($m: ID!) { revealMemberPhone(input: {memberId: $m}) { errors { code } phone } }"


def codes(body):
    return {e["extensions"]["code"] for e in body.get("errors", [])}


async def _register_at_sh01(api, phone=PHONES[0], name="王小明"):
    body = await api.gql(REGISTER, {"p": phone, "n": name}, as_="sh01.clerk")
    return body["data"]["registerMember"]["member"]


async def test_a_clerk_registers_a_member_who_then_signs_in_with_the_same_phone(api):
    member = await _register_at_sh01(api)
    assert member["phone"] == "138****8001" and member["level"] == {"name": "普通会员"}
    again = await api.gql(REGISTER, {"p": PHONES[0]}, as_="sh02.clerk")
    assert again["data"]["registerMember"]["errors"] == [{"code": "MEMBER_EXISTS", "field": "phone"}]
    signed_in = await api.member_sign_in(f"wx-openid-9:{PHONES[0]}")
    assert signed_in["member"]["id"] == member["id"] and signed_in["member"]["phone"] == PHONES[0]


async def test_the_member_code_identifies_the_member_at_any_store_and_a_forged_one_is_refused(api, state):
    member = await _register_at_sh01(api)
    await api.member_sign_in(f"wx-openid-9:{PHONES[0]}")
    token = await api.token(f"member:wx-openid-9:{PHONES[0]}")
    code = (await api.post("{ myMemberCode { code expiresAt } }", token=token)).json()["data"]["myMemberCode"]["code"]
    found = await api.gql(IDENTIFY, {"c": code}, as_="hz01.clerk")
    assert found["data"]["identifyMember"]["member"]["id"] == member["id"]
    # Known to HZ01 from now on: its staff can find the member by phone too.
    by_phone = await api.gql(IDENTIFY, {"p": PHONES[0]}, as_="hz01.clerk")
    assert by_phone["data"]["identifyMember"]["member"]["id"] == member["id"]
    forged = code[:-3] + ("AAA" if code[-3:] != "AAA" else "BBB")
    refused = await api.gql(IDENTIFY, {"c": forged}, as_="hz01.clerk")
    assert refused["data"]["identifyMember"]["errors"] == [{"code": "MEMBER_CODE_INVALID", "field": "code"}]
    async with state.sessionmaker() as session:
        entry = await session.scalar(
            select(AuditLog).where(AuditLog.operation == "identifyMember").order_by(AuditLog.id)
        )
    assert entry.input == {"code": "[REDACTED]"}


async def test_phones_are_masked_for_every_staff_role_and_each_reveal_is_audited(api, state, chain):
    member = await _register_at_sh01(api)
    query = "query($id: ID!) { node(id: $id) { ... on Member { phone } } }"
    for who in ("sh01.manager", "hq.analyst", "hq.operator", "hq.admin"):
        body = await api.gql(query, {"id": member["id"]}, as_=who)
        assert body["data"]["node"] == {"phone": "138****8001"}, who
    for who, expected in (("sh01.manager", PHONES[0]), ("hq.admin", PHONES[0])):
        body = await api.gql(REVEAL, {"m": member["id"]}, as_=who)
        assert body["data"]["revealMemberPhone"]["phone"] == expected
    for who in ("sh01.clerk", "hq.analyst", "hq.operator"):
        assert codes(await api.gql(REVEAL, {"m": member["id"]}, as_=who)) == {"FORBIDDEN"}, who
    async with state.sessionmaker() as session:
        reveals = (
            await session.scalars(
                select(AuditLog).where(AuditLog.operation == "revealMemberPhone").order_by(AuditLog.id)
            )
        ).all()
    assert [(r.outcome.value, r.staff_id) for r in reveals if r.outcome.value == "OK"] == [
        ("OK", chain.staff["sh01.manager"]),
        ("OK", chain.staff["hq.admin"]),
    ]
    assert all(member["id"] in r.target_ids for r in reveals)
    # To another store's manager the member is one that does not exist (the same answer as an unknown id).
    for id_ in (member["id"], gid("Member", 987654)):
        body = await api.gql(REVEAL, {"m": id_}, as_="sh02.manager")
        assert body["data"]["revealMemberPhone"] == {"errors": [{"code": "NOT_FOUND"}], "phone": None}, id_


async def test_another_store_cannot_see_a_member_related_only_to_sh01(api, chain):
    member = await _register_at_sh01(api)
    for who in ("sh02.manager", "sh02.clerk"):
        assert (await api.gql("query($id: ID!) { node(id: $id) { id } }", {"id": member["id"]}, as_=who))["data"][
            "node"
        ] is None
        assert (await api.gql(IDENTIFY, {"p": PHONES[0]}, as_=who))["data"]["identifyMember"]["errors"][0][
            "code"
        ] == "NOT_FOUND"
    listing = await api.gql("{ members(first: 100) { edges { node { id } } } }", as_="sh02.manager")
    assert listing["data"]["members"]["edges"] == []
    other = await api.gql(
        "query($s: ID) { members(filter: {storeId: $s}) { edges { node { id } } } }",
        {"s": gid("Store", chain.stores["SH01"])},
        as_="sh02.manager",
    )
    assert codes(other) == {"FORBIDDEN"}
    own = await api.gql("{ members(first: 100) { edges { node { id } } } }", as_="sh01.manager")
    assert [e["node"]["id"] for e in own["data"]["members"]["edges"]] == [member["id"]]
    hq = await api.gql(
        "query($p: String) { members(filter: {phone: $p}) { edges { node { id } } } }",
        {"p": PHONES[0]},
        as_="hq.operator",
    )
    assert [e["node"]["id"] for e in hq["data"]["members"]["edges"]] == [member["id"]]


@pytest.mark.postgres_too
async def test_no_plaintext_phone_in_the_database_or_the_logs(api, state, caplog):
    caplog.set_level(logging.DEBUG)
    for phone in PHONES:
        await _register_at_sh01(api, phone)
    await api.member_sign_in(f"wx-x:{PHONES[1]}")
    await api.gql(IDENTIFY, {"p": PHONES[2]}, as_="sh01.clerk")
    member = (await api.gql("{ members(first: 1) { edges { node { id } } } }", as_="hq.admin"))["data"]["members"][
        "edges"
    ][0]["node"]["id"]
    await api.gql(REVEAL, {"m": member}, as_="hq.admin")
    url = state.settings.database_url
    if url.startswith("sqlite"):
        db = Path(url.split("///", 1)[1])
        blob = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    else:
        parts = []
        async with state.engine.connect() as conn:
            for table in models.Base.metadata.sorted_tables:
                parts.append(
                    str(
                        (
                            await conn.execute(
                                text(f"SELECT coalesce(string_agg(t::text, ','), '') FROM \"{table.name}\" t")
                            )
                        ).scalar()
                    )
                )
        blob = "".join(parts).encode()
    logs = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    for phone in PHONES:
        assert phone.encode() not in blob, phone
        assert phone not in logs, phone


async def test_a_member_sees_their_full_profile_exports_it_and_deletes_the_account(api, state):
    signed = await api.member_sign_in("wx-erase:13600136000")
    token = signed["tokens"]["accessToken"]
    profile = await api.post(
        'mutation { updateMyProfile(input: {name: "李雷", birthday: "1990-05-04", gender: MALE}) { errors { code } member { name birthday phone } } }',
        token=token,
    )
    assert profile.json()["data"]["updateMyProfile"]["member"] == {
        "name": "李雷",
        "birthday": "1990-05-04",
        "phone": "13600136000",
    }
    export = (await api.post("{ myDataExport }", token=token)).json()["data"]["myDataExport"]
    assert export["member"]["phone"] == "13600136000" and export["member"]["name"] == "李雷"
    deleted = (await api.post("mutation { deleteMyAccount { errors { code } deleted } }", token=token)).json()
    assert deleted["data"]["deleteMyAccount"] == {"errors": [], "deleted": True}
    assert (await api.post("{ me { __typename } }", token=token)).status_code == 401
    async with state.sessionmaker() as session:
        row = await session.scalar(select(models.Member).where(models.Member.id == pk(signed["member"]["id"])))
    assert row.deleted_at is not None and row.phone_enc is None and row.phone_index is None and row.name is None
    again = await api.member_sign_in("wx-erase:13600136000")
    assert again["created"] is True and again["member"]["id"] != signed["member"]["id"]


async def test_a_counter_top_up_credits_once_per_key(api, chain):
    member = await _register_at_sh01(api)
    plans = (await api.gql("{ topUpPlans { id payAmount bonusAmount } }"))["data"]["topUpPlans"]
    plan = next(p for p in plans if p["payAmount"] == 50_000)
    doc = """mutation($m: ID!, $p: ID, $k: String!) { topUpStoredValue(input: {memberId: $m, planId: $p, idempotencyKey: $k,
      tenders: [{method: CASH, amount: 20000}, {method: CARD, amount: 30000}]}) {
      errors { code } member { storedValue { principal bonus total } } } }"""
    first = await api.gql(doc, {"m": member["id"], "p": plan["id"], "k": "pos-1-0001"}, as_="sh01.clerk")
    retry = await api.gql(doc, {"m": member["id"], "p": plan["id"], "k": "pos-1-0001"}, as_="sh01.clerk")
    assert first["data"]["topUpStoredValue"]["member"]["storedValue"] == {
        "principal": 50_000,
        "bonus": 5_000,
        "total": 55_000,
    }
    assert retry["data"]["topUpStoredValue"] == first["data"]["topUpStoredValue"]
    elsewhere = await api.gql(doc, {"m": member["id"], "p": plan["id"], "k": "pos-9"}, as_="sh02.clerk")
    assert codes(elsewhere) == {"FORBIDDEN"}


@pytest.mark.parametrize("n", [10, 100])
async def test_hq_member_search_with_profile_stats_is_constant_in_statements(api, state, chain, n):
    from services.members.accounts import record_purchase
    from services.platform.db import write_transaction

    async with write_transaction(state.sessionmaker) as session:
        for i in range(100):
            member = models.Member(name=f"m{i}", level_id=1)
            session.add(member)
            await session.flush()
            await record_purchase(
                session, member_id=member.id, store_id=chain.stores["SH01" if i % 2 else "HZ01"], amount=1000 * i
            )
    query = """query($n: Int!) { members(first: $n) { edges { node { name totalSpend visitCount lastPurchaseAt
      level { name } favouriteStore { code } homeStore { code } tags { name } } } } }"""
    token = await api.token("hq.analyst")
    with count_statements(state.engine) as counter:
        body = (await api.post(query, {"n": n}, token=token)).json()
    assert "errors" not in body, body
    edges = body["data"]["members"]["edges"]
    assert len(edges) == n and all(e["node"]["favouriteStore"] for e in edges)
    # viewer, page, levels, member-store stats, stores, tags: the same for 10 and 100.
    assert counter.count == 6, counter.statements
